"""`detectors:`: several models in one file, each entry checked with its key; `detector:` unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, load_config
from agent.updates.check import check_config
from tests.agent.config.test_config import good, write
from tests.agent.test_cli import run_cli

GARBAGE = {"id": "garbage", "model": "builtin:garbage", "every_s": 2}
SMOKE = {"id": "smoke", "model": "builtin:smoke", "class_map": {"smoke": "cooking_fumes"}, "kinds": ["fixed"]}


def listed(tmp_path: Path, sample_clip: Path, *entries: dict) -> dict:
    data = good(tmp_path, sample_clip)
    del data["detector"]
    return data | {"detectors": list(entries)}


def test_a_detector_section_is_a_one_item_list_with_its_keys(tmp_path: Path, sample_clip: Path) -> None:
    data = good(tmp_path, sample_clip)
    data["detector"] |= {"min_score": 0.4, "class_map": {"garbage": "garbage_pile"}}
    config = load_config(write(tmp_path, data))
    [entry] = config.detector_entries
    assert entry.model == config.detector.model and entry.min_score == 0.4
    assert entry.class_map == {"garbage": "garbage_pile"} and entry.every_s is None
    assert entry.applies_to(config.sources[0])


def test_a_list_of_detectors_loads_with_where_and_how_often(tmp_path: Path, sample_clip: Path) -> None:
    data = listed(tmp_path, sample_clip, GARBAGE, SMOKE)
    data["sources"].append({"id": "van", "kind": "vehicle", "url": str(sample_clip)})
    config = load_config(write(tmp_path, data))
    garbage, smoke = config.detector_entries
    assert config.detector is None
    assert (garbage.id, garbage.every_s) == ("garbage", 2)
    assert (smoke.id, smoke.class_map) == ("smoke", {"smoke": "cooking_fumes"})
    fixed, van = config.sources
    assert garbage.applies_to(fixed) and garbage.applies_to(van)
    assert smoke.applies_to(fixed) and not smoke.applies_to(van)  # kinds: [fixed]


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"model": "nowhere.onnx"}, "detectors[1].model: model file not found"),
        ({"every_s": 0}, "detectors[1].every_s: Input should be greater than 0"),
        ({"kinds": ["car"]}, "detectors[1].kinds[0]: Input should be"),
        ({"class_map": {"smoke": "fumes"}}, "detectors[1].class_map.smoke: Input should be"),
        ({"every": 2}, "detectors[1].every: unknown key; did you mean every_s?"),
        ({"id": "garbage"}, "detectors: id 'garbage' is used twice"),
        ({"sources": ["cam9"]}, "detectors[1].sources: 'cam9' is no source id here"),
    ],
)
def test_each_entry_is_checked_and_named_by_its_key(
    tmp_path: Path, sample_clip: Path, change: dict, problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, listed(tmp_path, sample_clip, GARBAGE, SMOKE | change)))
    assert problem in str(refused.value)


def test_both_forms_or_neither_are_refused(tmp_path: Path, sample_clip: Path) -> None:
    both = listed(tmp_path, sample_clip, GARBAGE) | {"detector": {"model": "builtin:garbage"}}
    neither = listed(tmp_path, sample_clip)
    for data in (both, neither):
        with pytest.raises(ConfigError, match=r"give either `detector:` .* or `detectors:`"):
            load_config(write(tmp_path, data))


def test_check_config_loads_every_model_and_names_the_entry_of_a_foreign_class(
    tmp_path: Path, sample_clip: Path
) -> None:
    wrong = SMOKE | {"class_map": {"garbage": "garbage_pile"}}  # the smoke model has no garbage class
    done = run_cli("check-config", str(write(tmp_path, listed(tmp_path, sample_clip, GARBAGE, wrong))), cwd=tmp_path)
    assert done.returncode == 2
    assert "detectors[1].class_map: 'garbage' not among the classes of smoke-yolov8n-int8.onnx" in done.stderr

    not_a_model = tmp_path / "fake.onnx"
    not_a_model.write_bytes(b"not onnx")
    data = listed(tmp_path, sample_clip, GARBAGE, SMOKE | {"model": str(not_a_model)})
    done = run_cli("check-config", str(write(tmp_path, data)), cwd=tmp_path)
    assert done.returncode == 2 and "detectors[1].model: " in done.stderr and "not a readable ONNX model" in done.stderr

    done = run_cli("check-config", str(write(tmp_path, listed(tmp_path, sample_clip, GARBAGE, SMOKE))), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_check_config_names_the_entry_whose_thresholds_name_a_class_its_model_lacks(
    tmp_path: Path, sample_clip: Path
) -> None:
    """Per-class thresholds (main's `detector.thresholds`) are checked per entry, against its own model:
    `garbage` is a class of the garbage model, not of the smoke model."""
    fine = GARBAGE | {"thresholds": {"garbage": 0.4}}
    wrong = SMOKE | {"thresholds": {"garbage": 0.4}}
    config = load_config(write(tmp_path, listed(tmp_path, sample_clip, fine, SMOKE)))
    assert [d.entry.id for d in check_config(config, "a.yaml")[1]] == ["garbage", "smoke"]
    with pytest.raises(ConfigError) as refused:
        check_config(load_config(write(tmp_path, listed(tmp_path, sample_clip, fine, wrong))), "a.yaml")
    assert str(refused.value).startswith("a.yaml: detectors[1].thresholds: ")
    assert "give scores for the model's own class names" in str(refused.value)
