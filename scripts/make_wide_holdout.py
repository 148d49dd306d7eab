"""Held-out photos cut to a camera's 16:9 frame, to calibrate and measure a wide input (models/garbage-yolov8n.md).

The garbage photos are square; street cameras are 16:9. Each held-out photo's central band of 16:9 is cut out,
its labels clipped to the band (a box is kept, cut to the band, when at least MIN_INSIDE of it is inside: the
rule of ultralytics' own augmentation, `box_candidates(area_thr=0.1)`, so what the model was taught to see as an
object is scored as one; slivers are dropped), and the result written as a
split that `edge-agent eval` and `edge-agent calibrate` read. Only the held-out side is read: the bands are
the same photos the square input is measured on, shown as a camera would show them.

    .venv/bin/python scripts/make_wide_holdout.py SPLIT_VAL_FOLDER OUT_FOLDER
    edge-agent calibrate MODEL --data OUT_FOLDER/data.yaml --precision overflow=0.95,garbage=0.80,garbage_bin=0.85

Run on the training side (SPLIT/train) it makes the int8 calibration images of a wide export
(`edge-agent export ... --imgsz 224x416 --int8 OUT_FOLDER/images`): activations are ranged on frames of the shape
the export will see, not on square photos padded with grey.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from agent.tools.training import IMAGE_SUFFIXES

ASPECT = 16 / 9
MIN_INSIDE = 0.1


def band_labels(lines: list[str], width: int, height: int, top: int, band_h: int) -> tuple[list[str], int]:
    """YOLO label lines of a photo made relative to its band [top, top + band_h), and how many were dropped."""
    out, dropped = [], 0
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        cls, cx, cy, bw, bh = fields[0], *(float(v) for v in fields[1:5])
        y1, y2 = (cy - bh / 2) * height - top, (cy + bh / 2) * height - top
        inside_y1, inside_y2 = max(0.0, y1), min(float(band_h), y2)
        if inside_y2 <= inside_y1 or (inside_y2 - inside_y1) < MIN_INSIDE * (y2 - y1):
            dropped += 1
            continue
        centre, tall = (inside_y1 + inside_y2) / 2 / band_h, (inside_y2 - inside_y1) / band_h
        out.append(f"{cls} {cx:.6f} {centre:.6f} {bw:.6f} {tall:.6f}")
    return out, dropped


def make(val_folder: Path, out: Path) -> tuple[int, int, int]:
    """Write out/images, out/labels and out/data.yaml; (photos, boxes kept, boxes dropped)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(exist_ok=True)
    photos = kept = dropped = 0
    for path in sorted(p for p in (val_folder / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        image = cv2.imread(str(path))
        if image is None:
            print(f"{path}: unreadable, skipped")
            continue
        height, width = image.shape[:2]
        band_h = min(height, round(width / ASPECT))
        top = (height - band_h) // 2
        cv2.imwrite(str(out / "images" / path.name), image[top : top + band_h])
        label = val_folder / "labels" / (path.stem + ".txt")
        lines = label.read_text(encoding="utf-8").splitlines() if label.is_file() else []
        inside, lost = band_labels(lines, width, height, top, band_h)
        (out / "labels" / (path.stem + ".txt")).write_text("".join(f"{x}\n" for x in inside), encoding="utf-8")
        photos, kept, dropped = photos + 1, kept + len(inside), dropped + lost
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(("garbage", "garbage_bin", "overflow")))
    (out / "data.yaml").write_text(f"path: {out.resolve()}\nval: images\nnames:\n{names}", encoding="utf-8")
    return photos, kept, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("val", type=Path, help="the split's held-out folder (images/ and labels/)")
    parser.add_argument("out", type=Path, help="the folder to write")
    args = parser.parse_args()
    photos, kept, dropped = make(args.val, args.out)
    print(f"{photos} photos, {kept} boxes kept, {dropped} dropped at the band's edges -> {args.out}/data.yaml")


if __name__ == "__main__":
    main()
