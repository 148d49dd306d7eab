"""Composite detections: co-located boxes that together make a case type no single class names.

Street vending has no dataset of its own, but a city's model may know stalls, umbrellas, carts,
tables, goods and people. An umbrella alone is shade; an umbrella beside a table with goods is a
stall. Per frame, the boxes of a composite's classes are grouped when the gap between two boxes is
small next to their height (things standing together), and each group with enough objects becomes
one box of the composite's case type: the union of its members, scored by their mean, and labelled
with what it is made of ("table+umbrella"), which the case's explanation lists as its members.
Those boxes then go through zones, hours and the persistence rule like any detector's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from agent.config.rules import ColocatedConfig
from detectors import Detections

_JOIN = "+"  # between member class names in a group's label


@dataclass(frozen=True)
class _Composite:
    """A `ColocatedConfig` with its class names resolved to the model's class ids."""

    config: ColocatedConfig
    object_ids: np.ndarray
    people_ids: np.ndarray


class Colocator:
    """Finds each configured composite's groups in one frame's detections (all classes)."""

    def __init__(self, composites: Sequence[ColocatedConfig], class_names: tuple[str, ...]) -> None:
        """Class names the model lacks never match; `agent.runner.check_class_map` refuses them at start-up."""
        ids = {name: i for i, name in enumerate(class_names)}
        self._composites = [
            _Composite(
                c,
                np.array([ids[n] for n in c.objects if n in ids], np.int32),
                np.array([ids[n] for n in c.people if n in ids], np.int32),
            )
            for c in composites
        ]
        self.types = frozenset(c.case_type for c in composites)

    def add_groups(self, by_type: dict[str, Detections], detections: Detections) -> dict[str, Detections]:
        """`by_type` (from the class map) with each composite's groups added under its case type."""
        for composite in self._composites:
            groups = _find_groups(detections, composite)
            if not len(groups):
                continue
            groups = replace(groups, model=detections.model)  # the model whose boxes made the group
            case_type = composite.config.case_type
            by_type[case_type] = concat(by_type[case_type], groups) if case_type in by_type else groups
        return by_type

    def explain(self, case_type: str, detections: Detections) -> dict[str, object]:
        """For a composite type, the members of its best box: {"members": ["table", "umbrella"]}."""
        if case_type not in self.types or not len(detections):
            return {}
        label = detections.names()[int(detections.confidence.argmax())]
        return {"members": label.split(_JOIN)}


def _find_groups(detections: Detections, composite: _Composite) -> Detections:
    """The groups of co-located member boxes that satisfy the composite, one union box each."""
    cfg = composite.config
    is_object = np.isin(detections.class_id, composite.object_ids)
    is_person = np.isin(detections.class_id, composite.people_ids)
    members = detections[is_object | is_person]
    if not len(members):
        return Detections.empty()
    is_object = is_object[is_object | is_person]
    labels = group_labels(members.xyxy, cfg.max_gap)
    member_names = np.asarray(members.names(), dtype=object)
    boxes, scores, names = [], [], []
    for label in np.unique(labels):
        in_group = labels == label
        objects = int((in_group & is_object).sum())
        people = int((in_group & ~is_object).sum())
        if objects < cfg.min_objects and not (cfg.people and objects >= 1 and people >= cfg.min_people):
            continue
        xyxy = members.xyxy[in_group]
        boxes.append([*xyxy[:, :2].min(axis=0), *xyxy[:, 2:].max(axis=0)])
        scores.append(members.confidence[in_group].mean())
        names.append(_JOIN.join(sorted(member_names[in_group])))
    if not boxes:
        return Detections.empty()
    class_names = tuple(dict.fromkeys(names))
    return Detections(
        np.array(boxes, np.float32),
        np.array(scores, np.float32),
        np.array([class_names.index(n) for n in names], np.int32),
        class_names,
    )


def group_labels(xyxy: np.ndarray, max_gap: float) -> np.ndarray:
    """A group label per box: boxes are joined (transitively) when the gap between them, the shortest
    distance between their edges (0 when they touch or overlap), is at most `max_gap` times the taller
    box's height. Height, because it scales with distance from the camera the same for a wide stall
    and a narrow cart."""
    gx = np.maximum(xyxy[:, None, 0], xyxy[None, :, 0]) - np.minimum(xyxy[:, None, 2], xyxy[None, :, 2])
    gy = np.maximum(xyxy[:, None, 1], xyxy[None, :, 1]) - np.minimum(xyxy[:, None, 3], xyxy[None, :, 3])
    gap = np.hypot(np.clip(gx, 0, None), np.clip(gy, 0, None))
    height = xyxy[:, 3] - xyxy[:, 1]
    joined = gap <= max_gap * np.maximum(height[:, None], height[None, :])
    labels = np.arange(len(xyxy))
    while True:  # each box takes the smallest label among its neighbours until nothing changes
        spread = np.where(joined, labels[None, :], len(xyxy)).min(axis=1)
        if np.array_equal(spread, labels):
            return labels
        labels = spread


def concat(first: Detections, second: Detections) -> Detections:
    """Both sets of boxes in one Detections; the second's class ids move past the first's names. The
    model is kept when both come from the same one, else it is "" (several)."""
    return Detections(
        np.concatenate([first.xyxy, second.xyxy]),
        np.concatenate([first.confidence, second.confidence]),
        np.concatenate([first.class_id, second.class_id + len(first.class_names)]).astype(np.int32),
        first.class_names + second.class_names,
        model=first.model if first.model == second.model else "",
    )


__all__ = ["Colocator", "concat", "group_labels"]
