"""A running `edge-agent run` with one camera of two inputs (two real RTSP servers): when its main stream
dies and the substream runs on, /metrics and the retained MQTT status say which input is down, and that it
came back."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from protocol import SOURCE_STATUS_SCHEMA
from tests.agent.observe.test_running_agent import AGENT, CAMERA, DOWN, PREFIX, latest_status, scrape, validator
from tests.agent.observe.test_running_agent import wait_for as wait_for_it
from tests.conftest import Broker, Receiver, agent_cmd, free_port
from tests.streams.conftest import RtspServer, rtsp_factory  # noqa: F401 (fixture)


def input_state(port: int, role: str) -> str | None:
    on = [
        dict(labels)["state"]
        for (name, labels), value in scrape(port).items()
        if name == "edge_agent_source_input_state" and dict(labels)["input"] == role and value == 1.0
    ]
    return on[0] if on else None


@pytest.fixture
def agent(tmp_path: Path, broker: Broker, rtsp_factory) -> Iterator[tuple[int, RtspServer]]:  # noqa: F811
    record, detect = rtsp_factory(size="1280x720", path="/main"), rtsp_factory(size="640x360", path="/sub")
    record.start()
    detect.start()
    metrics_port = free_port()
    config = {
        "agent_id": AGENT,
        "state_dir": str(tmp_path / "state"),
        "sources": [
            {
                "id": CAMERA,
                "kind": "fixed",
                "inputs": {"detect": detect.url, "record": record.url},
                "sample_fps": 2,
                "stall_s": 3,
                "reconnect_cap_s": 2,
            }
        ],
        "detector": {"model": "builtin:garbage"},
        "uploader": {
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": PREFIX, "retry_cap_s": 1},
            "drain_timeout_s": 1,
        },
        "metrics": {"port": metrics_port},
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    with (tmp_path / "stderr.log").open("w") as err:
        proc = subprocess.Popen(agent_cmd("run", "-c", str(path)), stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield metrics_port, record
    finally:
        proc.kill()
        proc.wait(30)


@pytest.mark.timeout(240)
def test_a_dead_main_stream_is_named_while_the_substream_is_detected(agent, receiver: Receiver) -> None:
    port, record = agent
    schema = validator(SOURCE_STATUS_SCHEMA)
    wait_for_it(lambda: input_state(port, "record") == "live" == input_state(port, "detect"), 90, "both inputs live")
    status = wait_for_it(lambda: (s := latest_status(receiver)) and "inputs" in s and s, 20, "a status with inputs")
    schema.validate(status)

    record.kill()
    wait_for_it(lambda: input_state(port, "record") in DOWN, 30, "the record input to leave live in /metrics")
    assert input_state(port, "detect") == "live"

    def record_down_detect_live() -> dict | None:  # the substream may hiccup on a loaded box: wait for both
        s = latest_status(receiver)
        return s if s and s["inputs"]["record"]["state"] in DOWN and s["state"] == "live" else None

    down = wait_for_it(record_down_detect_live, 20, "a status: record input down, detection live")
    schema.validate(down)
    assert down["reason"].startswith("record input "), json.dumps(down)
    assert down["inputs"]["detect"]["state"] == "live"

    record.start()
    wait_for_it(lambda: input_state(port, "record") == "live", 60, "the record input to be live again")
    back = wait_for_it(
        lambda: (s := latest_status(receiver)) and s["inputs"]["record"]["state"] == "live" and s, 20, "status back"
    )
    assert "record input" not in back["reason"] and json.dumps(back)  # nothing left to report
