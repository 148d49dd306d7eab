"""`privacy:`: what is masked in evidence before it is hashed, signed and uploaded, and what stays on the box.

Faces are masked by default: a city's privacy rules forbid uploading passers-by's faces, and a
configuration that forgets the section must not leak them. Clips cannot be masked for free (every
frame is decoded, searched for faces and encoded again), so by default they stay on the box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.config import resources
from agent.config.loading import is_file
from agent.config.sources import _Strict

MaskMethod = Literal["blur", "pixelate"]
ClipPolicy = Literal["masked", "local"]


class PrivacyConfig(_Strict):
    """Masks in snapshots, crops and clips; the unmasked original is never uploaded."""

    faces: bool = Field(default=True, description="mask faces found by the face model (CenterFace)")
    face_model: Path = Field(
        default_factory=lambda: resources.builtin("face"), description="the face model; default builtin:face"
    )
    min_face_score: float = Field(default=0.5, ge=0.05, le=1, description="faces below this score are not masked")
    face_max_side_px: int = Field(
        default=1280, ge=160, le=7680, description="frames are searched for faces at most this wide (small faces)"
    )
    persons: bool = Field(default=False, description="mask whole persons: boxes of person_classes from any detector")
    person_classes: list[str] = Field(default=["person"], description="detector classes masked as persons")
    plates: bool = Field(
        default=False, description="mask the lower part of vehicle boxes, where plates are (no plate model ships)"
    )
    vehicle_classes: list[str] = Field(default=["car", "truck", "bus", "motorcycle"])
    plate_share: float = Field(default=0.4, gt=0, le=1, description="lower share of a vehicle box that is masked")
    method: MaskMethod = Field(default="blur", description="blur: strong Gaussian; pixelate: coarse blocks")
    margin: float = Field(default=0.15, ge=0, le=1, description="each masked box grows by this share per side")
    clips: ClipPolicy = Field(
        default="local",
        description="masked: re-encode the clip with faces masked and upload it; local: keep it on the box only",
    )
    clip_face_every: int = Field(
        default=3, ge=1, le=25, description="clips: masked: search faces every this many frames (cost / this)"
    )
    local_clips_days: float = Field(default=7.0, gt=0, le=365, description="how long local clips are kept")
    originals_days: float = Field(
        default=0.0, ge=0, le=365, description="keep the unmasked snapshot on the box this long; 0: never written"
    )

    @field_validator("face_model")
    @classmethod
    def _face_model_exists(cls, value: Path) -> Path:
        if not is_file(value):
            raise ValueError("face model file not found; use builtin:face (CenterFace) or leave face_model out")
        return value

    @model_validator(mode="after")
    def _clips_can_be_masked(self) -> PrivacyConfig:
        if self.clips == "masked" and (self.persons or self.plates):
            raise ValueError(
                "clips: masked masks faces only (persons and vehicles are found on analysed frames, not on every"
                " frame of a clip); with persons or plates set clips: local"
            )
        return self

    @property
    def masks_anything(self) -> bool:
        return self.faces or self.persons or self.plates
