"""Training and export wrappers around ultralytics (needs the `train` extra).

Why a wrapper: the project's datasets are read-only (ultralytics writes `labels.cache` beside the
labels), need a held-out split by source rather than by image, and must train without a model hub.
This module builds a split tree of symlinks, trains from a model YAML and exports rectangular ONNX.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass(frozen=True)
class SplitSummary:
    """Where the split tree lives and how many images went each way."""

    data_yaml: Path
    train_images: int
    val_images: int
    reviewed: dict[str, int] | None = None  # a platform training set: how many reviewed cases went in


def prepared_split(data_yaml: Path, out_dir: Path) -> SplitSummary:
    """A data.yaml already split (edge-agent platform-training-set); its `reviewed` counts are written to
    out_dir/training-data.json, the training output the model card quotes. ValueError when it is not one."""
    try:
        data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{data_yaml}: cannot read it as YAML ({exc})") from None
    if not isinstance(data, dict) or not {"path", "train", "val", "names"} <= data.keys():
        raise ValueError(f"{data_yaml}: a data.yaml needs path, train, val and names (a YOLO dataset file)")
    root = Path(data["path"])
    counts = {}
    for side in ("train", "val"):
        images = root / str(data[side])
        if not images.resolve().is_relative_to(root.resolve()) or not images.is_dir():
            raise ValueError(f"{data_yaml}: {side}: {data[side]!r} is not a folder inside {root}")
        counts[side] = sum(1 for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    reviewed = data.get("reviewed")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "training-data.json").write_text(
        json.dumps({"data": str(data_yaml.resolve()), "images": counts, "reviewed": reviewed}, indent=1)
    )
    return SplitSummary(data_yaml, counts["train"], counts["val"], reviewed)


def source_group(image_name: str, block: int) -> str:
    """The source an image came from, so that its augmented copies stay on one side of the split.

    Roboflow exports name files `<original>_<ext>.rf.<hash>.jpg`; numbered photos taken in a row
    (000123, 000124…) come from one shoot, so numbers are grouped in blocks. Video frames
    (`clip_mp4-12_jpg…`) group by clip.
    """
    stem = image_name.split(".rf.")[0]
    stem = re.sub(r"_(jpg|jpeg|png)$", "", stem)
    clip = re.match(r"(.+?)-\d+$", stem)
    if clip:
        return clip.group(1)
    number = re.fullmatch(r"(\d+)", stem)
    if number:
        return f"block{int(number.group(1)) // block}"
    return stem


def split_side(image_name: str, val_fraction: float = 0.15, block: int = 40) -> str:
    """ "val" or "train": the side of the split an image falls on, by a hash of its source group (the same
    on every machine), so that evaluation elsewhere can pick held-out images without building the tree."""
    bucket = zlib.crc32(source_group(image_name, block).encode()) % 1000
    return "val" if bucket < val_fraction * 1000 else "train"


def image_folders(dataset_dir: Path) -> list[Path]:
    """The YOLO folders (each with images/ and labels/) in a dataset: the folder itself, or the
    train/valid/test folders of a Roboflow export, pooled because their split is by frame, not by source."""
    if (dataset_dir / "images").is_dir():
        return [dataset_dir]
    folders = sorted(p for p in dataset_dir.iterdir() if (p / "images").is_dir()) if dataset_dir.is_dir() else []
    if not folders:
        raise FileNotFoundError(
            f"{dataset_dir}: expected an images/ folder (YOLO layout), or train/valid/test folders that hold one"
        )
    return folders


def split_by_source(
    dataset_dir: Path,
    class_names: list[str],
    out_dir: Path,
    val_fraction: float = 0.15,
    block: int = 40,
    negatives: Path | None = None,
    balance: tuple[str, ...] = (),
) -> SplitSummary:
    """Build `out_dir/{train,val}/{images,labels}` as symlinks into a read-only YOLO dataset.

    The side of each source group is fixed by a hash of its name, so the split is the same on
    every machine and every run. Images in `negatives` (scenes with none of the classes: fog, steam,
    grey walls) join the training side with no labels, as background that teaches the model what
    not to fire on. Training images that hold a class in `balance` are listed twice (train.txt), so a
    class the dataset has few of is seen as often as the common ones (class-balanced sampling).
    """
    counts = {"train": 0, "val": 0}
    for side in counts:
        for kind in ("images", "labels"):
            (out_dir / side / kind).mkdir(parents=True, exist_ok=True)
    for folder in image_folders(dataset_dir):
        for image in sorted((folder / "images").iterdir()):
            if image.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            side = split_side(image.name, val_fraction, block)
            _link(image, out_dir / side / "images" / image.name)
            label = folder / "labels" / (image.stem + ".txt")
            if label.exists():
                _link(label, out_dir / side / "labels" / label.name)
            counts[side] += 1
    if negatives is not None:
        for image in sorted(negatives.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                _link(image, out_dir / "train" / "images" / f"negative_{image.name}")
                counts["train"] += 1
    data_yaml = out_dir / "data.yaml"
    data = {
        "path": str(out_dir.resolve()),
        "train": _balanced_list(out_dir / "train", class_names, balance) if balance else "train/images",
        "val": "val/images",
        "names": dict(enumerate(class_names)),
    }
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    (out_dir / "split.json").write_text(json.dumps(counts))
    return SplitSummary(data_yaml, counts["train"], counts["val"])


def _balanced_list(train_dir: Path, class_names: list[str], balance: tuple[str, ...]) -> str:
    """Write train.txt: every training image once, those holding a `balance` class twice; its name."""
    unknown = sorted(set(balance) - set(class_names))
    if unknown:
        raise ValueError(f"--balance: {', '.join(unknown)} not in the classes {', '.join(class_names)}")
    wanted = {str(class_names.index(name)) for name in balance}
    lines = []
    for image in sorted((train_dir / "images").iterdir()):
        label = train_dir / "labels" / (image.stem + ".txt")
        held = {line.split()[0] for line in label.read_text().splitlines() if line.strip()} if label.exists() else set()
        lines += [str(image.absolute())] * (2 if held & wanted else 1)
    (train_dir.parent / "train.txt").write_text("\n".join(lines) + "\n")
    return "train.txt"


def _link(target: Path, link: Path) -> None:
    if not link.exists():
        link.symlink_to(target.resolve())


def train(
    data_yaml: Path,
    out_dir: Path,
    model_yaml: str = "yolov8n.yaml",
    imgsz: int = 320,
    epochs: int = 100,
    time_hours: float | None = None,
    seed: int = 0,
    batch: int = 16,
    workers: int = 2,
    device: str = "cpu",
) -> Path:
    """Train from a model YAML (no hub download) and return the path of the best weights.

    `device` is "cpu" or a CUDA index such as "0" (a GPU trains in minutes what takes the CPU hours)."""
    from ultralytics import YOLO  # the train extra; never imported by the runtime

    model = YOLO(model_yaml)
    kwargs = {
        "data": str(data_yaml),
        "imgsz": imgsz,
        "epochs": epochs,
        "seed": seed,
        "deterministic": True,
        "batch": batch,
        "workers": workers,
        "project": str(out_dir.resolve()),
        "name": "train",
        "exist_ok": True,
        "plots": False,  # plotting fetches a font from the internet
        "amp": False,  # the AMP check downloads a model
        "device": device,
        "cache": "ram",
    }
    if model_yaml.endswith(".pt"):  # a warm start needs no long warm-up, and a few-epoch budget some mosaic
        kwargs |= {"warmup_epochs": 1, "close_mosaic": 2}
    if time_hours:
        kwargs["time"] = time_hours
    model.train(**kwargs)
    return out_dir / "train" / "weights" / "best.pt"


def export_onnx(weights: Path, imgsz: tuple[int, int], out_path: Path) -> Path:
    """Export a rectangular, simplified ONNX model (height, width) that onnxruntime runs on the box.

    ultralytics writes the export beside the weights, under their name: exported in place, models/x.pt would
    overwrite the shipped models/x.onnx. So the weights are exported from a copy in a scratch folder."""
    import tempfile

    from ultralytics import YOLO

    with tempfile.TemporaryDirectory(prefix="edge-agent-export-") as scratch:
        copy = Path(scratch) / weights.name
        shutil.copyfile(weights, copy)
        exported = YOLO(str(copy)).export(format="onnx", imgsz=list(imgsz), simplify=True, dynamic=False)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(exported, out_path)
    return out_path


def quantize_int8(fp32_model: Path, calibration_images: Path, out_path: Path, max_images: int = 200) -> Path:
    """Static int8 quantization in QDQ format, calibrated on real images (never quantize_dynamic:
    its ConvInteger kernels run several times slower than fp32 on these CPUs).

    Weights are 7-bit (`reduce_range`): on CPUs without VNNI, onnxruntime's u8s8 kernels add pairs of
    uint8 x int8 products in 16 bits (VPMADDUBSW), which saturates for 8-bit weights and gives other
    boxes than on a VNNI CPU; 255 x 64 x 2 fits, so every CPU computes the same sums (model cards)."""
    import tempfile

    import cv2
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from detectors.onnx_yolo import letterbox

    session = ort.InferenceSession(str(fp32_model), providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    input_hw = (int(model_input.shape[2]), int(model_input.shape[3]))
    images = sorted(p for p in calibration_images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    step = max(1, len(images) // max_images)
    chosen = images[::step][:max_images]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._paths = iter(chosen)

        def get_next(self) -> dict[str, np.ndarray] | None:
            for path in self._paths:
                image = cv2.imread(str(path))
                if image is not None:
                    return {model_input.name: letterbox(image, input_hw)[0]}
            return None

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_model), str(prepared))
        quantize_static(
            str(prepared),
            str(out_path),
            Reader(),
            nodes_to_exclude=_decode_nodes(prepared),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    _copy_metadata(fp32_model, out_path)
    return out_path


def _decode_nodes(model_path: Path) -> list[str]:
    """The detect head's box decoding (DFL, concat of boxes and scores): kept in float, because one
    int8 scale cannot hold pixel coordinates and class scores at once."""
    import onnx

    nodes = onnx.load(str(model_path)).graph.node
    head = nodes[-1].name.rsplit("/", 1)[0] + "/"  # e.g. /model.22/
    return [n.name for n in nodes if n.name.startswith(head) and not n.name.startswith((head + "cv2", head + "cv3"))]


def _copy_metadata(source: Path, target: Path) -> None:
    """Quantization drops the ultralytics metadata (class names, input size): put it back."""
    import onnx

    src, dst = onnx.load(str(source)), onnx.load(str(target))
    del dst.metadata_props[:]
    for prop in src.metadata_props:
        dst.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(dst, str(target))
