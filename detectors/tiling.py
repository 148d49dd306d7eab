"""Tiled inference for frames far larger than the model input (drone photos, 4K orthophotos).

One letterboxed pass shrinks a 4000x3000 frame to 640x480: a street vendor 80 pixels wide becomes 13
and the model no longer sees it. Cutting the frame into overlapping tiles of the model's own input
size keeps objects at the scale the model was trained on (the SAHI approach). Every tile goes through
the wrapped detector; boxes are shifted back to frame pixels and merged across tiles; an optional
whole-frame pass catches objects larger than a tile.

The model takes one image per call (the exported ONNX has a fixed batch of 1), so tiles cannot be
batched into one onnxruntime call; `threads` runs them on several threads instead (each onnxruntime
run on its caller's thread, intra-op threads 1), which is what a batch would buy on a CPU. Tiles larger
than the model input (`tile_px` 800 for a 640 model) are shrunk to it: fewer passes, and on the
aerial vendor frames the same recall (docs/drone-tiling.md).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from detectors import Detections, Detector
from detectors.onnx_yolo import nms_per_class


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles along one side: the first at 0, the last touching the far edge.

    Tiles are spread evenly, so neighbours overlap by at least `overlap` of a tile and there is no
    thin remainder tile at the edge. A side no longer than a tile gets one tile.
    """
    if length <= tile:
        return [0]
    step = tile * (1 - overlap)
    count = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_windows(height: int, width: int, tile: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """The tiles covering a frame as (x0, y0, x1, y1) pixel windows, row by row."""
    tile_w, tile_h = min(tile, width), min(tile, height)
    return [
        (x, y, x + tile_w, y + tile_h)
        for y in tile_starts(height, tile, overlap)
        for x in tile_starts(width, tile, overlap)
    ]


def merge_boxes(xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou: float, contain: float) -> np.ndarray:
    """Indices of the boxes kept after merging detections from overlapping tiles.

    Class-wise NMS removes the copies two tiles both saw whole. An object cut by a tile edge also
    leaves a partial box that overlaps the whole one only a little by IoU, but lies inside it: of two
    boxes of a class whose intersection covers more than `contain` of the smaller box, only the
    higher-scoring one is kept.
    """
    if not len(xyxy):
        return np.zeros(0, np.int64)
    kept = nms_per_class(xyxy, scores, class_id, iou)  # sorted by descending score
    boxes = xyxy[kept]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    alive = np.ones(len(kept), bool)
    for i in range(len(kept)):
        if not alive[i]:
            continue
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        rest = rest[class_id[kept[rest]] == class_id[kept[i]]]
        if not rest.size:
            continue
        w = np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0])
        h = np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        smaller = np.minimum(areas[i], areas[rest])
        alive[rest[inter > contain * np.maximum(smaller, 1e-9)]] = False
    return kept[alive]


class TiledDetector:
    """A Detector that runs another detector on overlapping tiles of large frames.

    `tile_px` defaults to the wrapped model's input size; `overlap` is the share of a tile that
    neighbours share (0.2: objects up to a fifth of a tile are whole in at least one tile). Frames whose
    longest side is at most `min_frame_px` (default: one tile) go straight to the wrapped detector.
    `full_frame` adds one pass over the whole frame for objects larger than a tile; it costs one tile.
    `threads` > 1 runs the tiles of a frame on that many threads; the boxes are the same as on one.
    """

    def __init__(
        self,
        inner: Detector,
        tile_px: int | None = None,
        overlap: float = 0.2,
        full_frame: bool = True,
        min_frame_px: int | None = None,
        iou: float = 0.5,
        contain: float = 0.6,
        threads: int = 1,
    ) -> None:
        if tile_px is None:
            input_hw = getattr(inner, "input_hw", None)
            if input_hw is None:
                raise ValueError(f"{inner.name} does not state its input size: give tile_px")
            tile_px = max(input_hw)
        if tile_px < 64:
            raise ValueError(f"tile_px must be at least 64, got {tile_px}")
        if not 0 <= overlap < 0.5:
            raise ValueError(f"overlap must be in [0, 0.5), got {overlap}")
        if min_frame_px is not None and min_frame_px < tile_px:
            raise ValueError(f"min_frame_px ({min_frame_px}) is below tile_px ({tile_px}); give at least tile_px")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.inner = inner
        self.tile_px = tile_px
        self.overlap = overlap
        self.full_frame = full_frame
        self.min_frame_px = tile_px if min_frame_px is None else min_frame_px
        self.iou = iou
        self.contain = contain
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="tiles") if threads > 1 else None
        self.name = inner.name
        self.version = f"{inner.version}+tiles{tile_px}"  # case records tell tiled from single-pass results
        self.class_names = inner.class_names
        self.tiles_run = 0  # tiles given to the wrapped detector, whole-frame passes included
        self._merge_s = 0.0

    @property
    def stage_s(self) -> dict[str, float]:
        """The wrapped detector's summed stage times plus the time spent cutting and merging."""
        return {**getattr(self.inner, "stage_s", {}), "tile merge": self._merge_s}

    def detect(self, image: np.ndarray) -> Detections:
        """Detect objects in one BGR image; boxes are in the image's pixels."""
        height, width = image.shape[:2]
        if max(height, width) <= self.min_frame_px:
            self.tiles_run += 1
            return self.inner.detect(image)
        windows = tile_windows(height, width, self.tile_px, self.overlap)
        if self.full_frame:
            windows.append((0, 0, width, height))
        views = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in windows]  # views: no copy of the pixels
        parts = list(self._pool.map(self.inner.detect, views) if self._pool else map(self.inner.detect, views))
        offsets = [(x0, y0) for x0, y0, _, _ in windows]
        self.tiles_run += len(parts)
        started = time.perf_counter()
        xyxy = np.concatenate(
            [p.xyxy + np.array([x, y, x, y], np.float32) for p, (x, y) in zip(parts, offsets, strict=True)]
        )
        confidence = np.concatenate([p.confidence for p in parts])
        class_id = np.concatenate([p.class_id for p in parts])
        kept = merge_boxes(xyxy, confidence, class_id, self.iou, self.contain)
        found = Detections(xyxy[kept], confidence[kept], class_id[kept], self.class_names)
        self._merge_s += time.perf_counter() - started
        return found


__all__ = ["TiledDetector", "merge_boxes", "tile_starts", "tile_windows"]
