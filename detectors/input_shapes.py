"""One model at several input shapes: each frame goes to the shape that shows it largest.

A square 320x320 input letterboxes a 16:9 camera frame into 320x180 pixels and spends the rest on grey
padding; a 416x224 export of the same weights shows it at 398x224 for fewer pixels in all (cheaper), and
small piles are found that the square input shrinks away (models/garbage-yolov8n.md, "Input shapes"). Photos
and 4:3 frames keep the square input, which shows them larger.

The shapes are separate files (a fixed shape each, so int8 runs as fast as it can), each with its own
thresholds and crop check, calibrated on frames of its shape; the first model names the others in its
metadata (`edge_agent_other_inputs`, bare file names beside it), so the family travels as one model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from detectors import Detections, Detector, ModelError, is_bare_file_name

METADATA_KEY = "edge_agent_other_inputs"

log = logging.getLogger(__name__)


def other_inputs(model_path: Path, metadata: dict[str, str]) -> list[Path]:
    """The other-shape files a model names for itself, beside it. The names come from a model file, i.e. from
    outside: only bare file names are accepted."""
    raw = metadata.get(METADATA_KEY)
    if raw is None:
        return []
    try:
        names = json.loads(raw)
    except ValueError as exc:
        raise ModelError(f"{model_path}: unreadable {METADATA_KEY} metadata ({exc})") from None
    if not isinstance(names, list):
        raise ModelError(f"{model_path}: {METADATA_KEY} must be a list of file names, got {raw!r}")
    for name in names:
        if not is_bare_file_name(name):
            raise ModelError(f"{model_path}: {METADATA_KEY} must name files beside the model, got {name!r}")
    return [model_path.parent / name for name in names]


def shown_scale(image_hw: Sequence[int], input_hw: Sequence[int]) -> float:
    """The letterbox's scale: how large an image of `image_hw` appears in an input of `input_hw`."""
    return min(input_hw[0] / image_hw[0], input_hw[1] / image_hw[1])


class ShapedDetector(Detector, Protocol):
    """A detector with a fixed input shape (ONNX detectors, and their crop check around them)."""

    input_hw: tuple[int, int]


class ShapeMatchedDetector:
    """Detectors of one model at several input shapes; each image goes to the one that shows it largest
    (the first on a tie). They must share their class names, as the case types map them."""

    def __init__(self, members: Sequence[ShapedDetector]) -> None:
        if not members:
            raise ValueError("no detectors")
        first = members[0]
        for other in members[1:]:
            if other.class_names != first.class_names:
                raise ModelError(
                    f"{other.name}: classes {other.class_names} differ from {first.name}'s {first.class_names}"
                )
        self.members = tuple(members)
        self.name = first.name
        self.version = "+".join(m.version for m in self.members)  # case records tell the families apart
        self.class_names = first.class_names
        self.input_hw = first.input_hw  # what tiling cuts for: its tiles are square
        self.used = [0] * len(self.members)  # images each shape has had, for the bench and the log
        self._told: set[tuple[int, int]] = set()  # image sizes whose shape the log has named

    @property
    def stage_s(self) -> dict[str, float]:
        """The members' stage timings summed (for the bench)."""
        total: dict[str, float] = {}
        for member in self.members:
            for stage, seconds in getattr(member, "stage_s", {}).items():
                total[stage] = total.get(stage, 0.0) + seconds
        return total

    def member_for(self, image_hw: Sequence[int]) -> int:
        """The index of the member that shows an image of `image_hw` largest."""
        scales = [shown_scale(image_hw, m.input_hw) for m in self.members]
        return int(np.argmax(scales))  # argmax takes the first of equals

    def detect(self, image: np.ndarray) -> Detections:
        index = self.member_for(image.shape[:2])
        self.used[index] += 1
        size = (image.shape[1], image.shape[0])
        if size not in self._told:  # once a size: which input a camera's frames get is worth one line
            self._told.add(size)
            height, width = self.members[index].input_hw
            log.info("%dx%d frames are detected at %dx%d (%s)", *size, width, height, self.members[index].name)
        return self.members[index].detect(image)


__all__ = ["METADATA_KEY", "ShapeMatchedDetector", "other_inputs", "shown_scale"]
