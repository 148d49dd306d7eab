"""Privacy in what leaves the box: faces (and, where configured, persons) masked in the evidence before it is
hashed and signed, on a real street-kitchen photo with two faces; clips masked or kept on the box."""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml

from agent.cases.rules import Sighting
from agent.config import ConfigError, EvidenceConfig, SourceConfig, default_config, parse_config, resources
from agent.evidence.clip_jobs import ClipJobs
from agent.evidence.clip_masking import masked_clip
from agent.evidence.clips import cut_from_file
from agent.evidence.masking import Masker
from agent.evidence.privacy import Privacy
from agent.evidence.snapshots import snapshot_jpeg
from agent.pipeline import Pipeline
from agent.runner import run_agent
from detectors import Detections
from detectors.faces import FaceDetector
from detectors.onnx_yolo import OnnxYoloDetector
from protocol.signing import Signer
from streams import Frame
from streams.video import VideoSource
from tests.case_records import make_case
from tests.conftest import Broker, agent_cmd, need_shared
from tests.upload_fixtures import AGENT, make_uploader, start_receiver, wait_until
from uploader import Outbox

# a CCTV frame of a street kitchen (smoke-fire, CC BY 4.0): two faces the face model finds at >= 0.67
PHOTO = "datasets/smoke-fire/train/images/img_708_jpg.rf.2f9d22a170fd8798a5bb9cfa0d5d0173.jpg"
MCU_PX = 16  # a JPEG block with 4:2:0 chroma: pixels this far from a mask may change with it
T0 = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return cv2.imread(str(need_shared(PHOTO)))


@pytest.fixture(scope="module")
def faces(photo: np.ndarray) -> np.ndarray:
    found = FaceDetector(resources.builtin("face"), 0.5).detect(photo)
    assert len(found) == 2, found  # the test is about these two faces; a change of model shows here
    return found.xyxy.astype(int)


def config_for(tmp_path: Path, **privacy):
    data = {
        "agent_id": AGENT,
        "state_dir": str(tmp_path / "state"),
        "sources": [{"id": "kitchen", "kind": "fixed", "url": "rtsp://10.0.0.1/live"}],
        "detector": {"model": "builtin:smoke", "class_map": {"smoke": "cooking_fumes"}},
        "privacy": privacy,
    }
    return parse_config(yaml.safe_dump(data), base_dir=tmp_path, origin="test")


def sighting_on(image: np.ndarray) -> Sighting:
    """A confirmed cooking-fumes sighting whose evidence frame is `image` (its box away from the faces)."""
    frame = Frame("kitchen", 7, T0, 0.0, 0.7, image)
    box = Detections(
        np.array([[380, 60, 600, 300]], np.float32), np.array([0.8], np.float32), np.array([0]), ("smoke",)
    )
    return Sighting("cooking_fumes", T0, T0 + timedelta(seconds=20), frame, box, 0.8, 4.0, 5)


def sharpness(image: np.ndarray, box: np.ndarray) -> float:
    x1, y1, x2, y2 = box
    return float(cv2.Laplacian(cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def outside(shape: tuple[int, ...], boxes: np.ndarray, band_px: int) -> np.ndarray:
    """True for pixels farther than `band_px` from every box."""
    keep = np.ones(shape[:2], bool)
    for x1, y1, x2, y2 in boxes:
        keep[max(y1 - band_px, 0) : y2 + band_px, max(x1 - band_px, 0) : x2 + band_px] = False
    return keep


def test_faces_in_the_uploaded_snapshot_are_blurred_the_rest_unchanged_and_the_signature_holds(
    tmp_path: Path, photo: np.ndarray, faces: np.ndarray, broker: Broker, case_validator
) -> None:
    config = config_for(tmp_path)  # privacy left out: faces are masked by default
    outbox = Outbox(tmp_path / "state" / "outbox")
    signer = Signer.load_or_create(tmp_path / "keys")
    smoke = OnnxYoloDetector(resources.builtin("smoke"))  # the case's model: its name and version go into the record
    sighting = sighting_on(photo)
    case, _ = Pipeline(config, smoke, outbox, signer).accept(config.sources[0], sighting)

    stored = tmp_path / "state" / "outbox" / "cases" / case.id / "r1"
    record = json.loads((stored / "case.json").read_bytes())
    case_validator.validate(record)
    assert record["privacy"] == {"faces": 2, "persons": 0, "plates": 0, "method": "blur", "clip": "local"}
    assert not (tmp_path / "state" / "private").exists()  # originals_days 0: the unmasked frame is not kept
    key = tmp_path / "keys" / "agent_ed25519.pub.pem"
    done = subprocess.run(
        agent_cmd("verify", str(tmp_path / "state" / "outbox"), "--key", str(key)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # signature and hashes: of the masked files

    platform = start_receiver(broker.port, tmp_path / "platform")
    uploader = make_uploader(outbox, broker.port, signer)
    uploader.start()
    try:
        assert wait_until(lambda: "snapshot.jpg" in platform.evidence_files(AGENT, case.id, 1), timeout_s=30)
        received = platform.evidence_files(AGENT, case.id, 1)["snapshot.jpg"].read_bytes()
    finally:
        uploader.stop(0)
        platform.stop()
        outbox.close()
    assert platform.rejected == 0  # the platform checked the signature and the hash too

    uploaded = cv2.imdecode(np.frombuffer(received, np.uint8), cv2.IMREAD_COLOR)
    plain = snapshot_jpeg(sighting.best_frame, sighting.best_detections, 80, 1280)  # what main uploads
    unmasked = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_COLOR)
    for face in faces:
        before, after = sharpness(unmasked, face), sharpness(uploaded, face)
        assert after < 0.05 * before, (face, before, after)  # the detail is gone, not just softened
    grown = Masker(config.privacy).find(photo).boxes
    far = outside(photo.shape, grown, MCU_PX)
    assert far.mean() > 0.9
    difference = np.abs(uploaded.astype(int) - unmasked.astype(int))[far]
    assert difference.max() <= 2  # JPEG blocks away from the masks encode as they did unmasked


class _CountedSession:
    """The real onnxruntime session, counting how many of its runs are in progress at once."""

    def __init__(self, session) -> None:
        self.session, self.lock, self.running, self.most = session, threading.Lock(), 0, 0

    def run(self, *args):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self.session.run(*args)
        finally:
            with self.lock:
                self.running -= 1


def test_cameras_masking_at_the_same_moment_run_the_face_model_a_few_at_a_time(
    photo: np.ndarray, faces: np.ndarray
) -> None:
    # each run at once holds its own activations (about 115 MB at 1280 wide): 32 cameras with a case at
    # the same moment held 32 times that (docs/substreams.md); the others wait and find the same faces
    detector = FaceDetector(resources.builtin("face"), 0.5, concurrent_runs=2)
    counted = detector.session = _CountedSession(detector.session)
    start = threading.Barrier(6)

    def mask_one() -> np.ndarray:
        start.wait()
        return detector.detect(photo).xyxy.astype(int)

    with ThreadPoolExecutor(6) as pool:
        found = list(pool.map(lambda _: mask_one(), range(6)))
    assert counted.most <= 2
    assert all(np.array_equal(f, faces) for f in found)


def test_faces_false_leaves_the_snapshot_as_it_was(tmp_path: Path, photo: np.ndarray, faces: np.ndarray) -> None:
    """The control for the test above: unmasked, the faces keep their detail and the record says nothing."""
    privacy = Privacy(config_for(tmp_path, faces=False).privacy, tmp_path / "private")
    frame, record = privacy.evidence_frame(sighting_on(photo).best_frame)
    assert record is None and frame.image is photo


def test_persons_from_the_frames_detections_are_masked_and_the_original_kept_only_on_the_box(
    tmp_path: Path, photo: np.ndarray
) -> None:
    privacy = Privacy(
        config_for(tmp_path, faces=False, persons=True, method="pixelate", originals_days=1).privacy,
        tmp_path / "private",
    )
    person = np.array([[60, 200, 180, 608]], np.float32)  # the man in green on the left
    detections = Detections(person, np.array([0.9], np.float32), np.array([0]), ("person",))
    frame = sighting_on(photo).best_frame
    masked, record = privacy.evidence_frame(frame, [detections])
    assert record == {"faces": 0, "persons": 1, "plates": 0, "method": "pixelate"}
    x1, y1, x2, y2 = 60, 200, 180, 608  # pixelated: a few flat blocks where thousands of colours were
    colours = [len(np.unique(image[y1:y2, x1:x2].reshape(-1, 3), axis=0)) for image in (masked.image, photo)]
    assert colours[0] <= 36 < 1000 < colours[1], colours
    assert np.array_equal(masked.image[:, 300:], photo[:, 300:])  # right of the grown box: untouched
    assert frame.image is photo  # the original itself is not altered

    privacy.keep_original("c1", 1, frame, 90)
    original = tmp_path / "private" / "c1" / "r1" / "original.jpg"
    assert original.is_file()
    old = time.time() - 2 * 86400
    os.utime(original, (old, old))
    privacy.purge()
    assert not original.exists()  # older than originals_days: deleted


@pytest.fixture(scope="module")
def kitchen_clip(tmp_path_factory, photo: np.ndarray) -> Path:
    """The photo as 4 s of real H.264 at 10 fps (a keyframe every second)."""
    folder = tmp_path_factory.mktemp("kitchen")
    cv2.imwrite(str(folder / "kitchen.png"), photo)
    clip = folder / "kitchen.mp4"
    subprocess.run(
        [
            *("ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-i", str(folder / "kitchen.png")),
            *("-t", "4", "-r", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10", "-bf", "0", str(clip)),
        ],
        check=True,
    )
    return clip


def assert_faces_blurred(original: bytes, masked: bytes, faces: np.ndarray) -> int:
    """Every frame of `masked` has lost the detail `original` has in each face; returns the frames."""
    with av.open(io.BytesIO(original)) as before, av.open(io.BytesIO(masked)) as after:
        pairs = list(zip(before.decode(video=0), after.decode(video=0), strict=True))
    for a, b in pairs:
        plain, blurred = a.to_ndarray(format="bgr24"), b.to_ndarray(format="bgr24")
        for face in faces:
            assert sharpness(blurred, face) < 0.05 * sharpness(plain, face)
    return len(pairs)


def test_a_masked_clip_has_no_face_detail_in_any_frame(tmp_path: Path, kitchen_clip: Path, faces: np.ndarray) -> None:
    masker = Masker(config_for(tmp_path, clips="masked").privacy)
    started = time.process_time()
    data, frames, found = masked_clip(kitchen_clip.read_bytes(), masker, face_every=3)
    cpu_ms = (time.process_time() - started) * 1000 / frames
    assert frames == 40 and found == 2 * 14  # searched in frames 0, 3, ..., 39
    assert assert_faces_blurred(kitchen_clip.read_bytes(), data, faces) == 40
    print(f"masked clip 608x608: {cpu_ms:.1f} ms CPU a frame (faces every 3rd frame, libx264 veryfast)")


@pytest.mark.parametrize("policy", ["masked", "local"])
def test_clip_revision_is_masked_or_the_clip_stays_on_the_box(
    tmp_path: Path, kitchen_clip: Path, faces: np.ndarray, policy: str
) -> None:
    source = SourceConfig(id="kitchen", kind="fixed", url=str(kitchen_clip))
    privacy = Privacy(config_for(tmp_path, clips=policy).privacy, tmp_path / "private")
    jobs = ClipJobs(
        EvidenceConfig(clip_pre_s=1.0, clip_post_s=1.0), source, VideoSource("kitchen", str(kitchen_clip), 5), privacy
    )
    case = make_case("c1", 1, T0, files={"snapshot.jpg": b"\xff\xd8"})
    jobs.add(case, {"snapshot.jpg": b"\xff\xd8"}, 2.0)
    done = jobs.flush()
    cut = cut_from_file(kitchen_clip, 2.0, 1.0, 1.0, 8_000_000).data  # what goes out with nothing masked
    if policy == "local":
        assert done == []  # no revision 2: nothing for the uploader
        assert (tmp_path / "private" / "c1" / "r1" / "clip.mp4").read_bytes() == cut  # the original, on the box
        return
    [(revision, files)] = done
    assert revision.revision == 2 and [e.name for e in revision.evidence] == ["snapshot.jpg", "clip.mp4"]
    assert files["clip.mp4"] != cut and not (tmp_path / "private").exists()
    assert assert_faces_blurred(cut, files["clip.mp4"], faces) >= 20


def test_plate_areas_are_the_lower_part_of_vehicle_boxes(tmp_path: Path, photo: np.ndarray) -> None:
    privacy = Privacy(config_for(tmp_path, faces=False, plates=True, margin=0).privacy, tmp_path / "private")
    car = np.array([[300, 300, 500, 500]], np.float32)
    detections = Detections(car, np.array([0.9], np.float32), np.array([0]), ("car",))
    masked, record = privacy.evidence_frame(sighting_on(photo).best_frame, [detections])
    assert record == {"faces": 0, "persons": 0, "plates": 1, "method": "blur"}
    changed = np.any(masked.image != photo, axis=2)
    rows, cols = np.nonzero(changed)
    assert rows.min() >= 420 and rows.max() < 500 and cols.min() >= 300 and cols.max() < 500  # lower 40 %
    assert changed[420:500, 300:500].mean() > 0.9


@pytest.mark.parametrize(
    "privacy, key, words",
    [
        ({"clips": "masked", "persons": True}, "privacy", "set clips: local"),
        ({"method": "smear"}, "privacy.method", "'blur' or 'pixelate'"),
        ({"min_face_score": 0}, "privacy.min_face_score", "greater than or equal to 0.05"),
        ({"face_model": "nowhere.onnx"}, "privacy.face_model", "builtin:face"),
        ({"face": False}, "privacy.face", "did you mean faces?"),
    ],
)
def test_a_bad_privacy_section_names_the_key_and_the_fix(tmp_path: Path, privacy, key, words) -> None:
    with pytest.raises(ConfigError) as error:
        config_for(tmp_path, **privacy)
    assert key in str(error.value) and words in str(error.value), str(error.value)


def test_the_demo_keeps_its_clips_on_the_box_and_uploads_masked_snapshots(tmp_path: Path, case_validator) -> None:
    """The built-in demo with the default privacy (faces masked, clips local): through the real pipeline."""
    state = tmp_path / "state"
    result = run_agent(default_config().model_copy(update={"state_dir": state}))
    case_ids = result.summaries[0].case_ids
    assert case_ids and not result.summaries[0].error
    records = [json.loads(p.read_bytes()) for p in sorted((state / "outbox" / "cases").glob("*/r*/case.json"))]
    assert sorted(r["id"] for r in records) == sorted(set(case_ids))  # revision 1 only: no clip revision
    for record in records:
        case_validator.validate(record)
        assert record["privacy"]["clip"] == "local" and record["privacy"]["method"] == "blur"
        assert [e["name"] for e in record["evidence"]] == ["snapshot.jpg", "crop.jpg"]
        assert (state / "private" / record["id"] / "r1" / "clip.mp4").stat().st_size > 10_000
    assert not list((state / "outbox").rglob("clip.mp4"))  # nothing the uploader could send


class PersonAndPile:
    """Stands in for a general model: a garbage pile and a person beside it in every frame."""

    name, version, class_names = "general-stub", "0", ("garbage", "person")
    boxes = np.array([[40, 200, 200, 340], [400, 80, 520, 340]], np.float32)

    def detect(self, image: np.ndarray) -> Detections:
        return Detections(self.boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1], np.int32), self.class_names)


def test_persons_the_detector_saw_on_the_evidence_frame_are_masked_through_the_pipeline(
    tmp_path: Path, case_validator
) -> None:
    """run_source keeps each analysed frame's boxes, so the person in the case's best frame is masked."""
    import threading

    from tests.conftest import make_clip

    clip = make_clip(tmp_path / "street.mp4", seconds=4, size="640x360", rate=10)
    data = {
        "agent_id": "test-box",
        "state_dir": str(tmp_path / "state"),
        "sources": [{"id": "street", "kind": "fixed", "url": str(clip), "sample_fps": 5}],
        "detector": {"model": "builtin:garbage"},
        "cases": {"rules": {"garbage_pile": {"min_detections": 3, "window_s": 10}}},
        "evidence": {"clips": False},
        "privacy": {"faces": False, "persons": True},
    }
    config = parse_config(yaml.safe_dump(data), base_dir=tmp_path, origin="test")
    outbox = Outbox(tmp_path / "state" / "outbox")
    pipeline = Pipeline(config, PersonAndPile(), outbox, Signer.load_or_create(tmp_path / "keys"))
    summary = pipeline.run_source(config.sources[0], threading.Event())
    outbox.close()
    assert summary.case_ids and not summary.error, summary
    [case_dir] = (tmp_path / "state" / "outbox" / "cases").iterdir()
    record = json.loads((case_dir / "r1" / "case.json").read_bytes())
    case_validator.validate(record)
    assert record["privacy"] == {"faces": 0, "persons": 1, "plates": 0, "method": "blur"}
    snapshot = cv2.imdecode(np.frombuffer((case_dir / "r1" / "snapshot.jpg").read_bytes(), np.uint8), 1)
    person, pile = np.array([410, 100, 510, 330]), np.array([50, 210, 190, 330])
    assert sharpness(snapshot, person) < 0.05 * sharpness(snapshot, pile)  # testsrc2 is sharp everywhere
