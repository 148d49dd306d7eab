"""Evidence files for a case: a JPEG snapshot with the boxes, labels, time and position drawn."""

from __future__ import annotations

import cv2
import numpy as np

from agent.cases.case import crop_window, iso_ms
from detectors import Detections
from streams import Frame

_COLOURS = [(0, 0, 255), (0, 200, 255), (255, 0, 255), (0, 255, 0), (255, 128, 0)]


def snapshot_jpeg(frame: Frame, detections: Detections, quality: int, max_width_px: int) -> bytes:
    """The frame with every box drawn, scaled to at most `max_width_px` wide, as JPEG bytes."""
    image = frame.image
    scale = min(1.0, max_width_px / image.shape[1])
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else image.copy()
    thickness = max(1, round(image.shape[1] / 640))
    for (x1, y1, x2, y2), score, cid, name in zip(
        detections.xyxy * scale, detections.confidence, detections.class_id, detections.names(), strict=True
    ):
        colour = _COLOURS[int(cid) % len(_COLOURS)]
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(image, p1, p2, colour, thickness + 1)
        _label(image, f"{name} {score:.2f}", (p1[0], max(p1[1] - 4, 12)), colour, thickness)
    header = f"{frame.source_id}  {iso_ms(frame.utc)}"
    if frame.fix:
        header += f"  {frame.fix.lat:.6f},{frame.fix.lon:.6f}"
    _label(image, header, (6, 18 * thickness), (40, 40, 40), thickness)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return jpeg.tobytes()


def crop_jpeg(frame: Frame, box_xyxy: np.ndarray, quality: int, margin: float = 0.25, min_side_px: int = 64) -> bytes:
    """A clean crop of the object (no drawing) with some context around it, for the inspector's eye."""
    height, width = frame.image.shape[:2]
    left, top, right, bottom = crop_window(box_xyxy, width, height, margin, min_side_px)
    ok, jpeg = cv2.imencode(".jpg", frame.image[top:bottom, left:right], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return jpeg.tobytes()


def _label(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int], thickness: int) -> None:
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * thickness
    (w, h), base = cv2.getTextSize(text, font, size, thickness)
    x, y = origin
    cv2.rectangle(image, (x, y - h - base), (x + w, y + base), colour, -1)
    cv2.putText(image, text, (x, y), font, size, (255, 255, 255), thickness, cv2.LINE_AA)
