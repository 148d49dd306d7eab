"""Bad rule settings (hours, seasons, zones, types) are refused with the key's path, the value and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import ConfigError, parse_config


def config_with(tmp_path: Path, cases: dict) -> str:
    return yaml.safe_dump(
        {
            "agent_id": "box-1",
            "inbox": {"folder": str(tmp_path)},
            "detector": {"model": "builtin:garbage"},
            "cases": cases,
        }
    )


def winter(**change: object) -> dict:
    profile = {"name": "winter", "from": "12-01", "to": "02-28", "rules": {"street_vending": {"min_detections": 5}}}
    profile.update(change)
    return {"profiles": [profile]}


@pytest.mark.parametrize(
    "cases, expected",
    [
        # hours not as HH:MM-HH:MM
        (
            {"rules": {"street_vending": {"hours": ["6-22"]}}},
            ["cases.rules.street_vending.hours[0]", "'6-22'", "HH:MM-HH:MM"],
        ),
        # an impossible time
        (
            {"rules": {"street_vending": {"hours": ["06:00-09:00", "22:00-25:00"]}}},
            ["cases.rules.street_vending.hours[1]", "impossible time", "'22:00-25:00'"],
        ),
        # an empty window
        (
            {"rules": {"cooking_fumes": {"hours": ["08:00-08:00"]}}},
            ["cases.rules.cooking_fumes.hours", "empty or the whole day", "leave `hours` out"],
        ),
        # a bad time zone
        ({"timezone": "Mars/Olympus"}, ["cases.timezone", "unknown time zone", "'Mars/Olympus'", "+08:00"]),
        # an offset out of range
        ({"timezone": "+15:00"}, ["cases.timezone", "out of range", "'+15:00'"]),
        # a day that does not exist
        (winter(**{"from": "12-32"}), ["cases.profiles[0].from", "not a day of the year", "'12-32'"]),
        # a date not as MM-DD
        (winter(to="Feb 28"), ["cases.profiles[0].to", "not MM-DD", "'Feb 28'"]),
        # a season without its first day
        (
            {"profiles": [{"name": "winter", "to": "02-28"}]},
            ["cases.profiles[0].from", "required key is missing"],
        ),
        # an unknown case type in a profile's rules
        (
            winter(rules={"snow_clearing": {"min_detections": 2}}),
            ["cases.profiles[0].rules.snow_clearing", "'street_vending'"],
        ),
        # an unknown case type in the base rules
        ({"rules": {"smoke": {"min_detections": 2}}}, ["cases.rules.smoke", "'cooking_fumes'"]),
        # a misspelt key in a profile's overrides
        (
            winter(rules={"cooking_fumes": {"require_motoin": False}}),
            ["cases.profiles[0].rules.cooking_fumes.require_motoin", "unknown key"],
        ),
        # a negative presence
        (
            {"rules": {"garbage_pile": {"min_present_s": -1}}},
            ["cases.rules.garbage_pile.min_present_s", "greater than or equal to 0"],
        ),
    ],
)
def test_bad_rule_config_names_the_key(tmp_path: Path, cases: dict, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_with(tmp_path, cases), tmp_path, "agent.yaml")
    for text in expected:
        assert text in str(err.value)


def test_good_rule_config_loads(tmp_path: Path) -> None:
    cases = winter()
    cases["rules"] = {"street_vending": {"hours": ["06:00-22:00", "23:30-01:00"]}}
    cases["timezone"] = "Asia/Shanghai"
    config = parse_config(config_with(tmp_path, cases), tmp_path, "agent.yaml")
    assert config.cases.profiles[0].from_ == "12-01"
    assert config.cases.rule("street_vending").hours == ["06:00-22:00", "23:30-01:00"]
