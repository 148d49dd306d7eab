"""`edge-agent platform-training-set`: a YOLO dataset from reviewed platform cases, for `edge-agent train`.

Each report of a confirmed case gives its crop.jpg (a clean crop of the evidence frame: the snapshot
has boxes drawn on it) with the case's boxes from its signed record (`explanation.boxes`, schema 1.3)
as labels, in the class of the case's type, or of the corrected type. A case rejected as not a
problem gives its reports' crops as hard negatives (images without labels: the model fired there and
should not); other rejections (a duplicate, outside the rules, another type) say nothing about the
picture and are left out, counted. Reports go to train or val by a hash of (agent, source, day), so
that one camera's day never sits on both sides. File names are built from ids that matched strict
patterns and are checked again to stay inside the output folder; files are read only from store_dir.
"""

from __future__ import annotations

import json
import shutil
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import yaml

from cityplatform.reviews import latest_reviews
from protocol.messages import AGENT_ID, CASE_ID

MIN_VISIBLE = 0.5  # a box cut by the crop's edge is a label when at least this share of it is inside


@dataclass
class TrainingSet:
    """What went into the dataset, for the training output and the model card."""

    data_yaml: Path
    counts: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def side_for(agent_id: str, source_id: str, day: str, val_fraction: float) -> str:
    """'train' or 'val' by a hash of (agent, source, day): the same on every machine and every export."""
    return "val" if zlib.crc32(f"{agent_id}/{source_id}/{day}".encode()) % 1000 < val_fraction * 1000 else "train"


def build_training_set(
    run, store_dir: Path, out_dir: Path, classes: list[str], class_map: dict[str, str], val_fraction: float = 0.2
) -> TrainingSet:
    """Write out_dir/{train,val}/{images,labels}, data.yaml and reviewed.json from the latest reviews.
    `class_map`: case type -> class name in `classes` (a type without one is left out, counted)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty: give a new folder (a dataset is never mixed with an older one)")
    if unknown := sorted(set(class_map.values()) - set(classes)):
        raise ValueError(f"--class-map names {', '.join(unknown)}, not in --classes {','.join(classes)}")
    for side in ("train", "val"):
        for kind in ("images", "labels"):
            (out_dir / side / kind).mkdir(parents=True, exist_ok=True)
    result = TrainingSet(out_dir / "data.yaml")
    for platform_case, case_type, decision, reason, corrected in latest_reviews(run):
        result.counts[f"reviewed_{decision}"] += 1
        if decision == "reject" and reason != "not_a_problem":
            result.counts[f"left_out_rejected_{reason}"] += 1
            continue
        label_type = corrected or case_type
        if decision != "reject" and label_type not in class_map:
            result.counts[f"left_out_no_class_for_{label_type}"] += 1
            continue
        class_id = classes.index(class_map[label_type]) if decision != "reject" else None
        for report in _reports(run, platform_case):
            kind = _write_report(run, store_dir.resolve(), out_dir.resolve(), report, class_id, val_fraction)
            result.counts[kind] += 1
    data = {
        "path": str(out_dir.resolve()),
        "train": "train/images",
        "val": "val/images",
        "names": dict(enumerate(classes)),
    }
    result.data_yaml.write_text(
        yaml.safe_dump(data | {"reviewed": result.summary()}, sort_keys=False, allow_unicode=True)
    )
    (out_dir / "reviewed.json").write_text(json.dumps(result.summary(), indent=1))
    return result


def _reports(run, platform_case: int) -> list[tuple[str, str]]:
    rows = run("SELECT agent_id, case_id FROM reports WHERE platform_case_id = ? ORDER BY case_id", (platform_case,))
    return [tuple(row) for row in rows.fetchall()]


def _write_report(run, store: Path, out: Path, report: tuple[str, str], class_id: int | None, val: float) -> str:
    """Copy one report's crop with its labels (or none: a hard negative); what it counted as."""
    agent_id, case_id = report
    if not (AGENT_ID.fullmatch(agent_id) and CASE_ID.fullmatch(case_id)):
        return "left_out_bad_id"
    found = _latest_crop(run, store, agent_id, case_id)
    if found is None:
        return "left_out_no_crop_or_boxes"
    record, crop = found
    image = cv2.imread(str(crop))
    left, top, right, bottom = record["explanation"]["boxes"]["crop_px"]
    if image is None or image.shape[:2] != (bottom - top, right - left):
        return "left_out_crop_not_as_listed"
    lines = [] if class_id is None else _labels(record["explanation"]["boxes"], class_id)
    side = side_for(agent_id, record["source"]["id"], record["first_seen"][:10], val)
    name = f"{agent_id}_{case_id}"
    target = out / side / "images" / f"{name}.jpg"
    if not target.resolve().is_relative_to(out):
        return "left_out_bad_id"
    shutil.copyfile(crop, target)
    (out / side / "labels" / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))
    return f"{side}_{'negatives' if class_id is None else 'labelled'}"


def _latest_crop(run, store: Path, agent_id: str, case_id: str) -> tuple[dict, Path] | None:
    """(the newest revision's record that lists boxes and a crop, the stored crop.jpg) of an agent's case."""
    rows = run(
        "SELECT revision, json FROM cases WHERE agent_id = ? AND case_id = ? ORDER BY revision DESC",
        (agent_id, case_id),
    ).fetchall()
    for _revision, text in rows:
        record = json.loads(text)
        crop = next((e for e in record["evidence"] if e["name"] == "crop.jpg"), None)
        if crop is None or "boxes" not in record.get("explanation", {}):
            continue
        held = run(
            "SELECT revision, name FROM evidence WHERE agent_id = ? AND case_id = ? AND sha256 = ? LIMIT 1",
            (agent_id, case_id, crop["sha256"]),
        ).fetchone()
        if held is None:
            continue
        path = (store / "cases" / agent_id / case_id / f"r{held[0]}" / held[1]).resolve()
        if path.is_relative_to(store) and path.is_file():
            return record, path
    return None


def _labels(boxes: dict, class_id: int) -> list[str]:
    """YOLO lines (class cx cy w h, relative to the crop) of the boxes at least MIN_VISIBLE inside it."""
    left, top, right, bottom = boxes["crop_px"]
    width, height = right - left, bottom - top
    lines = []
    for x1, y1, x2, y2 in boxes["xyxy"]:
        cx1, cy1, cx2, cy2 = max(x1, left), max(y1, top), min(x2, right), min(y2, bottom)
        area = (x2 - x1) * (y2 - y1)
        if cx2 <= cx1 or cy2 <= cy1 or area <= 0 or (cx2 - cx1) * (cy2 - cy1) < MIN_VISIBLE * area:
            continue
        cx, cy = ((cx1 + cx2) / 2 - left) / width, ((cy1 + cy2) / 2 - top) / height
        lines.append(f"{class_id} {cx:.6f} {cy:.6f} {(cx2 - cx1) / width:.6f} {(cy2 - cy1) / height:.6f}")
    return lines
