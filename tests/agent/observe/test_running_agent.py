"""A running `edge-agent run` (subprocess) watched the way a fleet watches it: its /metrics, /readyz,
its retained MQTT status topics and its JSON log lines, while its only camera (a real RTSP server) is
killed and restarted and the agent itself is finally SIGKILLed."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from protocol import SOURCE_STATUS_SCHEMA, STATS_SCHEMA
from tests.agent.observe.helpers import (
    AGENT,
    CAMERA,
    DOWN,
    PREFIX,
    latest_status,
    running_agent,
    scrape,
    state_on,
    validator,
    wait_for,
)
from tests.conftest import Broker, Receiver
from tests.streams.conftest import RtspServer, rtsp_factory  # noqa: F401 (fixture)


def source_value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted({"source": CAMERA, **labels}.items()))))


def state_now(port: int) -> str | None:
    return state_on(port, "edge_agent_source_state")


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def retained(port: int, topic: str) -> bytes | None:
    """What a subscriber arriving now gets on `topic` (the retained message), or None."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, msg: (got.append(msg.payload), done.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(3)
    client.loop_stop()
    client.disconnect()
    return got[0] if got else None


@pytest.fixture
def agent(tmp_path: Path, broker: Broker, rtsp_factory) -> Iterator[tuple[subprocess.Popen, int, RtspServer, Path]]:  # noqa: F811
    camera = rtsp_factory()
    camera.start()
    inputs = {"url": camera.url, "position": {"lat": 31.2304, "lon": 121.4737}}
    with running_agent(tmp_path, broker, inputs, "--log-format", "json") as running:
        yield running.process, running.metrics_port, camera, running.log_path


@pytest.mark.timeout(240)
def test_a_camera_going_down_and_back_shows_in_metrics_readiness_status_and_logs(agent, receiver: Receiver) -> None:
    proc, port, camera, log_path = agent
    status_schema, stats_schema = validator(SOURCE_STATUS_SCHEMA), validator(STATS_SCHEMA)

    # live: the frame counter rises, /readyz is ready and lists the camera, the status topic says live
    wait_for(lambda: state_now(port) == "live", 90, "the camera to go live in /metrics")
    first = source_value(scrape(port), "edge_agent_frames_decoded_total")
    wait_for(lambda: source_value(scrape(port), "edge_agent_frames_decoded_total") > first + 10, 30, "more frames")
    assert get_json(f"http://127.0.0.1:{port}/healthz")[0] == 200
    code, ready = get_json(f"http://127.0.0.1:{port}/readyz")
    assert code == 200 and ready["ready"] and ready["live"] == [CAMERA] and ready["outbox_writable"], ready
    status = wait_for(lambda: (s := latest_status(receiver)) and s["state"] == "live" and s, 20, "status live")
    status_schema.validate(status)
    assert status["position"] == {"lat": 31.2304, "lon": 121.4737} and status["last_frame_at"]
    heartbeat = json.loads(wait_for(lambda: receiver.payload(f"/{AGENT}/stats"), 20, "the stats heartbeat")[-1])
    stats_schema.validate(heartbeat)
    samples = scrape(port)
    for name in ("edge_agent_inference_seconds_count", "edge_agent_process_resident_memory_bytes"):
        assert any(key[0] == name for key in samples), name
    assert samples[("edge_agent_outbox_cases", (("state", "pending"),))] == 0
    assert samples[("edge_agent_mqtt_connected", ())] == 1

    # the camera dies: metrics, readiness and the retained status all say it is down
    camera.kill()
    down = wait_for(lambda: (s := state_now(port)) in DOWN and s, 30, "the camera to leave live in /metrics")
    assert down in DOWN
    code, ready = get_json(f"http://127.0.0.1:{port}/readyz")
    assert code == 503 and not ready["ready"] and ready["sources"][CAMERA] in DOWN, ready
    assert "no camera is live" in ready["problems"][0]
    status = wait_for(lambda: (s := latest_status(receiver)) and s["state"] in DOWN and s, 20, "status down")
    status_schema.validate(status)
    assert status["reason"], status
    assert json.loads(retained(receiver.port, f"{PREFIX}/{AGENT}/sources/{CAMERA}/status"))["state"] in DOWN

    # it comes back: live again everywhere, with the reconnection counted
    camera.start()
    wait_for(lambda: state_now(port) == "live", 60, "the camera to be live again")
    assert source_value(scrape(port), "edge_agent_source_reconnects_total") >= 1
    assert get_json(f"http://127.0.0.1:{port}/readyz")[0] == 200
    wait_for(lambda: (s := latest_status(receiver)) and s["state"] == "live", 20, "status live again")
    states = [json.loads(p)["state"] for p in receiver.payload(f"/{AGENT}/sources/{CAMERA}/status")]
    assert "live" in states and states.index("live") < max(i for i, s in enumerate(states) if s in DOWN)

    # the box dies without a word: the broker's last will marks it offline, retained
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    wait_for(lambda: retained(receiver.port, f"{PREFIX}/{AGENT}/status") == b"offline", 20, "the last will")

    # every log line is JSON, and the lines of the camera's threads name it
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert any(r.get("source") == CAMERA and "reconnecting in" in r["message"] for r in records), records[-5:]
