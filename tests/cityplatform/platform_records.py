"""Signed case records at chosen places, as agents make them, for the platform-case tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.cases.case import case_id
from agent.geo.earth import Location
from agent.geo.geometry import offset
from protocol.signing import Signer
from tests.case_records import make_case

PILE = (30.27415, 120.15515)  # where the bundled sample's first garbage pile is reported
SEEN = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)


def record_at(
    signer: Signer,
    agent_id: str,
    north_m: float = 0.0,
    east_m: float = 0.0,
    *,
    accuracy_m: float | None = 5.0,
    method: str = "ray_cast",
    located: bool = True,
    revision: int = 1,
    seconds: int = 0,
) -> dict:
    """A signed garbage_pile record of `agent_id`, north_m/east_m from PILE (no location: located=False)."""
    lat, lon = offset(*PILE, north_m, east_m)
    seen = SEEN + timedelta(seconds=seconds)
    case = make_case(
        case_id(agent_id, "front", "garbage_pile", seen),
        revision,
        seen,
        agent_id=agent_id,
        source_id="front",
        source_kind="vehicle",
        location=Location(lat, lon, accuracy_m, method) if located else None,
    )
    return signer.sign(case.to_record())
