"""A reload of a `detectors:` configuration: a change to any entry restarts the sources on a new pipeline
with the new list of detectors (its models loaded as check-config loads them); the same file again
changes nothing. A model update names no detector, so it replaces the model of a one-detector
configuration only."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from agent.config import ConfigError, load_config
from agent.config.resources import builtin
from agent.pipeline import Pipeline
from agent.updates.check import check_config_file
from agent.updates.reload import Reloader
from agent.updates.remote import with_model
from agent.updates.supervisor import Supervisor
from protocol.signing import Signer
from uploader import Outbox

GARBAGE = {"id": "garbage", "model": "builtin:garbage", "every_s": 2}
SMOKE = {"id": "smoke", "model": "builtin:smoke", "class_map": {"smoke": "cooking_fumes"}}


def _data(tmp_path: Path, *entries: dict) -> dict:
    return {
        "agent_id": "reload-box",
        "state_dir": str(tmp_path / "state"),
        "sources": [{"id": "cam", "kind": "fixed", "url": str(builtin("sample")), "sample_fps": 1}],
        "detectors": list(entries),
        "evidence": {"clips": False},
        "updates": {"start_check_s": 0.5},
    }


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _wait_ended(supervisor: Supervisor) -> None:
    deadline = time.monotonic() + 120
    while supervisor.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not supervisor.alive()


def test_a_changed_detector_entry_restarts_the_sources_on_the_new_list(tmp_path: Path) -> None:
    data = _data(tmp_path, GARBAGE, SMOKE)
    path = _write(tmp_path / "agent.yaml", data)
    config, detectors = check_config_file(path)
    outbox = Outbox(tmp_path / "state" / "outbox")
    supervisor = Supervisor(Pipeline(config, detectors, outbox, Signer.load_or_create(tmp_path / "state" / "keys")))
    reloader = Reloader(supervisor, config, detectors, path.read_text())
    reloader.start()
    try:
        _wait_ended(supervisor)
        first = supervisor.pipeline
        first.on_detect = observed = lambda model, seconds: None  # as the metrics hook it in
        assert reloader.reload_file(path).status == "unchanged" and supervisor.pipeline is first

        changed = copy.deepcopy(data)
        changed["detectors"][1]["every_s"] = 1  # only the second entry's pace: same models, same versions
        outcome = reloader.reload_file(_write(path, changed))
        assert (outcome.status, outcome.restarted) == ("applied", ["cam"]), outcome
        assert supervisor.pipeline is not first
        assert supervisor.pipeline.on_detect is observed  # the inference histogram follows the new pipeline
        assert [(d.entry.id, d.entry.every_s) for d in supervisor.pipeline.detectors] == [("garbage", 2), ("smoke", 1)]
        assert reloader.detectors is supervisor.pipeline.detectors
        _wait_ended(supervisor)
    finally:
        supervisor.stop_all()
        supervisor.pipeline.registry.close()


def test_a_model_update_replaces_the_model_of_one_detector_and_is_refused_with_several(tmp_path: Path) -> None:
    new = tmp_path / "new.onnx"
    one = load_config(_write(tmp_path / "one.yaml", _data(tmp_path, GARBAGE)))
    assert [e.model for e in with_model(one, new).detector_entries] == [new]
    short = _data(tmp_path) | {"detector": {"model": "builtin:garbage"}}
    del short["detectors"]
    assert with_model(load_config(_write(tmp_path / "short.yaml", short)), new).detector.model == new
    two = load_config(_write(tmp_path / "two.yaml", _data(tmp_path, GARBAGE, SMOKE)))
    with pytest.raises(ConfigError, match=r"runs 2 \(garbage, smoke\); send a configuration update"):
        with_model(two, new)
