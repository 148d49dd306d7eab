"""`edge-agent eval --veto-with builtin:general`: the veto's effect measured through the real models.

Two held-out garbage photos where the general model sees a car (0.40) over an overflowing bin and a
person (0.46) over another: the veto drops those labelled boxes, and eval's recall shows what that costs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.agent.test_cli import ENV
from tests.conftest import agent_cmd, need_shared

PHOTOS = ["000364_jpg.rf.", "000372_jpg.rf."]  # held-out side of split_side (0.15)


def _eval(data: Path, out: Path, *extra: str) -> dict:
    done = subprocess.run(
        agent_cmd("eval", "--model", "builtin:garbage", "--data", str(data), "--json", str(out), *extra),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return {c["name"]: c for c in json.loads(out.read_text())["held_out"]["classes"]}


def test_veto_with_the_general_model_changes_what_eval_counts(tmp_path: Path) -> None:
    dataset = need_shared("datasets/garbage-street-cn/train")
    data = tmp_path / "two"
    for kind in ("images", "labels"):
        (data / kind).mkdir(parents=True)
    for prefix in PHOTOS:
        image = next((dataset / "images").glob(prefix + "*"))
        (data / "images" / image.name).symlink_to(image)
        (data / "labels" / (image.stem + ".txt")).symlink_to(dataset / "labels" / (image.stem + ".txt"))
    plain = _eval(data, tmp_path / "plain.json")
    vetoed = _eval(data, tmp_path / "vetoed.json", "--veto-with", "builtin:general")
    assert plain["overflow"]["instances"] == vetoed["overflow"]["instances"] >= 2
    assert vetoed["overflow"]["recall"] < plain["overflow"]["recall"]


def test_an_unknown_builtin_names_the_bundled_ones(tmp_path: Path) -> None:
    done = subprocess.run(
        agent_cmd("eval", "--model", "builtin:garbage", "--negatives", "x.mp4", "--veto-with", "builtin:nope"),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "builtin:nope" in done.stderr and "builtin:general" in done.stderr
