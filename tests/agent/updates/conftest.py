"""The real RTSP server fixtures of the stream tests, for the reload tests."""

from tests.streams.conftest import rtsp_factory  # noqa: F401 - a fixture, used by name
