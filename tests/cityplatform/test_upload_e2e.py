"""Every accepted case reaches the platform exactly once: real mosquitto, the reference receiver,
an uploader that is killed, a broker that is killed, a link that is throttled and cut."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol.signing import Signer
from tests.conftest import REPO, Broker
from tests.upload_fixtures import AGENT, make_cases, make_uploader, start_receiver, wait_until
from uploader import Outbox
from uploader.budget import utc_day


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer.load_or_create(tmp_path / "keys")


def delivered(outbox_dir: Path) -> bool:
    """Every case and every file acknowledged: nothing left in the outbox's folders (which the uploader
    deletes while this looks: a case folder that goes meanwhile holds nothing)."""
    for case in os.scandir(outbox_dir / "cases"):
        try:
            if any(entry.name.startswith("r") for entry in os.scandir(case.path)):
                return False
        except FileNotFoundError:
            continue
    return True


def stored_ids(receiver) -> list[str]:
    return [cid for cid, _rev in receiver.case_ids()]


def test_broker_down_while_cases_pile_up_then_all_arrive_once(
    tmp_path: Path, broker_port_unstarted: Broker, signer: Signer
) -> None:
    broker = broker_port_unstarted
    outbox = Outbox(tmp_path / "outbox")
    uploader = make_uploader(outbox, broker.port, signer)
    uploader.start()
    ids = make_cases(outbox, signer, 100)
    time.sleep(1.5)  # the uploader tries and backs off
    assert outbox.counts()["pending"] == 100
    broker.start()
    receiver = start_receiver(broker.port, tmp_path / "platform")
    try:
        assert wait_until(lambda: outbox.counts()["acked"] == 100, timeout_s=60), outbox.counts()
        assert sorted(stored_ids(receiver)) == sorted(ids)
        assert receiver.stored == 100 and receiver.rejected == 0
        # once their snapshots are acknowledged too, the cases leave the box
        assert wait_until(lambda: delivered(tmp_path / "outbox"), timeout_s=30)
        for cid in ids[:5]:
            assert (tmp_path / "platform" / "cases" / AGENT / cid / "r1" / "snapshot.jpg").exists()
    finally:
        uploader.stop(0)
        receiver.stop()


def test_uploader_killed_20_times_loses_and_duplicates_nothing(tmp_path: Path, broker: Broker, signer: Signer) -> None:
    outbox = Outbox(tmp_path / "outbox")
    ids = make_cases(outbox, signer, 100, clip_bytes=250_000)  # 16 chunks each: kills land mid-file
    outbox.close()
    receiver = start_receiver(broker.port, tmp_path / "platform")
    rng = random.Random(7)
    cmd = [
        sys.executable,
        "-m",
        "tests.upload_fixtures",
        str(tmp_path / "outbox"),
        str(broker.port),
        str(tmp_path / "keys"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        mid_upload = 0  # kills that found the upload unfinished after them
        for _ in range(20):
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if delivered(tmp_path / "outbox"):
                break  # a fast CPU finishes 25 MB between kills: the kills before this one landed mid-upload
            mid_upload += 1
        assert mid_upload >= 5, f"only {mid_upload} kills landed during the upload"
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: delivered(tmp_path / "outbox"), timeout_s=120)
        proc.kill()
        proc.wait()
        stored = stored_ids(receiver)
        assert sorted(stored) == sorted(ids)  # every case, and each once
        assert receiver.stored == 100
        for cid in ids:
            clip = tmp_path / "platform" / "cases" / AGENT / cid / "r1" / "clip.mp4"
            assert clip.stat().st_size == 250_000
    finally:
        receiver.stop()


def test_broker_killed_during_upload_loses_nothing(tmp_path: Path, broker: Broker, signer: Signer) -> None:
    outbox = Outbox(tmp_path / "outbox")
    ids = make_cases(outbox, signer, 40, clip_bytes=100_000)
    receiver = start_receiver(broker.port, tmp_path / "platform")
    uploader = make_uploader(outbox, broker.port, signer, ack_timeout_s=3)
    uploader.start()
    try:
        assert wait_until(lambda: outbox.counts()["acked"] >= 5, timeout_s=30)
        assert not delivered(tmp_path / "outbox")  # the broker dies mid-upload
        broker.stop()  # SIGKILL: what it had acknowledged but not passed on is gone
        time.sleep(1)
        broker.start()
        assert wait_until(lambda: delivered(tmp_path / "outbox"), timeout_s=90), outbox.counts()
        assert sorted(stored_ids(receiver)) == sorted(ids)
    finally:
        uploader.stop(0)
        receiver.stop()


def test_two_receivers_share_the_load_and_store_each_case_once(tmp_path: Path, broker: Broker, signer: Signer) -> None:
    outbox = Outbox(tmp_path / "outbox")
    ids = make_cases(outbox, signer, 50, clip_bytes=70_000)
    store = tmp_path / "platform"  # one database and folder shared by both, as on a platform's shared disk
    first = start_receiver(broker.port, store, client_id="rx-1")
    second = start_receiver(broker.port, store, client_id="rx-2")
    uploader = make_uploader(outbox, broker.port, signer)
    uploader.start()
    try:
        assert wait_until(lambda: delivered(tmp_path / "outbox"), timeout_s=60), outbox.counts()
        assert sorted(stored_ids(first)) == sorted(ids)
        assert first.stored + second.stored == 50
        assert first.stored > 0 and second.stored > 0  # both took a share
    finally:
        uploader.stop(0)
        first.stop()
        second.stop()


def test_tampered_case_is_rejected_and_the_agent_says_so(
    tmp_path: Path, broker: Broker, signer: Signer, caplog
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    (cid,) = make_cases(outbox, signer, 1)
    case_file = tmp_path / "outbox" / "cases" / cid / "r1" / "case.json"
    case_file.write_text(case_file.read_text().replace('"frames": 3', '"frames": 30'))
    receiver = start_receiver(broker.port, tmp_path / "platform")
    uploader = make_uploader(outbox, broker.port, signer)
    uploader.start()
    try:
        assert wait_until(lambda: outbox.counts().get("rejected", 0) == 1, timeout_s=20), outbox.counts()
        assert receiver.rejected == 1 and receiver.stored == 0
        assert "REJECTED" in caplog.text and "signature does not match" in caplog.text
    finally:
        uploader.stop(0)
        receiver.stop()


def test_throttled_link_with_cuts_keeps_priorities_and_resumes_clips(
    tmp_path: Path, broker: Broker, signer: Signer
) -> None:
    import threading

    import paho.mqtt.client as mqtt

    from protocol.messages import CHUNK_BYTES
    from tests.netproxy import ThrottlingProxy

    proxy = ThrottlingProxy(broker.port, kbit_per_s=100)
    proxy.start()
    arrivals: list[tuple[str, int]] = []  # (what, chunk index) in the order the broker passed them on

    def on_message(_client, _userdata, message) -> None:
        if message.topic.endswith("/cases"):
            arrivals.append((f"case {json.loads(message.payload)['id']}", -1))
        else:
            arrivals.append((message.topic, int(dict(message.properties.UserProperty)["index"])))

    watcher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("city/car-1/cases", qos=1)
    watcher.subscribe("city/car-1/evidence/#", qos=1)
    watcher.loop_start()
    outbox = Outbox(tmp_path / "outbox")
    clip_case = make_cases(outbox, signer, 1, clip_bytes=5 * CHUNK_BYTES + 5000)[0]  # six chunks
    ids = [clip_case, *make_cases(outbox, signer, 5, start=1)]
    receiver = start_receiver(broker.port, tmp_path / "platform")
    uploader = make_uploader(outbox, proxy.port, signer, ack_timeout_s=60)
    uploader.start()
    stop_cuts = threading.Event()

    def cut_now_and_then() -> None:
        rng = random.Random(3)
        while not stop_cuts.wait(rng.uniform(3.0, 5.0)):
            proxy.cut()

    cutter = threading.Thread(target=cut_now_and_then, daemon=True)
    cutter.start()
    try:
        assert wait_until(lambda: delivered(tmp_path / "outbox"), timeout_s=120), outbox.counts()
        stop_cuts.set()
        assert proxy.cuts >= 2
        assert sorted(stored_ids(receiver)) == sorted(ids)
        first_seen = list(dict.fromkeys(arrivals))  # repeats after a cut are allowed; the order is what counts
        kinds = ["case" if what.startswith("case ") else what.rsplit("/", 1)[1] for what, _index in first_seen]
        # priorities: every case before any snapshot, every snapshot before the clip
        assert kinds == ["case"] * 6 + ["snapshot.jpg"] * 6 + ["clip.mp4"] * 6, kinds
        clip_chunks = [i for t, i in arrivals if t.endswith("/clip.mp4")]
        # resumed, not restarted: each cut repeats at most the chunk that was in flight
        assert len(clip_chunks) <= 6 + proxy.cuts
        assert clip_chunks == sorted(clip_chunks), clip_chunks
    finally:
        stop_cuts.set()
        uploader.stop(0)
        receiver.stop()
        watcher.loop_stop()
        proxy.stop()


def schema(name: str):
    import jsonschema

    from agent.config import resources

    path = resources.CASE_SCHEMA.parent / name
    return jsonschema.Draft202012Validator(json.loads(path.read_text()))


def test_daily_budget_defers_evidence_and_says_so(tmp_path: Path, broker: Broker, signer: Signer) -> None:
    import paho.mqtt.client as mqtt

    notices, acks = [], []
    watcher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = lambda _c, _u, m: (notices if m.topic.endswith("evidence-status") else acks).append(
        json.loads(m.payload)
    )
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe([("city/car-1/evidence-status", 1), ("city/car-1/ack", 1)])
    watcher.loop_start()
    outbox = Outbox(tmp_path / "outbox")
    ids = make_cases(outbox, signer, 3)  # ~2 KB of case JSON and a 2 KB snapshot each
    receiver = start_receiver(broker.port, tmp_path / "platform")
    uploader = make_uploader(outbox, broker.port, signer, daily_bytes=8_000)
    uploader.start()
    try:
        assert wait_until(lambda: len(receiver.case_ids()) == 3 and len(notices) >= 1, timeout_s=20)
        time.sleep(1)
        assert sorted(stored_ids(receiver)) == sorted(ids)  # cases always go
        assert outbox.bytes_today(utc_day()) <= 8_000
        deferred = [outbox.file_state(cid, 1, "snapshot.jpg")[0] for cid in ids].count("deferred")
        assert deferred >= 1 and len(notices) == deferred
        for notice in notices:
            schema("evidence-status-v1.schema.json").validate(notice)
        assert {a["kind"] for a in acks} >= {"case"}
        for ack in acks:
            schema("ack-v1.schema.json").validate(ack)
    finally:
        uploader.stop(0)
        receiver.stop()
        watcher.loop_stop()


def test_bandwidth_cap_paces_the_upload(tmp_path: Path, broker: Broker, signer: Signer) -> None:
    outbox = Outbox(tmp_path / "outbox")
    make_cases(outbox, signer, 1, clip_bytes=100_000)
    receiver = start_receiver(broker.port, tmp_path / "platform")
    uploader = make_uploader(outbox, broker.port, signer, kbit_per_s=200)  # 25 kB/s
    started = time.monotonic()
    uploader.start()
    try:
        assert wait_until(lambda: delivered(tmp_path / "outbox"), timeout_s=30)
        # about 104 kB in all, less a first burst of one second's worth: at least 3 s at 25 kB/s
        assert time.monotonic() - started >= 3.0
    finally:
        uploader.stop(0)
        receiver.stop()


def test_unchanged_evidence_goes_once_per_case_and_the_platform_has_every_revisions_set(
    tmp_path: Path, broker: Broker, signer: Signer
) -> None:
    """Field audit: revision 2 (the clip) re-sent the unchanged snapshot and crop, about 88 kB per case on
    4G. Now only what changed goes; the receiver finds each revision's files by sha256 in the case."""
    import hashlib
    from datetime import UTC, datetime

    import paho.mqtt.client as mqtt

    from agent.cases.case import case_id
    from tests.upload_fixtures import accept_revision

    published: list[tuple[int, str, int]] = []  # (revision, name, payload bytes) of every evidence chunk

    def on_message(_client, _userdata, message) -> None:
        props = dict(message.properties.UserProperty)
        published.append((int(props["revision"]), props["name"], len(message.payload)))

    watcher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("city/car-1/evidence/#", qos=1)
    watcher.loop_start()
    outbox_dir = tmp_path / "outbox"
    outbox = Outbox(outbox_dir)
    receiver = start_receiver(broker.port, tmp_path / "platform")
    uploader = make_uploader(outbox, broker.port, signer)
    uploader.start()
    seen = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    cid = case_id(AGENT, "front", "garbage_pile", seen)
    snapshot, crop = os.urandom(60_000), os.urandom(28_000)
    revisions = {
        1: {"snapshot.jpg": snapshot, "crop.jpg": crop},
        2: {"snapshot.jpg": snapshot, "crop.jpg": crop, "clip.mp4": os.urandom(70_000)},  # its clip
        3: {"snapshot.jpg": snapshot, "crop.jpg": os.urandom(30_000)},  # seen again: the crop changed
    }
    try:
        for revision, files in revisions.items():
            assert accept_revision(outbox, signer, cid, revision, seen, files)
            uploader.notify()
            assert wait_until(lambda: delivered(outbox_dir), timeout_s=30), outbox.counts()
        assert wait_until(lambda: sum(n for _r, _n, n in published) >= 70_000 + 30_000 + 88_000, timeout_s=10)
        sent = {r: sorted({name for rev, name, _n in published if rev == r}) for r in revisions}
        assert sent == {1: ["crop.jpg", "snapshot.jpg"], 2: ["clip.mp4"], 3: ["crop.jpg"]}
        assert sum(n for rev, _name, n in published if rev == 2) == 70_000
        for revision, files in revisions.items():
            held = receiver.evidence_files(AGENT, cid, revision)
            assert sorted(held) == sorted(files)
            assert {n: hashlib.sha256(p.read_bytes()).digest() for n, p in held.items()} == {
                n: hashlib.sha256(d).digest() for n, d in files.items()
            }
        assert not (outbox_dir / "cases" / cid).exists()  # all acknowledged: not even the case folder is left
    finally:
        uploader.stop(0)
        receiver.stop()
        watcher.loop_stop()
