"""A running `edge-agent run` and a platform stand-in that publishes signed updates and reads the acks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.messages import Topics
from protocol.signing import Signer
from protocol.updates import make_manifest, update_chunks
from tests.conftest import agent_cmd

PREFIX, AGENT = "city", "box-1"
ENV = os.environ | {"PYTHONUNBUFFERED": "1"}


def wait_for(condition, timeout_s: float, step_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return bool(condition())


@dataclass
class Agent:
    """`edge-agent run -c CONFIG` in a subprocess, its stderr in a file."""

    config: Path
    state: Path
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    out: str = ""

    def start(self) -> Agent:
        self.log_path = self.config.with_suffix(".log")
        with self.log_path.open("w") as err:
            self.process = subprocess.Popen(
                agent_cmd("run", "-c", str(self.config)), env=ENV, stdout=subprocess.PIPE, stderr=err, text=True
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def wait_log(self, text: str, timeout_s: float = 60) -> bool:
        return wait_for(lambda: text in self.log() or self.process.poll() is not None, timeout_s) and text in self.log()

    def report(self) -> dict:
        """STATE/updates/last-reload.json: what the last reload did and each source's decoded frames."""
        path = self.state / "updates" / "last-reload.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def decoded(self, source_id: str) -> int:
        return self.report().get("sources", {}).get(source_id, {}).get("decoded", 0)

    def reload(self, timeout_s: float = 60) -> dict:
        """SIGHUP, then the report of that reload."""
        before = self.report().get("time")
        self.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: self.report().get("time") != before, timeout_s), self.log()[-3000:]
        return self.report()

    def stop(self) -> str:
        """SIGTERM; returns stdout (the summary table)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.out, _ = self.process.communicate(timeout=90)
        return self.out

    def rows(self, source_id: str) -> list[list[str]]:
        return [line.split() for line in self.out.splitlines() if line.split()[:1] == [source_id]]


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Platform:
    """Publishes updates signed with its key; keeps every ack the box sends."""

    port: int
    key: Signer = field(default_factory=lambda: Signer(Ed25519PrivateKey.generate()))
    acks: list[dict] = field(default_factory=list)
    client: mqtt.Client | None = None

    def __post_init__(self) -> None:
        self.topics = Topics(PREFIX, AGENT)
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, msg: self._keep(json.loads(msg.payload))
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(self.topics.updates_ack, qos=1)
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _keep(self, ack: dict) -> None:
        with self._lock:
            self.acks.append(ack)

    def write_key(self, path: Path) -> Path:
        path.write_bytes(self.key.public_pem)
        return path

    def wait_for_box(self, timeout_s: float = 60) -> None:
        """Until the box is online (its retained status), so that its subscriptions exist."""
        online = threading.Event()
        probe = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        probe.on_message = lambda _c, _u, msg: online.set() if msg.payload == b"online" else None
        probe.on_connect = lambda c, *a: c.subscribe(self.topics.status, qos=1)
        probe.connect("127.0.0.1", self.port)
        probe.loop_start()
        try:
            assert online.wait(timeout_s), "the agent did not come online"
        finally:
            probe.loop_stop()
            probe.disconnect()
        time.sleep(0.3)  # its SUBSCRIBEs follow the online status

    def manifest(self, update_id: str, kind: str, data: bytes, signer: Signer | None = None, **changes) -> dict:
        manifest = make_manifest(AGENT, update_id, kind, data, version=f"{update_id}-v") | changes
        return (signer or self.key).sign(manifest)

    def send(self, manifest: dict, data: bytes | None = None, timeout_s: float = 60) -> list[dict]:
        """Publish `manifest`; once accepted, the chunks of `data`; returns the acks of that update when done."""
        update_id = manifest["update_id"]
        self.client.publish(self.topics.updates_manifest, json.dumps(manifest).encode(), qos=1).wait_for_publish(10)
        assert wait_for(lambda: self.acks_of(update_id), 30), f"no ack for {update_id}"
        if data is not None and self.acks_of(update_id)[0]["status"] == "accepted":
            for payload, props in update_chunks(data):
                self.client.publish(self.topics.updates_chunk(update_id), payload, qos=1, properties=props)
        assert wait_for(lambda: self.acks_of(update_id)[-1]["status"] != "accepted", timeout_s), self.acks_of(update_id)
        return self.acks_of(update_id)

    def acks_of(self, update_id: str) -> list[dict]:
        with self._lock:
            return [a for a in self.acks if a.get("update_id") == update_id]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
