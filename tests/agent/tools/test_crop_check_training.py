"""`edge-agent train-crop-check`'s data: crops of the training side only, each labelled box once with its
class, the detector's unlabelled boxes as negatives, the classifier's validation side by source; and the
check named in a model's metadata the way the agent reads it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config.resources import builtin
from agent.tools.crop_check_training import CROP_PX, CropClasses, attach, classifier_side, crop_dataset
from agent.tools.evaluate import read_labels
from agent.tools.training import source_group, split_by_source
from detectors.crop_check import own_spec
from detectors.metrics import box_iou
from detectors.onnx_yolo import OnnxYoloDetector
from tests.conftest import need_shared

CLASSES = ["garbage", "garbage_bin", "overflow"]


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A by-source split of 240 real photos (six source blocks), class-balanced as version 3 was trained."""
    dataset = tmp_path_factory.mktemp("dataset")
    for kind in ("images", "labels"):
        (dataset / kind).mkdir()
    for image in sorted(need_shared("datasets/garbage-street-cn/train/images").iterdir())[:240]:
        (dataset / "images" / image.name).symlink_to(image)
        label = image.parent.parent / "labels" / (image.stem + ".txt")
        if label.exists():
            (dataset / "labels" / label.name).symlink_to(label)
    return split_by_source(dataset, CLASSES, tmp_path_factory.mktemp("split"), balance=("overflow",)).data_yaml


def label_classes(split: Path, image: Path) -> list[str]:
    label = split.parent / "train" / "labels" / (image.stem + ".txt")
    return [line.split()[0] for line in label.read_text().splitlines()] if label.exists() else []


def test_crops_come_from_the_training_side_one_per_labelled_box(split: Path, tmp_path: Path) -> None:
    counts = crop_dataset(split, tmp_path / "crops", CropClasses())
    expected: Counter = Counter()
    for image in (split.parent / "train" / "images").iterdir():
        classes, side = label_classes(split, image), classifier_side(image.name)
        expected[(side, "overflowing", "label")] += classes.count("2")
        expected[(side, "clean", "label")] += classes.count("1")
    assert counts == +expected and sum(counts.values()) > 50
    written = list((tmp_path / "crops").glob("*/*/*.jpg"))
    held_out = {p.stem for p in (split.parent / "val" / "images").iterdir()}
    assert len(written) == sum(counts.values()) and not any(p.name.rsplit("-", 2)[0] in held_out for p in written)
    assert cv2.imread(str(written[0])).shape == (CROP_PX, CROP_PX, 3)
    sides: dict[str, str] = {}
    for path in written:  # a source's copies are on one side of the classifier's split
        group = source_group(path.name.rsplit("-", 2)[0] + ".jpg", 40)
        assert sides.setdefault(group, path.parts[-3]) == path.parts[-3]


def test_the_detectors_unlabelled_boxes_become_negatives(split: Path, tmp_path: Path) -> None:
    model = builtin("garbage")
    counts = crop_dataset(split, tmp_path / "crops", CropClasses(), mistakes_of=model, min_score=0.1)
    detector = OnnxYoloDetector(model, min_score=0.1, model_thresholds=False)
    unmatched = 0
    for image_path in (split.parent / "train" / "images").iterdir():
        image = cv2.imread(str(image_path))
        found = detector.detect(image)
        labels, cls = read_labels(image_path.parent.parent / "labels" / (image_path.stem + ".txt"), *image.shape[1::-1])
        boxes, labelled = found.xyxy[found.class_id == 2], labels[cls == 2]
        unmatched += len(boxes) if not len(labelled) else int((box_iou(boxes, labelled).max(axis=1) < 0.3).sum())
    mistakes = list((tmp_path / "crops").glob("*/clean/*-mistake.jpg"))
    assert sum(v for (_, _, origin), v in counts.items() if origin == "mistake") == len(mistakes) == unmatched > 0


def test_a_class_the_split_lacks_is_refused_naming_its_classes(split: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no class 'bin'; its classes are \['garbage', 'garbage_bin', 'overflow'\]"):
        crop_dataset(split, tmp_path / "crops", CropClasses(negatives=("bin",)))


def test_attach_names_the_check_as_the_agent_reads_it(tmp_path: Path) -> None:
    classifier = tmp_path / "check.onnx"
    classifier.write_bytes(builtin("garbage").with_name("garbage-overflow-check.onnx").read_bytes())
    out = attach(builtin("garbage-fp32"), classifier, CropClasses(), 0.6, tmp_path / "checked.onnx")
    spec = own_spec(OnnxYoloDetector(out), out)
    assert spec is not None and (spec.model, spec.checked_class, spec.positive, spec.weight) == (
        classifier,
        "overflow",
        "overflowing",
        0.6,
    )
    assert np.isclose(
        OnnxYoloDetector(out).thresholds["overflow"], OnnxYoloDetector(builtin("garbage-fp32")).thresholds["overflow"]
    )
