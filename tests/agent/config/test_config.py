"""Bad configurations are refused with the key's path, the bad value and what is accepted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from agent.config import ConfigError, default_config, load_config, resources
from tests.conftest import agent_cmd


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, width=10**9))  # long values stay on one line
    return path


def good(tmp_path: Path, sample_clip: Path) -> dict:
    return {
        "agent_id": "box-1",
        "sources": [{"id": "cam1", "kind": "fixed", "url": str(sample_clip)}],
        "detector": {"model": "builtin:garbage"},
    }


def test_good_config_loads_with_defaults(tmp_path: Path, sample_clip: Path) -> None:
    config = load_config(write(tmp_path, good(tmp_path, sample_clip)))
    assert config.sources[0].sample_fps == 2.0
    assert config.detector.class_map == {"garbage": "garbage_pile", "overflow": "overflowing_bin"}
    assert config.cases.codes["garbage_pile"][0].code == "01-10"
    assert config.state_dir == tmp_path / "edge-agent-data"  # relative to the file


def test_builtin_default_config_is_valid() -> None:
    config = default_config()
    assert config.sources[0].telemetry is not None and config.sources[0].telemetry.is_file()


@pytest.mark.parametrize(
    "change, expected",
    [
        # a wrong enum value names the key, the value and the accepted values
        (
            lambda c: c["sources"][0].update(kind="car"),
            ["sources[0].kind", "'car'", "'vehicle', 'fixed', 'drone' or 'bodycam'"],
        ),
        # a misspelt key is named as unknown
        (lambda c: c["sources"][0].update(sampel_fps=2), ["sources[0].sampel_fps", "unknown key"]),
        # a missing file
        (
            lambda c: c["sources"][0].update(url="/nope/cam.mp4"),
            ["sources[0].url", "file not found", "'/nope/cam.mp4'"],
        ),
        # an out-of-range number says the bound
        (lambda c: c["sources"][0].update(sample_fps=0), ["sources[0].sample_fps", "greater than 0", "got 0"]),
        # the wrong type
        (lambda c: c["detector"].update(threads="many"), ["detector.threads", "valid integer", "'many'"]),
        # a required key is missing
        (lambda c: c.pop("agent_id"), ["agent_id", "required key is missing"]),
        # an unknown case type in the class map lists the case types
        (
            lambda c: c["detector"].update(class_map={"garbage": "litter"}),
            ["detector.class_map.garbage", "'litter'", "'garbage_pile'"],
        ),
        # duplicate source ids
        (lambda c: c["sources"].append(dict(c["sources"][0])), ["sources", "'cam1' is used twice"]),
        # an unset environment variable
        (
            lambda c: c["sources"][0].update(url="rtsp://admin:${EDGE_TEST_UNSET_PW}@10.0.0.1/live"),
            ["sources[0].url", "EDGE_TEST_UNSET_PW is not set"],
        ),
        # an unknown built-in
        (
            lambda c: c["detector"].update(model="builtin:fumes"),
            ["detector.model", "unknown built-in", "builtin:garbage"],
        ),
        # nothing to watch
        (lambda c: c.update(sources=[]), ["give at least one entry under sources, or an inbox folder"]),
        # a bad MQTT port
        (
            lambda c: c.update(uploader={"mqtt": {"host": "h", "port": 70000}}),
            ["uploader.mqtt.port", "less than or equal to 65535", "70000"],
        ),
    ],
)
def test_bad_config_is_refused_with_path_value_and_fix(tmp_path: Path, sample_clip: Path, change, expected) -> None:
    data = good(tmp_path, sample_clip)
    change(data)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    for text in expected:
        assert text in str(err.value)


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("agent_id: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_text("- just a list")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)


def test_passwords_never_shown(tmp_path: Path, sample_clip: Path, monkeypatch) -> None:
    monkeypatch.setenv("CAM_PW", "s3cr3t-pw")
    data = good(tmp_path, sample_clip)
    data["sources"][0].update(url="rtsp://admin:${CAM_PW}@10.0.0.1/live", kind="boat")
    data["uploader"] = {"mqtt": {"host": "h", "password": 12345}}
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    message = str(err.value)
    assert "sources[0].kind" in message and "uploader.mqtt.password" in message
    assert "s3cr3t-pw" not in message and "12345" not in message


def test_check_config_cli_exit_codes(tmp_path: Path, sample_clip: Path) -> None:
    path = write(tmp_path, good(tmp_path, sample_clip))
    ok = subprocess.run(agent_cmd("check-config", str(path)), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    data = good(tmp_path, sample_clip)
    data["sources"][0]["kind"] = "car"
    bad = subprocess.run(
        agent_cmd("check-config", str(write(tmp_path, data))), capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert "sources[0].kind" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("example", sorted(Path(__file__).resolve().parents[3].joinpath("configs").glob("*.yaml")))
def test_example_configs_are_valid(example: Path, monkeypatch) -> None:
    from agent.config import load_receiver_config

    for name in ("CAM_PASSWORD", "MQTT_PASSWORD"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("VENDING_MODEL", str(resources.builtin("garbage")))  # stands in for the city's own model
    (load_receiver_config if example.name.startswith("receiver") else load_config)(example)
