"""Shared fixtures: real mosquitto brokers on free ports, real encoded clips, the schema validator."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt
import pytest

from agent.config import resources

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared beside the checkout holds the sample data)")
    return path


@dataclass
class Broker:
    """A mosquitto process on 127.0.0.1; stop() and start() keep the same port."""

    port: int
    workdir: Path
    process: subprocess.Popen | None = None
    extra_conf: str = "allow_anonymous true\n"

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nuser root\npersistence false\n{self.extra_conf}")
        self.process = subprocess.Popen(
            [_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _mosquitto() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if not found:
        pytest.fail("mosquitto is not installed: run the README's test command (it installs it)")
    return found


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(free_port(), tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def broker_port_unstarted(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(free_port(), tmp_path)
    yield b
    b.stop()


@dataclass
class Receiver:
    """A platform stand-in: subscribes to everything under the prefix and keeps every message."""

    port: int
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cases(self) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p in self.messages if t.endswith("/cases")]

    def payload(self, topic_suffix: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.messages if t.endswith(topic_suffix)]

    def wait_for_cases(self, n: int, timeout_s: float) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(self.cases()) < n:
            time.sleep(0.05)
        return self.cases()


@pytest.fixture
def receiver(broker: Broker) -> Iterator[Receiver]:
    rec = Receiver(broker.port)
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    subscribed = threading.Event()

    def on_message(_c, _u, msg) -> None:
        with rec.lock:
            rec.messages.append((msg.topic, msg.payload))

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert subscribed.wait(10), "test receiver could not subscribe"
    yield rec
    client.loop_stop()
    client.disconnect()


@pytest.fixture(scope="session")
def case_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(resources.CASE_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    return resources.builtin("sample")


@pytest.fixture(scope="session")
def model_path() -> Path:
    return resources.builtin("garbage")


def make_clip(
    path: Path, seconds: float = 4, size: str = "640x360", rate: int = 15, creation_time: str | None = None
) -> Path:
    """A real H.264 file from ffmpeg's test pattern (a keyframe every second, no B-frames)."""
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate={rate}",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            str(rate),
            "-bf",
            "0",
            "-pix_fmt",
            "yuv420p",
            *(["-metadata", f"creation_time={creation_time}"] if creation_time else []),
            str(path),
        ],
        check=True,
    )
    return path


def agent_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent.cli", *args]
