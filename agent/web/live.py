"""The latest analysed frame of a source as a JPEG with its boxes, labels, zones and masks drawn, and the
source's state, counters and track for the page. Drawn on the server so the page stays plain HTML; each
frame is drawn once however many browsers poll it."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import cv2
import numpy as np

from agent.observe.view import AgentView, stats_of
from agent.pipeline import RunningSource
from detectors import Detections

MAX_WIDTH_PX = 960
JPEG_QUALITY = 70
TRACK_POINTS = 500
_COLOURS = ((0, 200, 255), (255, 120, 0), (80, 220, 80), (200, 80, 255), (0, 80, 255))  # BGR, one per detector
_ZONE, _MASK = (60, 220, 60), (90, 90, 90)


class LiveView:
    """Frames and states of the running sources, cached per frame."""

    def __init__(self, view: AgentView) -> None:
        self.view = view
        self._drawn: dict[tuple[str, bool], tuple[int, bytes]] = {}  # (source, drawn?) -> (frame index, JPEG)
        self._tracks: dict[str, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def running(self, source_id: str) -> RunningSource | None:
        return self.view.pipeline.running.get(source_id)

    def jpeg(self, source_id: str, drawn: bool = True) -> bytes | None:
        """The newest analysed frame (boxes, zones and masks drawn unless `drawn` is False); None before one."""
        running = self.running(source_id)
        seen = running.last_seen if running else None
        if running is None or seen is None:
            return None
        frame, raw = seen
        with self._lock:
            cached = self._drawn.get((source_id, drawn))
        if cached and cached[0] == frame.index:
            return cached[1]
        image = frame.image.copy()
        if drawn:
            draw_places(image, running)
            for i, detections in enumerate(raw.values()):
                draw_boxes(image, detections, _COLOURS[i % len(_COLOURS)])
        data = encode(image)
        with self._lock:
            self._drawn[(source_id, drawn)] = (frame.index, data)
        return data

    def sources(self) -> list[dict[str, Any]]:
        """Each configured source's state, counters, zones and position, for the page's side panel."""
        pipeline = self.view.pipeline
        out = []
        for source in pipeline.config.sources:
            running = pipeline.running.get(source.id)
            stats = stats_of(running) if running else None
            seen = running.last_seen if running else None
            out.append(
                {
                    "id": source.id,
                    "kind": source.kind,
                    "state": str(stats.state) if stats else "idle",
                    "reason": stats.reason if stats else "",
                    "counters": _counters(running),
                    "by_class": dict(running.by_class) if running else {},
                    "size": list(seen[0].image.shape[1::-1]) if seen else None,
                    "zones": [z.model_dump(mode="json") for z in source.zones],
                    "masks_px": [list(map(list, m)) for m in source.masks_px],
                    "position": source.position.model_dump(mode="json") if source.position else None,
                    "track": self._track(source.id, running),
                }
            )
        return out

    def grid_near(self, lat: float, lon: float, radius_deg: float = 0.01) -> list[dict[str, Any]]:
        grid = self.view.pipeline.grid
        if grid is None:
            return []
        return [{"code": code, "ring": ring} for code, ring in grid.outlines_near(lat, lon, radius_deg)]

    def _track(self, source_id: str, running: RunningSource | None) -> list[tuple[float, float]]:
        """The positions seen at each poll (the page polls a few times a second), newest last."""
        with self._lock:
            track = self._tracks.setdefault(source_id, deque(maxlen=TRACK_POINTS))
            fix = running.last_fix if running else None
            if fix is not None and (not track or track[-1] != (fix.lat, fix.lon)):
                track.append((fix.lat, fix.lon))
            return list(track)


def _counters(running: RunningSource | None) -> dict[str, int]:
    if running is None:
        return {}
    stats, summary = stats_of(running), running.summary
    return {
        "decoded": stats.decoded,
        "sampled": stats.sampled,
        "dropped": stats.dropped,
        "reconnects": stats.reconnects,
        "stalls": stats.stalls,
        "analysed": summary.frames_analysed,
        "detections": summary.detections,
        "cases": len(summary.case_ids),
    }


def draw_places(image: np.ndarray, running: RunningSource) -> None:
    """Masks shaded grey, zones outlined green with their names."""
    source = running.config
    for mask in source.masks_px:
        points = np.array(mask, dtype=np.int32)
        shade = image.copy()
        cv2.fillPoly(shade, [points], _MASK)
        cv2.addWeighted(shade, 0.5, image, 0.5, 0, dst=image)
    for zone in source.zones:
        points = np.array(zone.polygon_px, dtype=np.int32)
        cv2.polylines(image, [points], True, _ZONE, 2)
        x, y = points.min(axis=0)
        cv2.putText(image, zone.name, (int(x) + 4, int(y) + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, _ZONE, 2)


def draw_boxes(image: np.ndarray, detections: Detections, colour: tuple[int, int, int]) -> None:
    names = detections.names()
    for (x1, y1, x2, y2), score, name in zip(detections.xyxy, detections.confidence, names, strict=True):
        top_left, bottom_right = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(image, top_left, bottom_right, colour, 2)
        label = f"{name} {score:.2f}"
        cv2.putText(image, label, (int(x1) + 2, max(12, int(y1) - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2)


def encode(image: np.ndarray) -> bytes:
    """JPEG at most MAX_WIDTH_PX wide (a phone on the site's 4G need not pull a 4K frame)."""
    height, width = image.shape[:2]
    if width > MAX_WIDTH_PX:
        image = cv2.resize(image, (MAX_WIDTH_PX, round(height * MAX_WIDTH_PX / width)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the frame as JPEG")
    return data.tobytes()
