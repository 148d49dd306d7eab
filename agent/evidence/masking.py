"""Masks over faces, persons and plate areas in a frame, applied before evidence is encoded and hashed.

Faces come from the face model run on the evidence frame itself; persons and vehicles from the boxes
any detector found on that frame (`privacy.person_classes`, `privacy.vehicle_classes`): no second
general model is loaded for them. A vehicle's plate area is the lower part of its box, because no
plate detector with a shippable licence exists (docs: models/face-centerface.md, "Licence plates").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from agent.config.privacy import MaskMethod, PrivacyConfig
from detectors import Detections
from detectors.faces import FaceDetector

_PIXEL_BLOCKS = 6  # pixelate: the longer side of a masked box keeps this many blocks
_BLUR_PX = 16  # blur: a box is shrunk to this many pixels on its longer side, blurred and scaled back


@dataclass(frozen=True)
class Masks:
    """The boxes to mask (N, 4) in frame pixels, grown by the margin, and how many of each kind."""

    boxes: np.ndarray
    faces: int
    persons: int
    vehicles: int

    def record(self, method: str) -> dict[str, object]:
        """What the case record says was masked (`privacy` in schema case-v1)."""
        return {"faces": self.faces, "persons": self.persons, "plates": self.vehicles, "method": method}


class Masker:
    """Finds what to mask in a frame and masks it; one per process (the face model is loaded once)."""

    def __init__(self, config: PrivacyConfig, threads: int = 1) -> None:
        self.config = config
        self.faces = (
            FaceDetector(config.face_model, config.min_face_score, threads, config.face_max_side_px)
            if config.faces
            else None
        )

    def find(self, image: np.ndarray, frame_detections: Sequence[Detections] = ()) -> Masks:
        """Faces in `image`, persons and plate areas among the detections (of any detector) of the same frame."""
        cfg = self.config
        faces = self.faces.detect(image).xyxy if self.faces is not None else _NONE
        persons, vehicles = [_NONE], [_NONE]
        for detections in frame_detections:
            names = np.array(detections.names(), dtype=object)
            if cfg.persons and len(detections):
                persons.append(detections.xyxy[np.isin(names, cfg.person_classes)])
            if cfg.plates and len(detections):
                vehicles.append(detections.xyxy[np.isin(names, cfg.vehicle_classes)])
        person_boxes, vehicle_boxes = np.concatenate(persons), np.concatenate(vehicles)
        boxes = np.concatenate([faces, person_boxes, plate_areas(vehicle_boxes, cfg.plate_share)]).reshape(-1, 4)
        return Masks(grow(boxes, cfg.margin, image.shape[:2]), len(faces), len(person_boxes), len(vehicle_boxes))

    def apply(self, image: np.ndarray, masks: Masks) -> np.ndarray:
        """A copy of `image` with every box masked; the image itself is left as it is (the original)."""
        return mask_boxes(image, masks.boxes, self.config.method)


_NONE = np.zeros((0, 4), np.float32)


def plate_areas(vehicles: np.ndarray, share: float) -> np.ndarray:
    """The lower `share` of each vehicle box: where a plate is on a car seen from the front or back."""
    areas = vehicles.astype(np.float32).copy()
    areas[:, 1] = areas[:, 3] - (areas[:, 3] - areas[:, 1]) * share
    return areas


def grow(boxes: np.ndarray, margin: float, shape_hw: tuple[int, ...]) -> np.ndarray:
    """Boxes grown by `margin` of their size on each side, as whole pixels inside the image."""
    height, width = shape_hw[:2]
    size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    grown = boxes + size * margin * np.array([-1, -1, 1, 1], np.float32)
    grown = np.round(grown).astype(np.int32)
    grown[:, 0::2] = np.clip(grown[:, 0::2], 0, width)
    grown[:, 1::2] = np.clip(grown[:, 1::2], 0, height)
    return grown[(grown[:, 2] > grown[:, 0]) & (grown[:, 3] > grown[:, 1])]


def mask_boxes(image: np.ndarray, boxes: np.ndarray, method: MaskMethod) -> np.ndarray:
    """A copy with each box blurred beyond recognition (sigma a quarter of the box) or pixelated."""
    out = image.copy()
    for x1, y1, x2, y2 in boxes.tolist():
        region = out[y1:y2, x1:x2]
        h, w = region.shape[:2]
        if method == "pixelate":
            step = max(1.0, max(h, w) / _PIXEL_BLOCKS)
            small = cv2.resize(region, (max(1, round(w / step)), max(1, round(h / step))), interpolation=cv2.INTER_AREA)
            out[y1:y2, x1:x2] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        else:  # the same as a Gaussian of sigma a quarter of the box, at the cost of a tiny image
            scale = _BLUR_PX / max(h, w)
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), sigmaX=_BLUR_PX / 4, borderType=cv2.BORDER_REFLECT)
            out[y1:y2, x1:x2] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return out
