"""The dataset split, `edge-agent eval` and the shipped model, on the real dataset in ../shared."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from agent.config.resources import builtin
from agent.config.schema import DetectorConfig
from agent.detector_setup import build_detector
from agent.tools.evaluate import read_labels
from agent.tools.training import source_group, split_by_source
from detectors.metrics import box_iou
from detectors.onnx_yolo import OnnxYoloDetector
from tests.agent.test_cli import ENV
from tests.conftest import agent_cmd, need_shared

CLASSES = ["garbage", "garbage_bin", "overflow"]


@pytest.mark.parametrize(
    "name, group",
    [
        ("000123_jpg.rf.abc.jpg", "block3"),  # numbered photos: blocks of 40 in shooting order
        ("000159_jpg.rf.def.jpg", "block3"),
        ("fire1_mp4-24_jpg.rf.b4cf.jpg", "fire1_mp4"),  # video frames: by clip
        ("girardot_chip_14_32_png.rf.46.jpg", "girardot_chip_14_32"),
    ],
)
def test_source_group(name: str, group: str) -> None:
    assert source_group(name, block=40) == group


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    dataset = need_shared("datasets/garbage-street-cn/train")
    return split_by_source(dataset, CLASSES, tmp_path_factory.mktemp("split")).data_yaml


def test_split_keeps_sources_together_and_is_stable(split: Path, tmp_path: Path) -> None:
    root = split.parent
    train = {p.name for p in (root / "train" / "images").iterdir()}
    val = {p.name for p in (root / "val" / "images").iterdir()}
    assert train and val and not train & val
    assert {source_group(n, 40) for n in train}.isdisjoint({source_group(n, 40) for n in val})
    assert 0.03 < len(val) / (len(train) + len(val)) < 0.3
    again = split_by_source(need_shared("datasets/garbage-street-cn/train"), CLASSES, tmp_path / "again")
    assert {p.name for p in (again.data_yaml.parent / "val" / "images").iterdir()} == val
    assert yaml.safe_load(split.read_text())["names"] == dict(enumerate(CLASSES))


def test_roboflow_export_is_pooled_and_split_by_clip_with_negatives_in_training(tmp_path: Path) -> None:
    """smoke-fire ships Roboflow's train/valid/test, split by frame: frames of one clip on both sides.
    Pooled and split again by clip, no clip may straddle; negatives join training, unlabelled."""
    dataset = need_shared("datasets/smoke-fire")
    negatives = tmp_path / "negatives"
    negatives.mkdir()
    street = sorted(need_shared("datasets/garbage-street-cn/train/images").iterdir())[:3]
    for image in street:
        (negatives / image.name).symlink_to(image)
    summary = split_by_source(dataset, ["Fire", "default", "smoke"], tmp_path / "split", 0.25, negatives=negatives)
    root = summary.data_yaml.parent
    train = [p.name for p in (root / "train" / "images").iterdir()]
    val = [p.name for p in (root / "val" / "images").iterdir()]
    pooled = sum(len(list((dataset / part / "images").iterdir())) for part in ("train", "valid", "test"))
    assert summary.train_images + summary.val_images == pooled + 3 == len(train) + len(val)
    assert {source_group(n, 40) for n in train}.isdisjoint({source_group(n, 40) for n in val})
    assert any("_mp4-" in n for n in val), "a whole clip should be held out at this fraction"
    added = [n for n in train if n.startswith("negative_")]
    assert len(added) == 3 and not any((root / "train" / "labels" / (Path(n).stem + ".txt")).exists() for n in added)


def test_balance_lists_the_images_of_a_rare_class_twice(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"  # 200 of the real photos and their labels: the whole set takes a minute
    for kind in ("images", "labels"):
        (dataset / kind).mkdir(parents=True)
    for image in sorted(need_shared("datasets/garbage-street-cn/train/images").iterdir())[:200]:
        (dataset / "images" / image.name).symlink_to(image)
        label = image.parent.parent / "labels" / (image.stem + ".txt")
        if label.exists():
            (dataset / "labels" / label.name).symlink_to(label)
    summary = split_by_source(dataset, CLASSES, tmp_path / "split", balance=("garbage",))
    root = summary.data_yaml.parent
    assert yaml.safe_load(summary.data_yaml.read_text())["train"] == "train.txt"
    listed = (root / "train.txt").read_text().split()
    images = sorted((root / "train" / "images").iterdir())
    holds_garbage = {p.name for p in images if "0" in {line.split()[0] for line in _label_lines(root, p)}}
    counts = {name: sum(Path(x).name == name for x in listed) for name in {p.name for p in images}}
    assert holds_garbage and len(holds_garbage) < len(images)
    assert all(counts[name] == (2 if name in holds_garbage else 1) for name in counts)
    assert all(Path(x).is_absolute() and Path(x).exists() for x in listed)
    with pytest.raises(ValueError, match="--balance: litter not in the classes"):
        split_by_source(dataset, CLASSES, tmp_path / "again", balance=("litter",))


def _label_lines(root: Path, image: Path) -> list[str]:
    label = root / "train" / "labels" / (image.stem + ".txt")
    return [line for line in label.read_text().splitlines() if line.strip()] if label.exists() else []


def test_train_names_a_dataset_without_images(tmp_path: Path) -> None:
    result = subprocess.run(
        [*agent_cmd(), "train", "--data", str(tmp_path), "--classes", "a", "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "expected an images/ folder" in result.stderr


def test_eval_command_reports_metrics(split: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    for kind in ("images", "labels"):
        (small / kind).mkdir(parents=True)
    for image in sorted((split.parent / "val" / "images").iterdir())[:12]:
        (small / "images" / image.name).symlink_to(image.resolve())
        label = split.parent / "val" / "labels" / (image.stem + ".txt")
        (small / "labels" / label.name).symlink_to(label.resolve())
    out = tmp_path / "eval.json"
    done = subprocess.run(
        agent_cmd("eval", "--model", "builtin:garbage", "--data", str(small), "--json", str(out)),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "mAP50" in done.stdout and "confusion at those thresholds" in done.stdout
    stored = OnnxYoloDetector(builtin("garbage")).thresholds  # the shipped model carries its own
    assert stored and all(f"{name} {score:.3f} (model)" in done.stdout for name, score in stored.items())
    report = json.loads(out.read_text())["held_out"]
    assert report["images"] == 12 and [c["name"] for c in report["classes"]] == CLASSES
    assert 0.0 <= report["map50"] <= 1.0 and report["ms_per_image"] > 0
    # the shipped model's crop check runs on overflow candidates too, and is timed apart from the detector
    assert report["check_ms_per_image"] > 0 and "of crop check" in done.stdout


def test_wrong_class_map_is_refused_at_start(tmp_path: Path) -> None:
    config = {
        "agent_id": "box-1",
        "state_dir": str(tmp_path / "state"),
        "sources": [{"id": "cam", "kind": "fixed", "url": "builtin:sample"}],
        "detector": {"model": "builtin:garbage", "class_map": {"rubbish": "garbage_pile"}},
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(agent_cmd("run", "-c", str(path)), env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "detector.class_map: 'rubbish' not among the classes" in done.stderr
    assert "garbage, garbage_bin, overflow" in done.stderr and "Traceback" not in done.stderr


# Training images on which the shipped model finds a labelled object of the class (a smoke test that the
# shipped file is the trained model, loaded the way the agent loads it; accuracy is measured by eval).
KNOWN_OBJECTS = {"garbage": "000001", "garbage_bin": "000015", "overflow": "000002"}


@pytest.mark.parametrize("class_name", CLASSES)
def test_shipped_model_finds_labelled_objects(class_name: str, model_path: Path) -> None:
    dataset = need_shared("datasets/garbage-street-cn/train")
    image_path = next((dataset / "images").glob(KNOWN_OBJECTS[class_name] + "_*"))
    image = cv2.imread(str(image_path))
    true_xyxy, true_cls = read_labels(dataset / "labels" / (image_path.stem + ".txt"), image.shape[1], image.shape[0])
    class_id = CLASSES.index(class_name)
    found = build_detector(DetectorConfig(model=model_path, min_score=0.25)).detect(image)  # with its crop check
    found = found[found.class_id == class_id]
    assert len(found), f"no {class_name} found in {image_path.name}"
    assert box_iou(found.xyxy, true_xyxy[true_cls == class_id]).max() >= 0.5
    assert np.all(found.confidence >= 0.25)


def test_int8_export_has_7_bit_weights_so_no_cpu_saturates(tmp_path: Path) -> None:
    """u8s8 kernels without VNNI add two uint8 x int8 products in 16 bits: 255 x 64 x 2 fits, 255 x 127 x 2
    does not, and the boxes then depend on the CPU (models/README.md, "int8 and the CPU")."""
    import onnx  # in the test extra, so that this runs in CI; the box's runtime never needs it
    from onnx import numpy_helper

    from agent.config.resources import builtin
    from agent.tools.training import quantize_int8

    calibration = need_shared("datasets/garbage-street-cn/train/images")
    out = quantize_int8(builtin("garbage-fp32"), calibration, tmp_path / "int8.onnx", max_images=4)
    weights = [
        numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer if t.data_type == onnx.TensorProto.INT8
    ]
    assert sum(w.size for w in weights) > 1_000_000  # the convolutions' weights, not just zero points
    assert max(int(abs(w.astype(np.int32)).max()) for w in weights) <= 64  # 255 x 64 x 2 = 32640 <= 32767
