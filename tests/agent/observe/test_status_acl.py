"""The shipped broker ACL lets a box publish its own status topics, and only its own."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from protocol.messages import Topics
from tests.conftest import REPO, Broker, free_port
from tests.upload_fixtures import wait_until


def client(port: int, user: str, password: str) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert connected.wait(10)
    return c


def test_the_acl_lets_a_box_publish_its_source_status_and_stats_and_not_another_boxs(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    passwords.touch(mode=0o600)
    for user, password in {"edge-receiver": "rx-pw", "car-1": "car1-pw"}.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True, timeout=30)
    acl = REPO / "configs" / "mosquitto-acl.conf"
    broker = Broker(
        free_port(), tmp_path, extra_conf=f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n"
    )
    broker.start()
    seen: list[str] = []
    platform = client(broker.port, "edge-receiver", "rx-pw")
    subscribed = threading.Event()
    platform.on_subscribe = lambda *a: subscribed.set()
    platform.on_message = lambda _c, _u, m: seen.append(m.topic)
    platform.subscribe("edge-agent/#", qos=1)
    box = client(broker.port, "car-1", "car1-pw")
    try:
        assert subscribed.wait(10)
        own, other = Topics("edge-agent", "car-1"), Topics("edge-agent", "car-2")
        for topic in (other.source_status("gate"), other.stats, own.source_status("gate"), own.stats):
            box.publish(topic, b"{}", qos=1).wait_for_publish(5)
        assert wait_until(lambda: len(seen) >= 2, timeout_s=5), seen
        assert sorted(seen) == sorted([own.source_status("gate"), own.stats])
    finally:
        box.loop_stop()
        platform.loop_stop()
        broker.stop()
