"""What check-config catches without a network, and what it never prints: passwords, whole 5 MB
values, tracebacks. Every case here was let through (or leaked) by an earlier version."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args, get_origin

import pytest
from pydantic import BaseModel

from agent.config import AgentConfig, ConfigError, load_config
from agent.config.loading import _PATH_KEYS
from cityplatform.config import ReceiverConfig
from streams import mask_url
from tests.agent.config.test_config import good, write
from tests.conftest import agent_cmd

SECRET = "s3cr@tpass"  # an '@' inside: masking up to the first '@' leaks "tpass"
CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def config_with(tmp_path: Path, sample_clip: Path, **changes: object) -> dict:
    """test_config's good configuration with top-level keys replaced."""
    return good(tmp_path, sample_clip) | changes


def check_config(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(agent_cmd("check-config", str(path)), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"rtsp://admin:{SECRET}@10.0.0.1/live", "rtsp://admin:***@10.0.0.1/live"),
        (f"opening 'rstp://admin:{SECRET}@cam/x' failed", "opening 'rstp://admin:***@cam/x' failed"),
        (f"rtsp:/admin:{SECRET}@cam/x", "rtsp:/admin:***@cam/x"),
        ("rtsp://admin:p/w@cam:554/x", "rtsp://admin:***@cam:554/x"),  # a '/' in the password
        (f"admin:{SECRET}@cam/x", "admin:***@cam/x"),  # no scheme at all
        ("rtsp://admin@cam/x and rtsp://cam:554/x", "rtsp://admin@cam/x and rtsp://cam:554/x"),  # nothing to hide
    ],
)
def test_mask_url_hides_the_whole_password(text: str, expected: str) -> None:
    assert mask_url(text) == expected


def test_logs_mask_passwords_in_tracebacks_too() -> None:
    code = (
        "import logging\n"
        "from agent.logs import setup_logging\n"
        "setup_logging()\n"
        "try:\n"
        f"    raise OSError('cannot open rtsp://admin:{SECRET}@cam/x')\n"
        "except OSError:\n"
        f"    logging.getLogger('t').exception('camera rtsp://admin:{SECRET}@cam/x')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr.count("rtsp://admin:***@cam/x") == 2, done.stderr
    assert "tpass" not in done.stderr and "s3cr" not in done.stderr


@pytest.mark.parametrize(
    "url, expected",
    [
        (f"rstp://admin:{SECRET}@10.0.0.1/live", ["bad URL", "rtsp://, rtsps://"]),
        (f"rtsp:/admin:{SECRET}@10.0.0.1/live", ["bad URL", "two slashes"]),
        (f"http://admin:{SECRET}@10.0.0.1/", ["bad URL", "web page", "rtsp://"]),
        (f"admin:{SECRET}@10.0.0.1/live", ["bad URL", "rtsp://, rtsps://"]),
        (f"rtsp://admin:{SECRET}@:554/live", ["bad URL", "no host"]),
        (f"rtsp://admin:{SECRET}@cam:99999/live", ["bad URL", "port '99999'", "1 to 65535"]),
        (f"rtsp://admin:{SECRET}@cam:0/live", ["bad URL", "port '0'"]),
    ],
)
def test_bad_camera_url_is_a_bad_url_and_never_shows_its_password(
    tmp_path: Path, sample_clip: Path, url: str, expected: list[str]
) -> None:
    data = config_with(tmp_path, sample_clip)
    data["sources"][0]["url"] = url
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    message = str(err.value)
    assert "sources[0].url" in message and "file not found" not in message
    for text in expected:
        assert text in message
    assert "s3cr" not in message and "tpass" not in message


def test_check_config_output_never_holds_the_password(tmp_path: Path, sample_clip: Path) -> None:
    sources = [
        {"id": f"cam{i}", "kind": "fixed", "url": url}
        for i, url in enumerate([f"rstp://admin:{SECRET}@10.0.0.1/live", f"rtsp://admin:{SECRET}@cam:99999/x"])
    ]
    done = check_config(write(tmp_path, config_with(tmp_path, sample_clip, sources=sources)))
    assert done.returncode == 2 and "bad URL" in done.stderr and "Traceback" not in done.stderr
    assert "s3cr" not in done.stdout + done.stderr and "tpass" not in done.stdout + done.stderr


def test_password_written_in_the_file_is_warned_of(tmp_path: Path, sample_clip: Path, monkeypatch) -> None:
    data = config_with(tmp_path, sample_clip, uploader={"mqtt": {"host": "mqtt.example", "password": "plainpw"}})
    data["sources"].append({"id": "cam2", "kind": "fixed", "url": f"rtsp://admin:{SECRET}@10.0.0.1/live"})
    done = check_config(write(tmp_path, data))
    assert done.returncode == 0, done.stderr  # a warning, not a failure
    for key in ("sources[1].url", "uploader.mqtt.password"):
        assert re.search(rf"{re.escape(key)}: a password is written in plain text.*\$\{{VAR\}}", done.stderr)
    assert "plainpw" not in done.stderr + done.stdout and "tpass" not in done.stderr + done.stdout

    monkeypatch.setenv("CAM_PASSWORD", SECRET)
    monkeypatch.setenv("MQTT_PASSWORD", "plainpw")
    data["uploader"]["mqtt"]["password"] = "${MQTT_PASSWORD}"
    data["sources"][1]["url"] = "rtsp://admin:${CAM_PASSWORD}@10.0.0.1/live"
    done = check_config(write(tmp_path, data))
    assert done.returncode == 0 and "plain text" not in done.stderr, done.stderr


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, sample_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(write(tmp_path, config_with(tmp_path, sample_clip, inbox={"folder": "uploads"})))
    assert config.inbox is not None and config.inbox.folder == tmp_path / "uploads"


def _path_fields(model: type[BaseModel]) -> set[str]:
    """Names of every field, at any depth, whose type holds a Path."""

    def kinds(annotation: object) -> list[object]:
        return [annotation, *(k for arg in get_args(annotation) for k in kinds(arg))]

    names: set[str] = set()
    for name, field in model.model_fields.items():
        for kind in kinds(field.annotation):
            if kind is Path:
                names.add(field.alias or name)
            elif isinstance(kind, type) and issubclass(kind, BaseModel) and get_origin(kind) is None:
                names |= _path_fields(kind)
    return names


def test_every_path_key_is_resolved_against_the_file() -> None:
    assert _path_fields(AgentConfig) | _path_fields(ReceiverConfig) <= _PATH_KEYS


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c.update(uploader={"mqtt": {"host": " "}}), ["uploader.mqtt.host", "host name or IP address"]),
        (lambda c: c.update(uploader={"mqtt": {"host": "mqtt.example:1883"}}), ["uploader.mqtt.host", "port"]),
        (lambda c: c.update(uploader={"mqtt": {"host": "h", "port": 0}}), ["uploader.mqtt.port", "got 0"]),
        (lambda c: c["sources"][0].update(gnss="tcp://10.10.0.1:99999"), ["sources[0].gnss", "ports 1-65535"]),
        (lambda c: c["sources"][0].update(gnss="tcp://:10110"), ["sources[0].gnss", "tcp://HOST:PORT"]),
        (lambda c: c["sources"][0].update(sampel_fps=2), ["sources[0].sampel_fps", "did you mean sample_fps?"]),
        (lambda c: c.update(uploader={"mqtt": {"host": "h", "pasword": "x"}}), ["did you mean password?"]),
        (lambda c: c.update(cases={"rules": {"garbage_pile": {"min_detection": 3}}}), ["did you mean min_detections?"]),
        (
            lambda c: c.update(cases={"profiles": [{"name": "w", "form": "12-01", "to": "02-28"}]}),
            ["cases.profiles[0].form", "did you mean from?"],
        ),
    ],
)
def test_hosts_ports_and_typos_are_refused_with_the_fix(tmp_path: Path, sample_clip: Path, change, expected) -> None:
    data = config_with(tmp_path, sample_clip)
    change(data)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    for text in expected:
        assert text in str(err.value)


def test_check_config_refuses_a_model_that_does_not_load(tmp_path: Path, sample_clip: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not a model\x00" * 100)
    done = check_config(write(tmp_path, config_with(tmp_path, sample_clip, detector={"model": str(model)})))
    assert done.returncode == 2, done.stdout
    assert "detector.model" in done.stderr and str(model) in done.stderr and "edge-agent export" in done.stderr
    assert "Traceback" not in done.stderr


def test_non_utf8_config_names_the_file_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    data = b"agent_id: box-1\nsources: []\n# caf\xe9\n"  # Latin-1, not UTF-8
    path.write_bytes(data)
    done = check_config(path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    offset = data.index(b"\xe9")
    assert str(path) in done.stderr and f"byte 0xe9 at byte offset {offset} (line 3)" in done.stderr, done.stderr


@pytest.mark.parametrize(
    "change",
    [
        lambda c, big: c.update(agent_id=big),
        lambda c, big: c["sources"][0].update(url=big),
        lambda c, big: c["sources"][0].update(telemetry=big),
        lambda c, big: c.update(cases={"rules": {"garbage_pile": {"hours": [big]}}}),
        lambda c, big: c.update(**{big: 1}),
    ],
)
def test_a_5mb_value_is_quoted_cut(tmp_path: Path, sample_clip: Path, change) -> None:
    data = config_with(tmp_path, sample_clip)
    change(data, "v" * 5_000_000)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    message = str(err.value)
    assert max(len(run) for run in re.findall("v+", message)) <= 200 and len(message) < 1200, message[:300]
    assert "5000000 characters" in message


def test_examples_that_need_the_environment_say_so_first() -> None:
    for example in sorted(CONFIGS.glob("*.yaml")):
        text = example.read_text()
        needed = sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)))
        head = "\n".join(text.splitlines()[:4])
        exports = [line for line in head.splitlines() if line.startswith("#") and "export " in line]
        for name in needed:
            assert any(f"{name}=" in line for line in exports), f"{example.name}: first 4 lines lack export {name}="
