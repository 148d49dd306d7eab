"""A running `edge-agent run` with one camera of two inputs (two real RTSP servers): when its main stream
dies and the substream runs on, /metrics and the retained MQTT status say which input is down, and that it
came back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import SOURCE_STATUS_SCHEMA
from tests.agent.observe.helpers import DOWN, latest_status, running_agent, state_on, validator, wait_for
from tests.conftest import Broker, Receiver
from tests.streams.conftest import RtspServer, rtsp_factory  # noqa: F401 (fixture)


def input_state(port: int, role: str) -> str | None:
    return state_on(port, "edge_agent_source_input_state", input=role)


@pytest.fixture
def agent(tmp_path: Path, broker: Broker, rtsp_factory) -> Iterator[tuple[int, RtspServer]]:  # noqa: F811
    record, detect = rtsp_factory(size="1280x720", path="/main"), rtsp_factory(size="640x360", path="/sub")
    record.start()
    detect.start()
    with running_agent(tmp_path, broker, {"inputs": {"detect": detect.url, "record": record.url}}) as running:
        yield running.metrics_port, record


@pytest.mark.timeout(240)
def test_a_dead_main_stream_is_named_while_the_substream_is_detected(agent, receiver: Receiver) -> None:
    port, record = agent
    schema = validator(SOURCE_STATUS_SCHEMA)
    wait_for(lambda: input_state(port, "record") == "live" == input_state(port, "detect"), 90, "both inputs live")
    status = wait_for(lambda: (s := latest_status(receiver)) and "inputs" in s and s, 20, "a status with inputs")
    schema.validate(status)

    record.kill()
    wait_for(lambda: input_state(port, "record") in DOWN, 30, "the record input to leave live in /metrics")
    assert input_state(port, "detect") == "live"

    def record_down_detect_live() -> dict | None:  # the substream may hiccup on a loaded box: wait for both
        s = latest_status(receiver)
        return s if s and s["inputs"]["record"]["state"] in DOWN and s["state"] == "live" else None

    down = wait_for(record_down_detect_live, 20, "a status: record input down, detection live")
    schema.validate(down)
    assert down["reason"].startswith("record input "), json.dumps(down)
    assert down["inputs"]["detect"]["state"] == "live"

    record.start()
    wait_for(lambda: input_state(port, "record") == "live", 60, "the record input to be live again")
    back = wait_for(
        lambda: (s := latest_status(receiver)) and s["inputs"]["record"]["state"] == "live" and s, 20, "status back"
    )
    assert "record input" not in back["reason"] and json.dumps(back)  # nothing left to report
