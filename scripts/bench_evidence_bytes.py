"""Bytes published per case and outbox bytes left after every ack, for the built-in demo (sample clip,
bundled model) uploaded to a real mosquitto and the reference receiver. Run from a checkout root."""

import json
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as mqtt

from agent.config import default_config
from agent.runner import run_agent
from protocol.broker import MqttConfig
from protocol.signing import Signer
from tests.conftest import Broker, free_port
from tests.upload_fixtures import start_receiver, wait_until
from uploader import MqttSettings, MqttUploader, Outbox, Topics

tmp = Path(tempfile.mkdtemp())
broker = Broker(free_port(), tmp)
broker.start()
chunks: dict[tuple[int, str], int] = defaultdict(int)
lock = threading.Lock()


def on_message(_c, _u, message) -> None:
    props = dict(message.properties.UserProperty)
    with lock:
        chunks[(int(props["revision"]), props["name"])] += len(message.payload)


watcher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
watcher.on_message = on_message
watcher.connect("127.0.0.1", broker.port)
watcher.subscribe("city/demo-box/evidence/#", qos=1)
watcher.loop_start()
platform = start_receiver(broker.port, tmp / "platform")
config = default_config()
config = config.model_copy(
    update={
        "state_dir": tmp / "state",
        "uploader": config.uploader.model_copy(
            update={"mqtt": MqttConfig(host="127.0.0.1", port=broker.port, topic_prefix="city")}
        ),
    }
)
OFFLINE = "--offline" in sys.argv  # the demo runs with no link; the uploader comes up afterwards
result = run_agent(config.model_copy(update={"uploader": default_config().uploader}) if OFFLINE else config)
cases = len(result.summaries[0].case_ids)
# keep an uploader on the outbox until the platform has acknowledged everything
outbox = Outbox(tmp / "state" / "outbox")
uploader = MqttUploader(
    outbox,
    MqttSettings("127.0.0.1", broker.port, client_id="edge-agent-demo-box"),
    Topics("city", "demo-box"),
    public_key_pem=Signer.load_or_create(tmp / "state" / "keys").public_pem,
)
uploader.start()
wait_until(lambda: outbox.unsent() == 0 and outbox.counts().get("sent", 0) == 0, timeout_s=60)
time.sleep(2)
uploader.stop(0)
left = outbox.disk_bytes()
folders = sorted(
    str(p.relative_to(tmp / "state" / "outbox" / "cases")) for p in (tmp / "state" / "outbox" / "cases").glob("*/*")
)
with lock:
    per_rev = defaultdict(int)
    for (rev, _name), n in sorted(chunks.items()):
        per_rev[rev] += n
    detail = {f"r{rev} {name}": n for (rev, name), n in sorted(chunks.items())}

print(
    json.dumps(
        {
            "offline_first": OFFLINE,
            "cases": cases,
            "published_cases_json": result.published,
            "evidence_bytes_by_revision": dict(per_rev),
            "evidence_bytes_total": sum(per_rev.values()),
            "evidence_bytes_per_case": sum(per_rev.values()) / cases,
            "detail": detail,
            "outbox_bytes_left_after_acks": left,
            "outbox_bytes_left_per_case": left / cases,
            "folders_left": folders,
            "outbox_counts": outbox.counts(),
        },
        indent=1,
    )
)
platform.stop()
watcher.loop_stop()
broker.stop()
