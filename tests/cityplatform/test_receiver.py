"""The reference receiver against hostile input, on a real mosquitto: it stays up, answers what it can
`rejected` with a reason, writes nothing outside its store, and trusts only enrolled agent keys."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import NamedTuple

import pytest

from protocol.messages import Chunk
from protocol.signing import Signer
from tests.cityplatform.receiver_helpers import Client, signed_case
from tests.conftest import Broker
from tests.upload_fixtures import AGENT, PREFIX, make_cases, make_uploader, start_receiver, wait_until
from uploader import Outbox


def chunk_props(data: bytes, case_id: str, name: str = "snapshot.jpg", **overrides: str) -> dict[str, str]:
    """The user properties of a good one-chunk file, with some of them changed."""
    chunk = Chunk(case_id, 1, name, 0, 1, hashlib.sha256(data).hexdigest(), len(data), "image/jpeg", data)
    return dict(chunk.properties().UserProperty) | overrides


class Hostile(NamedTuple):
    what: str
    topic: str  # under the prefix
    payload: bytes
    props: dict[str, str] | None = None
    answer: tuple[str, str] | None = None  # (kind, case id) an ack must name; None: it must not be answered
    reason: str = ""  # in the rejection's reason


def hostile_messages(tmp_path: Path) -> list[Hostile]:
    data = b"\xff\xd8 not really a jpeg"
    stranger = Signer.load_or_create(tmp_path / "stranger-keys")
    forged_id, forged = signed_case(tmp_path, stranger, 50)
    other_id, other_agents = signed_case(tmp_path, stranger, 51)
    ids = [str(uuid.uuid4()) for _ in range(10)]
    big = b"x" * (1 << 20)
    chunk_topic = f"{AGENT}/evidence/{{}}/snapshot.jpg".format
    return [
        Hostile("case: null", f"{AGENT}/cases", b"null"),
        Hostile("case: []", f"{AGENT}/cases", b"[]"),
        Hostile("case: empty", f"{AGENT}/cases", b""),
        Hostile("case: binary", f"{AGENT}/cases", bytes(range(256))),
        Hostile("case: JSON string", f"{AGENT}/cases", b'"a case"'),
        Hostile("case: [ nested 100000 deep", f"{AGENT}/cases", b"[" * 100_000),
        Hostile("case: id ../../x", f"{AGENT}/cases", b'{"id": "../../x", "revision": 1}'),
        Hostile(
            "case: 2 MB", f"{AGENT}/cases", json.dumps({"id": ids[0], "revision": 1, "p": "x" * 2_000_000}).encode()
        ),
        Hostile(
            "case: wrong schema",
            f"{AGENT}/cases",
            json.dumps({"id": ids[1], "revision": 1}).encode(),
            answer=("case", ids[1]),
            reason="schema",
        ),
        Hostile(
            "case: signed by another key",
            f"{AGENT}/cases",
            forged,
            answer=("case", forged_id),
            reason="signed with key",
        ),
        Hostile(
            "case: car-1's case on car-2's topic",
            "car-2/cases",
            other_agents,
            answer=("case", other_id),
            reason="does not match the topic",
        ),
        Hostile("topic: agent id '..'", "../cases", b"null"),
        Hostile("key: not a key", f"{AGENT}/key", b"not a key"),
        Hostile("evidence-status: binary", f"{AGENT}/evidence-status", bytes(range(256))),
        Hostile("chunk: no user properties", chunk_topic(ids[2]), data),
        Hostile("chunk: garbage properties", f"{AGENT}/evidence/x/y", data, {"case_id": "x", "revision": "one"}),
        Hostile("chunk: case_id ../../x", chunk_topic("x"), data, chunk_props(data, "../../x")),
        Hostile(
            "chunk: name ../x.jpg",
            f"{AGENT}/evidence/{ids[3]}/x.jpg",
            data,
            chunk_props(data, ids[3], name="../x.jpg"),
            ("evidence", ids[3]),
            "plain file name",
        ),
        Hostile(
            "chunk: index 5 of 1",
            chunk_topic(ids[4]),
            data,
            chunk_props(data, ids[4], index="5"),
            ("evidence", ids[4]),
            "out of range",
        ),
        Hostile(
            "chunk: 1 MB for a 20-byte file",
            chunk_topic(ids[5]),
            big,
            chunk_props(data, ids[5], chunk_sha256=hashlib.sha256(big).hexdigest()),
            ("evidence", ids[5]),
            "bytes, not",
        ),
        Hostile(
            "chunk: wrong chunk_sha256",
            chunk_topic(ids[6]),
            data,
            chunk_props(data, ids[6], chunk_sha256="0" * 64),
            ("evidence", ids[6]),
            "chunk_sha256",
        ),
        Hostile(
            "chunk: topic names another case",
            chunk_topic(ids[8]),
            data,
            chunk_props(data, ids[7]),
            ("evidence", ids[7]),
            "topic does not name",
        ),
        Hostile(
            "chunk: count 0",
            chunk_topic(ids[9]),
            data,
            chunk_props(data, ids[9], count="0"),
            ("evidence", ids[9]),
            "out of range",
        ),
        Hostile(
            "chunk: a case never sent",
            chunk_topic(forged_id),
            data,
            chunk_props(data, forged_id),
            ("evidence", forged_id),
            "did not arrive",
        ),
        Hostile(
            "chunk: from car-2, not enrolled",
            f"car-2/evidence/{other_id}/snapshot.jpg",
            data,
            chunk_props(data, other_id),
        ),
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def store_options(request: pytest.FixtureRequest) -> dict:
    """The receiver's store: SQLite in store_dir, or a fresh PostgreSQL + PostGIS database."""
    return {} if request.param == "sqlite" else {"postgres": request.getfixturevalue("postgres")}


def test_no_message_stops_the_receiver_and_each_gets_its_answer(
    tmp_path: Path, broker: Broker, signer, store_options: dict
) -> None:
    enrolled = {AGENT: signer.public_pem}
    receiver = start_receiver(broker.port, tmp_path / "platform", enrolled=enrolled, case_wait_s=1, **store_options)
    client = Client(broker.port)
    client.watch(f"{PREFIX}/+/ack")
    messages = hostile_messages(tmp_path)
    outbox = Outbox(tmp_path / "outbox")
    uploader = make_uploader(outbox, broker.port, signer)
    try:
        for message in messages:
            assert client.publish(f"{PREFIX}/{message.topic}", message.payload, message.props).is_published()
        (good,) = make_cases(outbox, signer, 1)
        uploader.start()
        assert wait_until(lambda: outbox.counts().get("acked") == 1, timeout_s=20), outbox.counts()
        snapshot = tmp_path / "platform" / "cases" / AGENT / good / "r1" / "snapshot.jpg"
        assert wait_until(snapshot.exists, timeout_s=10)
        never_sent = messages[-2].answer
        assert wait_until(lambda: client.ack_for(*never_sent) is not None, timeout_s=10)  # waited, then rejected
        answered = set()
        for message in messages:
            if message.answer is None:
                continue
            ack = client.ack_for(*message.answer)
            assert ack is not None and ack["status"] == "rejected", (message.what, ack)
            assert message.reason in ack["reason"], (message.what, ack["reason"])
            answered.add(message.answer[1])
        for ack in client.acks:  # nothing else was answered (the good case's acks aside)
            assert ack["case_id"] in answered | {good}, ack
        # a chunk of a stored case that its signed case does not list
        extra = b"extra"
        client.publish(f"{PREFIX}/{AGENT}/evidence/{good}/other.jpg", extra, chunk_props(extra, good, "other.jpg"))
        assert wait_until(lambda: any(a.get("name") == "other.jpg" for a in client.acks), timeout_s=10)
        assert "not in the evidence" in next(a for a in client.acks if a.get("name") == "other.jpg")["reason"]
        assert not (snapshot.parent / "other.jpg").exists()
        assert receiver.stored == 1
    finally:
        uploader.stop(0)
        receiver.stop()
    # restarted with the same session: nothing poisonous is delivered again, and it keeps storing
    receiver = start_receiver(broker.port, tmp_path / "platform", enrolled=enrolled, **store_options)
    uploader = make_uploader(outbox, broker.port, signer)
    try:
        (second,) = make_cases(outbox, signer, 1, start=1)
        uploader.start()
        assert wait_until(lambda: (second, 1) in receiver.case_ids(), timeout_s=20)
    finally:
        uploader.stop(0)
        receiver.stop()
        client.close()


def test_paths_from_outside_never_leave_the_store(tmp_path: Path, broker: Broker, signer: Signer) -> None:
    store = tmp_path / "platform"
    receiver = start_receiver(broker.port, store, enrolled={AGENT: signer.public_pem})
    client = Client(broker.port)
    data = b"\xff\xd8 escaped"
    good_id = str(uuid.uuid4())
    before = set(tmp_path.rglob("*"))
    try:
        for case_id, name in (("../../../outside", "snapshot.jpg"), (good_id, "../../../../outside.jpg")):
            topic = f"{PREFIX}/{AGENT}/evidence/{case_id}/{name}"
            client.publish(topic, data, chunk_props(data, case_id, name=name))
        client.publish(f"{PREFIX}/../evidence/{good_id}/snapshot.jpg", data, chunk_props(data, good_id))
        (good,) = make_cases(outbox := Outbox(tmp_path / "outbox"), signer, 1)
        uploader = make_uploader(outbox, broker.port, signer)
        uploader.start()
        try:
            assert wait_until(lambda: (store / "cases" / AGENT / good / "r1" / "snapshot.jpg").exists(), timeout_s=20)
        finally:
            uploader.stop(0)
    finally:
        receiver.stop()
        client.close()
    created = {p for p in set(tmp_path.rglob("*")) - before if not p.is_relative_to(tmp_path / "outbox")}
    outside = sorted(str(p) for p in created if not p.is_relative_to(store))
    assert outside == []
    assert not list(store.rglob("*outside*")) and not (store / good_id).exists()
    assert not list(tmp_path.parent.glob("outside*"))
