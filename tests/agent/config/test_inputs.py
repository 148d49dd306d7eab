"""`inputs: {detect, record}` of a camera with a substream: what is accepted, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, parse_config
from tests.conftest import make_clip

BASE = "agent_id: t\nstate_dir: {state}\ndetector: {{model: builtin:garbage}}\nsources:\n  - id: cam\n    kind: fixed\n"


def parse(tmp_path: Path, source: str):
    return parse_config(BASE.format(state=tmp_path / "state") + source, tmp_path, "agent.yaml")


def test_two_camera_inputs_give_the_detect_url_and_the_record_url(tmp_path: Path) -> None:
    config = parse(tmp_path, "    inputs: {detect: 'rtsp://cam/102', record: 'rtsp://cam/101'}\n")
    source = config.sources[0]
    assert (source.url, source.record_url) == ("rtsp://cam/102", "rtsp://cam/101")
    one = parse(tmp_path, "    url: rtsp://cam/101\n").sources[0]
    assert (one.url, one.record_url, one.inputs) == ("rtsp://cam/101", None, None)  # one input: as before


def test_two_files_play_as_a_cameras_streams_at_real_time(tmp_path: Path) -> None:
    make_clip(tmp_path / "sub.mp4", 1)
    make_clip(tmp_path / "main.mp4", 1, size="1280x720")
    inputs = "    inputs: {detect: sub.mp4, record: main.mp4}\n"
    source = parse(tmp_path, inputs + "    realtime: true\n").sources[0]  # relative to the file, as url is
    assert (source.url, source.record_url) == (str(tmp_path / "sub.mp4"), str(tmp_path / "main.mp4"))
    with pytest.raises(ConfigError, match=r"sources\[0\]: .*only with realtime: true"):
        parse(tmp_path, inputs)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "    url: rtsp://cam/1\n    inputs: {detect: 'rtsp://cam/2', record: 'rtsp://cam/1'}\n",
            r"either url or inputs",
        ),
        ("    inputs: {detect: 'rtsp://cam/2'}\n", r"sources\[0\]\.inputs\.record: required key is missing"),
        ("    inputs: {detect: 'rtsp://cam/2', record: 'http://cam/1'}\n", r"sources\[0\]\.inputs\.record: bad URL"),
        ("    inputs: {detect: 'rtsp://cam/2', record: nothere.mp4}\n", r"inputs\.record: file not found"),
        (
            "    inputs: {detect: 'rtsp://cam/2', recrod: 'rtsp://cam/1'}\n",
            r"inputs\.recrod: unknown key; did you mean",
        ),
        ("    sample_fps: 2\n", r"sources\[0\]: url: required key is missing; .*inputs: \{detect"),
    ],
)
def test_bad_inputs_are_named_with_the_fix(tmp_path: Path, source: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse(tmp_path, source)


def test_a_password_in_an_input_is_never_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        parse(tmp_path, "    inputs: {detect: 'rtsp://u:s3cret@cam/2', record: 'rtsp://u:s3cret@cam:99999/1'}\n")
    assert "inputs.record" in str(error.value) and "s3cret" not in str(error.value)
