"""Files that ship with the agent: the default configuration, the case schema, the sample clip, the
models and the example grid. `models/`, `samples/` and `configs/*.geojson` are installed beside the
`agent` package (see pyproject.toml), so they are found the same way in a checkout and in an
installed wheel."""

from __future__ import annotations

from pathlib import Path

from protocol import CASE_SCHEMA  # noqa: F401 - the case schema is the protocol's; named here with the rest

_CONFIG_DIR = Path(__file__).resolve().parent
_ROOT = _CONFIG_DIR.parents[1]

DEFAULT_CONFIG = _CONFIG_DIR / "default.yaml"

_BUILTINS = {
    "sample": _ROOT / "samples" / "street-garbage.mp4",
    "sample-telemetry": _ROOT / "samples" / "street-garbage.nmea",
    "garbage": _ROOT / "models" / "garbage-yolov8n-int8.onnx",  # static int8: same accuracy, faster (model card)
    "garbage-fp32": _ROOT / "models" / "garbage-yolov8n.onnx",
    # the same weights at 416x224, for 16:9 frames: the two above name these, and the agent picks per frame
    "garbage-416x224": _ROOT / "models" / "garbage-yolov8n-416x224-int8.onnx",
    "garbage-416x224-fp32": _ROOT / "models" / "garbage-yolov8n-416x224.onnx",
    "garbage-pt": _ROOT / "models" / "garbage-yolov8n.pt",  # the same weights for ultralytics (bench, fine-tuning)
    "smoke": _ROOT / "models" / "smoke-yolov8n-int8.onnx",  # smoke and fire; int8 holds the accuracy (card)
    "smoke-fp32": _ROOT / "models" / "smoke-yolov8n.onnx",
    "vendors-aerial": _ROOT / "models" / "vendors-aerial-yolov8n-int8.onnx",  # drone imagery, 640x640 tiles
    "vendors-aerial-fp32": _ROOT / "models" / "vendors-aerial-yolov8n.onnx",
    "general": _ROOT / "models" / "general-yolox-nano.onnx",  # YOLOX-Nano, COCO-80 (Apache-2.0; card)
    "face": _ROOT / "models" / "face-centerface.onnx",  # CenterFace (MIT): faces to mask in evidence (card)
    "sample-grid": _ROOT / "configs" / "example-grid.geojson",  # made-up grid cells around the sample's track
}


def builtin(name: str) -> Path | None:
    """The path of a bundled file by its short name (`builtin:garbage` in a configuration)."""
    return _BUILTINS.get(name)


def builtin_names() -> str:
    return ", ".join(f"builtin:{n}" for n in _BUILTINS)
