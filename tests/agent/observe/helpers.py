"""What the tests that watch a running `edge-agent run` share (tests/agent/observe/test_running_agent.py,
test_two_input_status.py): the agent started as a subprocess with one camera, MQTT and /metrics, and
the ways a fleet reads it: /metrics samples, the retained status topic, JSON schemas, waiting."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Broker, Receiver, agent_cmd, free_port

PREFIX, AGENT, CAMERA = "city", "box-7", "gate"
DOWN = {"backing_off", "stalled", "connecting"}


@dataclass
class RunningAgent:
    """The agent's process, the port of its /metrics and the file its stderr (its log) goes to."""

    process: subprocess.Popen
    metrics_port: int
    log_path: Path


@contextmanager
def running_agent(tmp_path: Path, broker: Broker, inputs: dict, *log_args: str) -> Iterator[RunningAgent]:
    """`edge-agent [log_args] run` with camera CAMERA (its `inputs`: `url` or `inputs`, and what else it
    needs), reconnecting quickly, uploading to `broker` under PREFIX; killed at the end."""
    metrics_port = free_port()
    source = {"id": CAMERA, "kind": "fixed", **inputs, "sample_fps": 2, "stall_s": 3, "reconnect_cap_s": 2}
    config = {
        "agent_id": AGENT,
        "state_dir": str(tmp_path / "state"),
        "sources": [source],
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
        process = subprocess.Popen(agent_cmd(*log_args, "run", "-c", str(path)), stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield RunningAgent(process, metrics_port, log_path)
    finally:
        process.kill()
        process.wait(30)


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


def state_on(port: int, metric: str, **labels: str) -> str | None:
    """The `state` label of the sample of `metric` (one per state, 1 for the current one) that is 1."""
    on = [
        dict(key)["state"]
        for (name, key), value in scrape(port).items()
        if name == metric and value == 1.0 and labels.items() <= dict(key).items()
    ]
    return on[0] if on else None


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


def latest_status(receiver: Receiver) -> dict | None:
    payloads = receiver.payload(f"/{AGENT}/sources/{CAMERA}/status")
    return json.loads(payloads[-1]) if payloads else None
