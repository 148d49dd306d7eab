"""A two-input camera's evidence frame: the record input's frame nearest the detection, boxes scaled to it.

The detector saw the substream (e.g. 640x360); the snapshot and crop an inspector looks at come from the
main stream at its full resolution. The main stream is kept encoded in the source's ring and decoded
here, once per case, from its last keyframe (`streams.nearest.frame_near`). The ring is timed by the
arrival clock, so the detect frame is matched by its own arrival time (`Frame.mono_s`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from detectors import Detections
from streams import Frame
from streams.nearest import frame_near
from streams.packets import PacketRing

log = logging.getLogger(__name__)


def record_view(
    ring: PacketRing, seen: Frame, detections: Sequence[Detections]
) -> tuple[Frame, list[Detections]] | None:
    """(the record input's frame nearest `seen`, `detections` scaled from `seen` to it), or None when the
    ring holds nothing decodable around it (the record input is down): the caller keeps the detect frame."""
    found = frame_near(ring.snapshot(), seen.mono_s)
    if found is None:
        log.warning(
            "%s: the record input has nothing around the detection; evidence from the detect input", seen.source_id
        )
        return None
    image, shown_s = found
    log.debug("%s: record frame %.3f s from the detection", seen.source_id, shown_s - seen.mono_s)
    scale_x = image.shape[1] / seen.image.shape[1]
    scale_y = image.shape[0] / seen.image.shape[0]
    scale = np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
    scaled = [dataclasses.replace(d, xyxy=(d.xyxy * scale).astype(np.float32)) for d in detections]
    return dataclasses.replace(seen, image=image), scaled
