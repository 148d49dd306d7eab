"""Verification by the next pass for a patrol car, end to end: the bundled sample driven with a windscreen
camera, then driven again the next day with its first pile removed from the footage (every frame the
bundled detector finds it on, filled in), uploaded over a real mosquitto to the receiver on a real
PostgreSQL + PostGIS. The removed pile's platform case is verified fixed with the cleared snapshot;
every other problem gets its next revision, and its platform case shows it still there."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.runner import run_agent
from cityplatform.config import PostgresConfig
from cityplatform.export import export_by_street
from tests.cityplatform.test_fleet import RULES
from tests.cityplatform.test_verification import upload
from tests.cleared_footage import patrol_car, track_later, without_case
from tests.conftest import Broker
from tests.upload_fixtures import start_receiver

SAMPLE_START = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)  # the sample's creation_time and its track's first fix
NEXT_DAY = timedelta(days=1)


@pytest.mark.slow
def test_the_sample_driven_again_without_a_pile_clears_it_and_updates_the_others(
    tmp_path: Path, broker: Broker, postgres: PostgresConfig
) -> None:
    store = tmp_path / "platform"
    receiver = start_receiver(broker.port, store, postgres=postgres, platform=RULES)
    try:
        first = patrol_car(tmp_path / "car")
        run_agent(first)
        cases = {r["id"]: r for r in map(json.loads, map(Path.read_bytes, upload(first, broker.port)))}
        # the sample's four photos hold three piles and an overflowing bin (samples/LICENSE.md, their labels)
        assert sorted(r["type"] for r in cases.values()) == ["garbage_pile"] * 3 + ["overflowing_bin"]
        assert {r["location"]["method"] for r in cases.values()} == {"ray_cast"}  # located objects
        piles = sorted((r for r in cases.values() if r["type"] == "garbage_pile"), key=lambda r: r["first_seen"])
        removed = piles[0]

        video = without_case(removed, SAMPLE_START, tmp_path / "next-day.mp4", NEXT_DAY)
        again = patrol_car(tmp_path / "car", video, track_later(tmp_path / "next-day.nmea", NEXT_DAY))
        run_agent(again)
        sent = [json.loads(p.read_bytes()) for p in upload(again, broker.port)]
        (observation,) = [r for r in sent if "case_revision" in r]
        assert observation["case_id"] == removed["id"] and observation["view"]["method"] == "footprint"
        updates = {r["id"]: r for r in sent if "case_revision" not in r}
        assert set(updates) == set(cases) - {removed["id"]}  # the others seen again: no new case, none cleared
        assert all(r["revision"] > cases[r["id"]]["revision"] for r in updates.values())
        assert all(r["last_seen"].startswith("2026-11-21") for r in updates.values())

        with receiver.db.direct() as tx:
            rows = tx.run(
                "SELECT r.case_id, r.revision, p.status, p.verification, p.verified_by FROM reports r "
                "JOIN platform_cases p ON p.id = r.platform_case_id",
                (),
            ).fetchall()
            (exported,) = [
                c
                for path in export_by_street(tx.run, tmp_path / "export")
                for c in json.loads(path.read_text())["cases"]
                if c["verification"] and c["verification"]["state"] == "fixed"
            ]
        platform = {case_id: rest for case_id, *rest in rows}
        assert set(platform) == set(cases)  # one platform case per problem
        assert platform[removed["id"]][1:] == ["verified", "fixed", observation["id"]]
        for case_id, record in updates.items():
            assert platform[case_id] == [record["revision"], "open", "still there", case_id]
        assert exported["verification"]["by"] == observation["id"]
        (snapshot,) = exported["verification"]["evidence"]
        assert (store / snapshot["path"]).read_bytes()[:2] == b"\xff\xd8"  # the clear place's snapshot
    finally:
        receiver.stop()
