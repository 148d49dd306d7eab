"""`edge-agent platform-loadtest`: simulated agents on the broker of a receiver YAML, against 1..n
receivers (in this process, one MQTT client and one store connection each, one shared subscription):
cases stored per second, publish -> stored p95, lost and duplicated.

Each agent has its own Ed25519 key (a keys_dir file, imported on start), sends a signed case with a snapshot every
60/cases_per_minute seconds (random phase), and, with `resend`, publishes a share of its cases and
chunks twice, as a real agent does after an ack timeout. Lost: a case or file never acknowledged
`stored`, or not in the store. Duplicated: a case or file acknowledged `stored` more than once, or
stored twice. The times are publish -> the `stored` ack seen by the agent's side (an upper bound of
publish -> stored)."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityplatform.config import ReceiverConfig
from cityplatform.receiver import Receiver, open_store
from protocol.messages import CHUNK_BYTES, Chunk, Topics, chunk_count
from protocol.signing import Signer

AREA = (30.27415, 120.15515)  # the example grid's corner (configs/example-grid.geojson)


@dataclass
class LoadResult:
    """What one load run measured."""

    receivers: int
    agents: int
    published: int  # distinct case revisions
    stored: int
    lost: int
    duplicated: int
    files_lost: int
    seconds: float
    p50_s: float
    p95_s: float
    stored_by: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    def row(self) -> str:
        return (
            f"| {self.receivers} | {self.agents} | {self.published} | {self.per_second:.1f} | "
            f"{self.p50_s * 1000:.0f} | {self.p95_s * 1000:.0f} | {self.lost + self.files_lost} | {self.duplicated} |"
        )


HEADER = (
    "| receivers | agents | cases | stored/s | p50 ms | p95 ms | lost | duplicated |\n|---|---|---|---|---|---|---|---|"
)


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_case(signer: Signer, agent_id: str, rng: random.Random, snapshot: bytes) -> dict:
    """A signed case-v1 record at a random place within about 1 km of AREA, with one snapshot."""
    lat, lon = AREA[0] + rng.uniform(-0.01, 0.01), AREA[1] + rng.uniform(-0.01, 0.01)
    now = _utc(time.time())
    record = {
        "id": str(uuid.uuid4()),
        "revision": 1,
        "schema_version": "1.1",
        "agent_id": agent_id,
        "source": {"id": "front", "kind": "vehicle"},
        "type": "garbage_pile",
        "codes": [],
        "first_seen": now,
        "last_seen": now,
        "location": {
            "lat": lat,
            "lon": lon,
            "crs": "WGS84",
            "gcj02": {"lat": lat, "lon": lon},
            "accuracy_m": 5.0,
            "method": "ray_cast",
        },
        "grid": None,
        "score": {"max": 0.9, "mean": 0.8, "frames": 3},
        "model": {"name": "loadtest", "version": "1"},
        "evidence": [
            {
                "name": "snapshot.jpg",
                "media_type": "image/jpeg",
                "sha256": hashlib.sha256(snapshot).hexdigest(),
                "bytes": len(snapshot),
            }
        ],
    }
    return signer.sign(record)


class _Acks:
    """Every ack on {prefix}/+/ack, with when it was seen."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[float, dict]] = []
        self.client = _client(config, "loadtest-acks")
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.subscribe(f"{config.mqtt.topic_prefix}/+/ack", qos=1)
        if not ready.wait(10):
            raise RuntimeError("the ack subscription was not confirmed by the broker")

    def _on_message(self, _client, _userdata, message) -> None:
        with self.lock:
            self.seen.append((time.monotonic(), json.loads(message.payload)))

    def stored(self) -> list[tuple[float, dict]]:
        with self.lock:
            return [(t, a) for t, a in self.seen if a.get("status") == "stored"]


def _client(config: ReceiverConfig, client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if config.mqtt.username:
        client.username_pw_set(config.mqtt.username, config.mqtt.secret())
    client.connect(config.mqtt.host, config.mqtt.port)
    client.loop_start()
    return client


def _publish_case(client: mqtt.Client, topics: Topics, record: dict, snapshot: bytes) -> None:
    client.publish(topics.cases, json.dumps(record).encode(), qos=1)
    sha = record["evidence"][0]["sha256"]
    count = chunk_count(len(snapshot))
    for index in range(count):
        data = snapshot[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES]
        chunk = Chunk(record["id"], 1, "snapshot.jpg", index, count, sha, len(snapshot), "image/jpeg", data)
        client.publish(topics.evidence(record["id"], "snapshot.jpg"), data, qos=1, properties=chunk.properties())


def run_load(
    config: ReceiverConfig,
    receivers: int,
    agents: int,
    cases_per_minute: float,
    duration_s: float,
    snapshot_bytes: int = 40_000,
    resend: float = 0.0,
    connections: int = 20,
    drain_s: float = 60.0,
    seed: int = 1,
) -> LoadResult:
    """Run the load against `receivers` fresh receivers sharing config's store; measure it."""
    rng = random.Random(seed)
    signers = {f"load-{seed}-{n:04d}": Signer(Ed25519PrivateKey.generate()) for n in range(agents)}
    config.trusted_keys_dir.mkdir(parents=True, exist_ok=True)
    for agent_id, signer in signers.items():
        (config.trusted_keys_dir / f"{agent_id}.pem").write_bytes(signer.public_pem)
    running = [
        Receiver(config.model_copy(update={"client_id": f"{config.client_id}-load-{n}"})) for n in range(receivers)
    ]
    for receiver in running:
        receiver.start()
        if not receiver.connection.connected.wait(10):
            raise RuntimeError(f"receiver could not connect to {config.mqtt.host}:{config.mqtt.port}")
    acks = _Acks(config)
    pool = [_client(config, f"loadtest-agents-{seed}-{n}") for n in range(min(connections, agents))]
    time.sleep(0.5)  # the receivers' SUBACKs
    period = 60.0 / cases_per_minute
    due = sorted((rng.uniform(0, period), agent_id) for agent_id in signers)
    sent: dict[str, float] = {}
    start = time.monotonic()
    try:
        while due and (next_at := due[0][0]) < duration_s:
            time.sleep(max(0.0, start + next_at - time.monotonic()))
            _at, agent_id = due.pop(0)
            snapshot = b"\xff\xd8" + rng.randbytes(snapshot_bytes - 2)
            record = make_case(signers[agent_id], agent_id, rng, snapshot)
            client = pool[hash(agent_id) % len(pool)]
            sent[record["id"]] = time.monotonic()
            for _ in range(2 if rng.random() < resend else 1):
                _publish_case(client, Topics(config.mqtt.topic_prefix, agent_id), record, snapshot)
            due.append((next_at + period, agent_id))
            due.sort()
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and not _complete(acks, sent):
            time.sleep(0.2)
    finally:
        for client in [*pool, acks.client]:
            client.loop_stop()
            client.disconnect()
        stored_by = {r.config.client_id: r.stored for r in running}
        for receiver in running:
            receiver.stop()
    return _measure(config, receivers, agents, sent, acks, start, stored_by)


def _complete(acks: _Acks, sent: dict[str, float]) -> bool:
    kinds = {(a["case_id"], a["kind"]) for _t, a in acks.stored()}
    return all((cid, "case") in kinds and (cid, "evidence") in kinds for cid in sent)


def _measure(
    config: ReceiverConfig,
    receivers: int,
    agents: int,
    sent: dict[str, float],
    acks: _Acks,
    start: float,
    stored_by: dict[str, int],
) -> LoadResult:
    stored = acks.stored()
    case_acks = Counter(a["case_id"] for _t, a in stored if a["kind"] == "case" and a["case_id"] in sent)
    file_acks = Counter(a["case_id"] for _t, a in stored if a["kind"] == "evidence" and a["case_id"] in sent)
    first_ack = {}
    for moment, ack in stored:
        if ack["kind"] == "case":
            first_ack.setdefault(ack["case_id"], moment)
    db = open_store(config)
    with db.direct() as tx:
        in_store = Counter(cid for cid, _rev in tx.case_ids() if cid in sent)
    db.close()
    latencies = sorted(first_ack[cid] - sent[cid] for cid in first_ack if cid in sent)
    end = max(first_ack.values(), default=start)

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return LoadResult(
        receivers=receivers,
        agents=agents,
        published=len(sent),
        stored=len(case_acks),
        lost=sum(1 for cid in sent if not case_acks[cid] or not in_store[cid]),
        duplicated=sum(n - 1 for n in case_acks.values() if n > 1)
        + sum(n - 1 for n in file_acks.values() if n > 1)
        + sum(n - 1 for n in in_store.values() if n > 1),
        files_lost=sum(1 for cid in sent if not file_acks[cid]),
        seconds=end - start,
        p50_s=quantile(0.5),
        p95_s=quantile(0.95),
        stored_by=stored_by,
    )
