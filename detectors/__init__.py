"""Object detectors: an image in, Detections out. Knows nothing of streams, cases or uploads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Boxes found in one image, as parallel arrays (the supervision layout).

    `xyxy` is (N, 4) float32 pixels in the input image; `confidence` (N,) float32; `class_id`
    (N,) int32 indexing `class_names`; `tracker_id` (N,) int64, set by a tracker (-1: no track), else None.
    `model` names the detector that found them (the agent's `detectors[].id`; "" until it is set).
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    class_names: tuple[str, ...] = field(default=())
    tracker_id: np.ndarray | None = None
    model: str = ""

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {self.xyxy.shape}")
        if self.confidence.shape != (n,) or self.class_id.shape != (n,):
            raise ValueError(
                f"confidence and class_id must have shape ({n},), got {self.confidence.shape} and {self.class_id.shape}"
            )
        if self.tracker_id is not None and self.tracker_id.shape != (n,):
            raise ValueError(f"tracker_id must have shape ({n},), got {self.tracker_id.shape}")

    @classmethod
    def empty(cls, class_names: tuple[str, ...] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), class_names)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, mask: np.ndarray) -> Detections:
        tracker_id = None if self.tracker_id is None else self.tracker_id[mask]
        return Detections(
            self.xyxy[mask], self.confidence[mask], self.class_id[mask], self.class_names, tracker_id, self.model
        )

    def names(self) -> list[str]:
        """The class name of each box."""
        return [self.class_names[i] for i in self.class_id]


class Detector(Protocol):
    """What the agent needs of a detector."""

    name: str
    version: str
    class_names: tuple[str, ...]

    def detect(self, image: np.ndarray) -> Detections:
        """Detect objects in a BGR image."""
        ...


def is_bare_file_name(name: object) -> bool:
    """Whether a file name read from a model's metadata (from outside) names a file beside the model, not a path."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name


class ModelError(Exception):
    """A model file is missing, malformed or does not fit its configuration."""


__all__ = ["Detections", "Detector", "ModelError", "is_bare_file_name"]
