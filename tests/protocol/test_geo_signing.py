"""GCJ-02 conversion, distances and Ed25519 case signatures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agent.geo.earth import distance_m, wgs84_to_gcj02
from protocol.signing import Signer, canonical_json, verify_record


def test_gcj02_matches_published_reference_pair() -> None:
    # WGS-84 (39.915, 116.404) -> GCJ-02 (39.91640428150164, 116.41024449916938): the reference pair in the
    # tests of wandergis/coordtransform (JavaScript) and Hutool's CoordinateUtilTest (Java).
    assert wgs84_to_gcj02(39.915, 116.404) == pytest.approx((39.91640428150164, 116.41024449916938), abs=1e-12)


def test_gcj02_is_identity_outside_china() -> None:
    assert wgs84_to_gcj02(48.8584, 2.2945) == (48.8584, 2.2945)  # Paris


@pytest.mark.parametrize(
    "lat, lon", [(39.9042, 116.4074), (31.2304, 121.4737), (30.27415, 120.15515), (22.5431, 114.0579)]
)
def test_gcj02_offset_inside_china_is_within_the_known_range(lat: float, lon: float) -> None:
    g_lat, g_lon = wgs84_to_gcj02(lat, lon)
    assert 100 < distance_m(lat, lon, g_lat, g_lon) < 700  # the published range of the GCJ-02 shift


def test_distance_of_one_degree_of_latitude() -> None:
    assert math.isclose(distance_m(30.0, 120.0, 31.0, 120.0), 111195, rel_tol=1e-3)


def test_signature_holds_and_breaks_on_any_change(tmp_path: Path) -> None:
    signer = Signer.load_or_create(tmp_path / "keys")
    assert (tmp_path / "keys" / "agent_ed25519.pem").stat().st_mode & 0o077 == 0
    record = signer.sign({"id": "c1", "score": {"max": 0.91}, "type": "garbage_pile", "name": "暴露垃圾"})
    assert verify_record(record, signer.public_pem) is None
    assert verify_record(record | {"type": "cooking_fumes"}, signer.public_pem) is not None
    other = Signer.load_or_create(tmp_path / "other-keys")
    assert "not with the given public key" in verify_record(record, other.public_pem)
    # the same key is loaded again on the next start
    assert Signer.load_or_create(tmp_path / "keys").key_id == signer.key_id


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": "城管"}]}) == canonical_json(
        {"a": [1, {"c": "城管", "d": 2}], "b": 1}
    )
