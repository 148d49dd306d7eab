"""The `metrics:` section and the heartbeat interval: off by default, errors that name the key."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from agent.config import ConfigError, load_config
from tests.agent.config.test_config import good, write
from tests.conftest import agent_cmd


def test_metrics_are_off_by_default_and_local_when_on(tmp_path: Path, sample_clip: Path) -> None:
    assert load_config(write(tmp_path, good(tmp_path, sample_clip))).metrics is None
    data = good(tmp_path, sample_clip) | {"metrics": {"port": 9108}}
    metrics = load_config(write(tmp_path, data)).metrics
    assert (metrics.port, metrics.bind) == (9108, "127.0.0.1")


@pytest.mark.parametrize(
    "section, key, words",
    [
        ({"metrics": {"port": 9108, "bind": "localhost:80"}}, "metrics.bind", "not an IP address"),
        ({"metrics": {"port": 0}}, "metrics.port", "greater than or equal to 1"),
        ({"metrics": {"bind": "127.0.0.1"}}, "metrics.port", "required"),
        ({"metrics": {"port": 9108, "path": "/m"}}, "metrics.path", ""),
        ({"uploader": {"stats_interval_s": 1}}, "uploader.stats_interval_s", "10"),
    ],
)
def test_a_bad_metrics_section_names_its_key(
    tmp_path: Path, sample_clip: Path, section: dict, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, good(tmp_path, sample_clip) | section))
    assert key in str(err.value) and words in str(err.value), str(err.value)


def test_a_metrics_port_in_use_stops_the_start_with_the_fix(tmp_path: Path, sample_clip: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = good(tmp_path, sample_clip) | {"metrics": {"port": port}, "state_dir": str(tmp_path / "state")}
        done = subprocess.run(
            agent_cmd("run", "-c", str(write(tmp_path, data))), capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 2, done.stderr
    assert f"metrics: cannot listen on 127.0.0.1:{port}" in done.stderr and "metrics.port" in done.stderr
