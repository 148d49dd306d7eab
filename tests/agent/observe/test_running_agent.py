"""A running `edge-agent run` (subprocess) watched the way a fleet watches it: its /metrics, /readyz,
its retained MQTT status topics and its JSON log lines, while its only camera (a real RTSP server) is
killed and restarted and the agent itself is finally SIGKILLed."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from protocol import SOURCE_STATUS_SCHEMA, STATS_SCHEMA
from tests.conftest import Broker, Receiver, agent_cmd, free_port
from tests.streams.conftest import RtspServer, rtsp_factory  # noqa: F401 (fixture)

PREFIX, AGENT, CAMERA = "city", "box-7", "gate"
DOWN = {"backing_off", "stalled", "connecting"}


def validator(schema: Path) -> jsonschema.Draft202012Validator:
    loaded = json.loads(schema.read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return jsonschema.Draft202012Validator(loaded, format_checker=jsonschema.FormatChecker())


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def source_value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted({"source": CAMERA, **labels}.items()))))


def state_now(port: int) -> str | None:
    samples = scrape(port)
    on = [dict(k[1])["state"] for k, v in samples.items() if k[0] == "edge_agent_source_state" and v == 1.0]
    return on[0] if on else None


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if found := condition():
                return found
        except (OSError, ValueError):  # the endpoint is not up yet
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


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


def latest_status(receiver: Receiver) -> dict | None:
    payloads = receiver.payload(f"/{AGENT}/sources/{CAMERA}/status")
    return json.loads(payloads[-1]) if payloads else None


@pytest.fixture
def agent(tmp_path: Path, broker: Broker, rtsp_factory) -> Iterator[tuple[subprocess.Popen, int, RtspServer, Path]]:  # noqa: F811
    camera = rtsp_factory()
    camera.start()
    metrics_port = free_port()
    config = {
        "agent_id": AGENT,
        "state_dir": str(tmp_path / "state"),
        "sources": [
            {
                "id": CAMERA,
                "kind": "fixed",
                "url": camera.url,
                "sample_fps": 2,
                "stall_s": 3,
                "reconnect_cap_s": 2,
                "position": {"lat": 31.2304, "lon": 121.4737},
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
    log_path = tmp_path / "stderr.log"
    with log_path.open("w") as err:
        proc = subprocess.Popen(
            agent_cmd("--log-format", "json", "run", "-c", str(path)), stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        yield proc, metrics_port, camera, log_path
    finally:
        proc.kill()
        proc.wait(30)


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
