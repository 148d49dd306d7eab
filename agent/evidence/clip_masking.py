"""Clips with faces masked (`privacy.clips: masked`): every frame decoded, masked and encoded again with
H.264, since a remuxed clip would carry the camera's unmasked pixels.

Faces are searched every `privacy.clip_face_every` frames; the frames between two searches are masked
with the boxes of both (a face moves little in a few frames, and the boxes carry a margin), which
divides the cost of the face model by that number. This is still the expensive path (the cost per
frame is in configs/README.md); `clips: local` keeps the original on the box instead.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np

from agent.evidence.masking import Masker, mask_boxes


def masked_clip(data: bytes, masker: Masker, face_every: int, crf: int = 23) -> tuple[bytes, int, int]:
    """(the MP4 re-encoded with every frame masked, frames, face boxes found in all searches)."""
    out_file = io.BytesIO()
    frames = faces = 0
    with av.open(io.BytesIO(data)) as source, av.open(out_file, "w", format="mp4") as output:
        video = source.streams.video[0]
        stream = output.add_stream("libx264", rate=video.average_rate or Fraction(10))
        stream.width, stream.height = video.codec_context.width, video.codec_context.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        stream.codec_context.time_base = video.time_base

        def encode(frame: av.VideoFrame, image: np.ndarray, boxes: np.ndarray) -> None:
            masked = av.VideoFrame.from_ndarray(mask_boxes(image, boxes, masker.config.method), format="bgr24")
            masked.pts, masked.time_base = frame.pts, frame.time_base
            output.mux(stream.encode(masked))

        waiting: list[tuple[av.VideoFrame, np.ndarray]] = []  # frames since the last search
        previous = np.zeros((0, 4), np.int32)
        for index, frame in enumerate(source.decode(video)):
            waiting.append((frame, frame.to_ndarray(format="bgr24")))
            if index % face_every:
                continue
            masks = masker.find(waiting[-1][1])
            faces += masks.faces
            both = np.concatenate([previous, masks.boxes])
            for item in waiting:
                encode(*item, both)
            frames, waiting, previous = frames + len(waiting), [], masks.boxes
        for item in waiting:  # after the last search: its boxes
            encode(*item, previous)
        frames += len(waiting)
        output.mux(stream.encode(None))
    return out_file.getvalue(), frames, faces
