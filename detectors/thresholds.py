"""Per-class operating thresholds: the score at which each class's boxes are trusted.

One score for every class is wrong for most of them: a model is sure of bins long before it is sure of
overflow. `edge-agent calibrate` finds, per class, the lowest score whose precision reaches a target on
held-out images and writes them into the ONNX file's metadata under `THRESHOLDS_KEY`, as JSON
{class name: score}; the detector uses them by default, configuration may override any of them, and a
class without one falls back to the detector's `min_score` (a model without the key behaves as before).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from detectors import ModelError

THRESHOLDS_KEY = "edge_agent_thresholds"


def read_model_thresholds(model_path: Path, meta: Mapping[str, str], class_names: tuple[str, ...]) -> dict[str, float]:
    """The thresholds stored in a model's metadata ({} without the key); a malformed entry is a ModelError."""
    if THRESHOLDS_KEY not in meta:
        return {}
    try:
        stored = json.loads(meta[THRESHOLDS_KEY])
    except json.JSONDecodeError as exc:
        raise ModelError(f"{model_path}: metadata {THRESHOLDS_KEY} is not JSON ({exc}); calibrate again") from None
    if not isinstance(stored, dict):
        raise ModelError(f"{model_path}: metadata {THRESHOLDS_KEY} must be a JSON object {{class: score}}")
    try:
        return checked_thresholds(stored, class_names)
    except ValueError as exc:
        raise ModelError(f"{model_path}: metadata {THRESHOLDS_KEY}: {exc}; calibrate again") from None


def checked_thresholds(thresholds: Mapping[str, object], class_names: tuple[str, ...]) -> dict[str, float]:
    """`thresholds` as floats; ValueError naming the class for a name the model lacks or a score outside (0, 1]."""
    unknown = sorted(set(thresholds) - set(class_names))
    if unknown:
        raise ValueError(f"{', '.join(map(repr, unknown))} not among the model's classes ({', '.join(class_names)})")
    checked: dict[str, float] = {}
    for name, score in thresholds.items():
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 < score <= 1:
            raise ValueError(f"{name!r}: score {score!r} must be a number in (0, 1]")
        checked[name] = float(score)
    return checked


def class_floors(class_names: tuple[str, ...], min_score: float, thresholds: Mapping[str, float]) -> np.ndarray:
    """Per class id, the score a box needs: its threshold, else `min_score`."""
    return np.array([thresholds.get(name, min_score) for name in class_names], np.float32)


def describe(class_names: tuple[str, ...], min_score: float, thresholds: Mapping[str, float]) -> str:
    """ "garbage 0.31, garbage_bin 0.45, overflow 0.30 (min_score)": what a run or a report used."""
    return ", ".join(
        f"{name} {thresholds[name]:.2f}" if name in thresholds else f"{name} {min_score:.2f} (min_score)"
        for name in class_names
    )


__all__ = ["THRESHOLDS_KEY", "checked_thresholds", "class_floors", "describe", "read_model_thresholds"]
