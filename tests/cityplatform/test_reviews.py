"""The review feeds training: three fixed cameras' real cases of a held-out pile on a real PostgreSQL +
PostGIS, reviewed with `edge-agent platform-review` (confirm one, reject one as not a problem, correct
the third's type); `edge-agent platform-training-set` then writes a YOLO dataset whose labels and
negatives match those decisions, with the counts that `edge-agent train` reports and records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml

from agent.runner import run_agent
from cityplatform.config import PostgresConfig
from tests.agent.test_cli import run_cli
from tests.cityplatform.test_verification import upload
from tests.cityplatform.training_checks import assert_labels_match, assert_train_accepts, case_of, export
from tests.cleared_footage import fixed_camera, footage, pile_photos
from tests.conftest import Broker
from tests.upload_fixtures import PREFIX, start_receiver

START = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
CAMERAS = {"box-a": (30.2742, 120.155), "box-b": (30.2772, 120.155), "box-c": (30.2712, 120.155)}  # 330 m apart


def receiver_yaml(path: Path, port: int, store: Path, postgres: PostgresConfig) -> Path:
    document = {
        "mqtt": {"host": "127.0.0.1", "port": port, "topic_prefix": PREFIX},
        "store_dir": str(store),
        "postgres": postgres.model_dump(),
    }
    path.write_text(yaml.safe_dump(document))
    return path


def test_reviews_become_a_yolo_dataset_that_train_accepts(
    tmp_path: Path, broker: Broker, postgres: PostgresConfig
) -> None:
    pile, _removed = pile_photos(tmp_path / "photos")
    video = footage(tmp_path / "pile.mp4", [(pile, 15)])
    store = tmp_path / "platform"
    receiver = start_receiver(broker.port, store, postgres=postgres)
    try:
        for agent_id, at in CAMERAS.items():
            config = fixed_camera(tmp_path / agent_id, video, START, agent_id=agent_id, at=at)
            assert run_agent(config).summaries[0].cases == 1
            upload(config, broker.port)
        cases = {agent_id: case_of(receiver.db, agent_id) for agent_id in CAMERAS}
    finally:
        receiver.stop()
    assert len({platform_case for platform_case, _ in cases.values()}) == 3
    config = receiver_yaml(tmp_path / "receiver.yaml", broker.port, store, postgres)

    def review(agent_id: str, *decision: str) -> str:
        done = run_cli("platform-review", "-c", str(config), "--case", str(cases[agent_id][0]), *decision,
                       "--reviewer", "inspector-7", cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "confirm" in review("box-a", "--confirm")
    assert "reject not_a_problem" in review("box-b", "--reject", "not_a_problem")
    assert "correct overflowing_bin" in review("box-c", "--correct", "overflowing_bin")
    wrong = run_cli("platform-review", "-c", str(config), "--case", str(cases["box-a"][0]), "--reject", "ugly",
                    "--reviewer", "inspector-7", cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 2 and "reason 'ugly': give one of not_a_problem" in wrong.stderr
    missing = run_cli("platform-review", "-c", str(config), "--case", "999999", "--confirm", "--reviewer", "x",
                      cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 2 and "platform case 999999 does not exist" in missing.stderr

    out = tmp_path / "dataset"
    reviewed = export(config, out, tmp_path)
    records = {agent_id: record for agent_id, (_, record) in cases.items()}
    # confirmed: garbage; rejected as not a problem: a hard negative; corrected: overflow
    assert_labels_match(out, records, {"box-a": 0, "box-b": None, "box-c": 2})
    assert reviewed["reviewed_confirm"] == reviewed["reviewed_reject"] == reviewed["reviewed_correct"] == 1
    assert_train_accepts(out, tmp_path / "run", reviewed, 3)
    again = run_cli("platform-training-set", "-c", str(config), "--out", str(out), "--classes", "garbage",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_train_names_what_is_wrong_with_a_data_yaml_or_a_missing_classes(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"path": str(tmp_path), "train": "../../etc", "val": "v"}))
    done = run_cli("train", "--data", str(tmp_path / "data.yaml"), "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 2 and "needs path, train, val and names" in done.stderr
    (tmp_path / "data.yaml").write_text(
        yaml.safe_dump({"path": str(tmp_path), "train": "../../etc", "val": "v", "names": {0: "a"}})
    )
    done = run_cli("train", "--data", str(tmp_path / "data.yaml"), "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 2 and "train: '../../etc' is not a folder inside" in done.stderr
    done = run_cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 2 and "--classes: give the class names" in done.stderr
