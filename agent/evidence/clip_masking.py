"""Clips with faces masked (`privacy.clips: masked`): every frame decoded, searched for faces, masked and
encoded again with H.264, since a remuxed clip would carry the camera's unmasked pixels.

This is the expensive path (the model card and configs/README.md give the cost per frame); `clips: local`
keeps the original on the box instead.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av

from agent.evidence.masking import Masker


def masked_clip(data: bytes, masker: Masker, crf: int = 23) -> tuple[bytes, int, int]:
    """(the MP4 re-encoded with every frame masked, frames, faces masked in all)."""
    out_file = io.BytesIO()
    frames = faces = 0
    with av.open(io.BytesIO(data)) as source, av.open(out_file, "w", format="mp4") as output:
        video = source.streams.video[0]
        rate = video.average_rate or Fraction(10)
        stream = output.add_stream("libx264", rate=rate)
        stream.width, stream.height = video.codec_context.width, video.codec_context.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        stream.codec_context.time_base = video.time_base
        for frame in source.decode(video):
            image = frame.to_ndarray(format="bgr24")
            masks = masker.find(image, None)
            masked = av.VideoFrame.from_ndarray(masker.apply(image, masks), format="bgr24")
            masked.pts, masked.time_base = frame.pts, frame.time_base
            output.mux(stream.encode(masked))
            frames, faces = frames + 1, faces + masks.faces
        output.mux(stream.encode(None))
    return out_file.getvalue(), frames, faces
