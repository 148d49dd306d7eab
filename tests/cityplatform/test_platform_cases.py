"""One platform case per problem across agents, on a real PostgreSQL + PostGIS: reports of one pile from
several agents join one case, a report 200 m away opens another, how sure each position is counts, and
every platform case with a position gets its grid cell, street office, code and due time."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cityplatform.config import CaseCode, GridLayer, PlatformConfig, PostgresConfig, TypeRule
from cityplatform.store_postgres import PostgresStore
from protocol.signing import Signer
from tests.cityplatform.platform_records import record_at
from tests.conftest import REPO, agent_cmd

GARBAGE = TypeRule(
    join_distance_m=30, code=CaseCode(standard="GB/T 30428.2-2013", code="01-10", name="暴露垃圾"), due_working_hours=4
)


@pytest.fixture
def store(postgres: PostgresConfig):
    config = PlatformConfig(
        grid=GridLayer(file=REPO / "configs" / "example-grid.geojson"), types={"garbage_pile": GARBAGE}
    )
    store = PostgresStore(postgres, config)
    yield store
    store.close()


def file(store: PostgresStore, record: dict, at: float | None = None) -> int:
    """Store a revision as the receiver does; its platform case id."""
    with store.transaction(f"case:{record['id']}") as tx:
        assert tx.insert_case(record["id"], record["revision"], record["agent_id"], at or time.time(), "{}")
        store.case_stored(tx, record, at or time.time())
        return tx.run("SELECT platform_case_id FROM reports WHERE case_id = ?", (record["id"],)).fetchone()[0]


def platform_cases(store: PostgresStore) -> list[tuple]:
    with store.direct() as tx:
        return tx.run(
            "SELECT p.id, p.dispatch, p.grid_code, p.street, p.district, p.code, p.due_at, COUNT(r.case_id) "
            "FROM platform_cases p LEFT JOIN reports r ON r.platform_case_id = p.id GROUP BY p.id ORDER BY p.id",
            (),
        ).fetchall()


def test_reports_of_one_pile_join_and_200_m_away_is_a_new_case(store: PostgresStore, signer: Signer) -> None:
    first = file(store, record_at(signer, "car-1"))
    assert file(store, record_at(signer, "car-2", north_m=8)) == first
    assert file(store, record_at(signer, "cam-3", east_m=-12, method="homography")) == first
    far = file(store, record_at(signer, "car-4", east_m=200))
    assert far != first
    counts = {row[0]: row[-1] for row in platform_cases(store)}
    assert counts == {first: 3, far: 1}


def test_uncertain_positions_join_further_apart_than_sure_ones(store: PostgresStore, signer: Signer) -> None:
    """32 m apart: two located objects (5 m each) are two piles; two camera positions (24.5 m each, as the
    sample's vehicle sends) may well be one."""
    sure = file(store, record_at(signer, "cam-1", north_m=-500))
    assert file(store, record_at(signer, "cam-2", north_m=-468)) != sure
    unsure = file(store, record_at(signer, "car-1", accuracy_m=24.5, method="camera_position:nmea"))
    assert file(store, record_at(signer, "car-2", north_m=32, accuracy_m=24.5, method="camera_position:nmea")) == unsure
    # and the case takes the position of its surest report: a located object 3 m off joins and moves it
    assert file(store, record_at(signer, "cam-3", north_m=3, accuracy_m=2.0)) == unsure
    with store.direct() as tx:
        uncertainty = tx.run("SELECT uncertainty_m FROM platform_cases WHERE id = ?", (unsure,)).fetchone()[0]
    assert uncertainty == 2.0


def test_an_agent_two_cases_stay_two_platform_cases(store: PostgresStore, signer: Signer) -> None:
    """The agent that saw both and filed two cases saw two problems; another agent's report joins one."""
    one = file(store, record_at(signer, "car-1"))
    two = file(store, record_at(signer, "car-1", north_m=20, seconds=5))
    assert one != two
    assert file(store, record_at(signer, "car-2", north_m=2)) == one


def test_a_new_revision_updates_its_report(store: PostgresStore, signer: Signer) -> None:
    case = file(store, record_at(signer, "car-1"))
    assert file(store, record_at(signer, "car-1", north_m=1, revision=2)) == case
    with store.direct() as tx:
        assert tx.run("SELECT COUNT(*), MAX(revision) FROM reports", ()).fetchone() == (1, 2)


def test_dispatch_fields_from_the_grid_layer_and_the_filing_standard(store: PostgresStore, signer: Signer) -> None:
    filed = datetime(2026, 11, 20, 2, 30, tzinfo=UTC).timestamp()  # Friday 10:30 in Hangzhou
    file(store, record_at(signer, "car-1"), at=filed)
    ((_id, dispatch, grid, street, district, code, due, _n),) = platform_cases(store)
    assert (dispatch, grid, street, district, code) == (
        "grid",
        "EX-0101",
        "示例西街道（虚构）",
        "示例区（虚构）",
        "01-10",
    )
    assert due == datetime(2026, 11, 20, 6, 30, tzinfo=UTC)  # 4 working hours later: 14:30 local


def test_no_position_or_outside_the_grid_is_marked_for_manual_dispatch(store: PostgresStore, signer: Signer) -> None:
    nowhere = file(store, record_at(signer, "car-1", located=False))
    assert file(store, record_at(signer, "car-2", located=False, seconds=1)) != nowhere  # never joined by guess
    file(store, record_at(signer, "car-3", north_m=5000))
    rows = platform_cases(store)
    assert [(r[1], r[2], r[3], r[5], r[6]) for r in rows] == [("manual", None, None, "01-10", None)] * 3
    with store.direct() as tx:
        reasons = [r[0] for r in tx.run("SELECT dispatch_reason FROM platform_cases ORDER BY id", ()).fetchall()]
    assert "no position" in reasons[0] and "outside every cell" in reasons[2]


def test_a_bad_grid_layer_is_refused_with_its_name(postgres: PostgresConfig, tmp_path: Path) -> None:
    bad = tmp_path / "grid.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]}')
    with pytest.raises(ValueError, match=r"grid\.geojson: feature 0 has no properties\.code"):
        PostgresStore(postgres, PlatformConfig(grid=GridLayer(file=bad)))


def test_export_writes_one_file_per_street_office(
    store: PostgresStore, signer: Signer, postgres: PostgresConfig, tmp_path: Path
) -> None:
    file(store, record_at(signer, "car-1"))  # EX-0101, 示例西街道
    file(store, record_at(signer, "car-2"))  # joins it
    file(store, record_at(signer, "car-3", east_m=150))  # EX-0102, 示例东街道
    file(store, record_at(signer, "car-4", located=False))
    config = tmp_path / "receiver.yaml"
    config.write_text(
        f"mqtt: {{host: 127.0.0.1, port: 1, topic_prefix: city}}\nstore_dir: {tmp_path / 'platform'}\n"
        f"postgres: {{port: {postgres.port}, dbname: {postgres.dbname}, user: {postgres.user}, sslmode: disable}}\n"
    )
    done = subprocess.run(
        agent_cmd("platform-export", "-c", str(config), "--out", str(tmp_path / "out")),
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    files = {p.name: json.loads(p.read_text()) for p in (tmp_path / "out").iterdir()}
    assert sorted(files) == ["manual-dispatch.json", "street-示例东街道_虚构.json", "street-示例西街道_虚构.json"]
    west = files["street-示例西街道_虚构.json"]
    assert west["street"] == "示例西街道（虚构）" and len(west["cases"]) == 1
    (case,) = west["cases"]
    assert case["grid"]["code"] == "EX-0101" and case["code"]["name"] == "暴露垃圾" and case["due_at"]
    assert [r["agent_id"] for r in case["reports"]] == ["car-1", "car-2"]
    assert files["manual-dispatch.json"]["cases"][0]["dispatch_reason"].startswith("no position")
