"""Checks shared by the tests where reviews become training data (from `edge-agent platform-review` and
from the review page): export with `edge-agent platform-training-set`, compare its labels and hard
negatives with the decisions, and open the dataset as `edge-agent train --data` does."""

from __future__ import annotations

import json
from pathlib import Path

from agent.tools.training import prepared_split
from tests.agent.test_cli import run_cli


def case_of(store, agent_id: str) -> tuple[int, dict]:
    """(platform case id, the latest signed record) of the one case of `agent_id` in a platform store."""
    with store.direct() as tx:
        platform_case, case_id = tx.run(
            "SELECT platform_case_id, case_id FROM reports WHERE agent_id = ?", (agent_id,)
        ).fetchone()
        text = tx.run("SELECT json FROM cases WHERE case_id = ? ORDER BY revision DESC LIMIT 1", (case_id,)).fetchone()
    return platform_case, json.loads(text[0])


def export(config: Path, out: Path, cwd: Path) -> dict[str, int]:
    """Run `edge-agent platform-training-set` (classes garbage, garbage_bin, overflow); its reviewed.json."""
    done = run_cli("platform-training-set", "-c", str(config), "--out", str(out), "--classes",
                   "garbage,garbage_bin,overflow", "--class-map", "garbage_pile=garbage,overflowing_bin=overflow",
                   cwd=cwd)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads((out / "reviewed.json").read_text())


def assert_labels_match(out: Path, records: dict[str, dict], classes: dict[str, int | None]) -> None:
    """One image per agent in `classes`: labelled with its record's largest box in its class id, or
    without labels (a hard negative) where the class is None."""
    images = {p.stem.split("_")[0]: p for p in out.glob("*/images/*.jpg")}
    assert sorted(images) == sorted(classes)
    labels = {agent_id: path.parent.parent / "labels" / f"{path.stem}.txt" for agent_id, path in images.items()}
    for agent_id, class_id in classes.items():
        if class_id is None:
            assert labels[agent_id].read_text() == "", agent_id
            continue
        boxes = records[agent_id]["explanation"]["boxes"]
        left, top, right, bottom = boxes["crop_px"]
        lines = [line.split() for line in labels[agent_id].read_text().splitlines()]
        assert lines and {int(line[0]) for line in lines} == {class_id}, (agent_id, lines)
        x1, y1, x2, y2 = max(boxes["xyxy"], key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        cx, cy = ((x1 + x2) / 2 - left) / (right - left), ((y1 + y2) / 2 - top) / (bottom - top)
        assert any(abs(float(line[1]) - cx) < 0.01 and abs(float(line[2]) - cy) < 0.01 for line in lines)


def assert_train_accepts(out: Path, run_dir: Path, reviewed: dict[str, int], images: int) -> None:
    """`edge-agent train --data out/data.yaml` splits `images` images and records the review counts."""
    assert sum(v for k, v in reviewed.items() if k.endswith(("labelled", "negatives"))) == images
    split = prepared_split(out / "data.yaml", run_dir)  # what `edge-agent train --data` does first
    assert split.train_images + split.val_images == images and split.reviewed == reviewed
    assert json.loads((run_dir / "training-data.json").read_text())["reviewed"] == reviewed
