"""SIGHUP reloads the configuration file of a running `edge-agent run` (real RTSP server): only the
changed source restarts, a new one starts, the others keep their decoders; a bad file changes nothing."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.agent.updates.helpers import AGENT, Agent, wait_for, write_config


def test_sighup_restarts_only_the_changed_source_and_a_bad_file_changes_nothing(tmp_path: Path, rtsp_factory) -> None:
    server = rtsp_factory(fps=10, size="320x180", per_client=True)
    server.start()
    camera = {"kind": "fixed", "url": server.url, "sample_fps": 1, "idle_every_s": 1, "stall_s": 5}
    data = {
        "agent_id": AGENT,
        "state_dir": str(tmp_path / "state"),
        "sources": [{"id": "cam-a", **camera}, {"id": "cam-b", **camera}],
        "detector": {"model": "builtin:garbage"},
    }
    path = write_config(tmp_path / "agent.yaml", data)
    agent = Agent(path, tmp_path / "state").start()
    try:
        assert agent.wait_log("cam-b: reading"), agent.log()[-3000:]
        assert wait_for(lambda: "cam-a" in agent.log() and agent.process.poll() is None, 10)
        changed = copy.deepcopy(data)
        changed["sources"][1]["sample_fps"] = 2  # cam-b's setting changes
        changed["sources"].append({"id": "cam-c", **camera})  # and a third camera joins
        write_config(path, changed)
        first = agent.reload()
        assert first["status"] == "applied", first
        assert (first["restarted"], first["started"], first["kept"]) == (["cam-b"], ["cam-c"], ["cam-a"])
        assert (tmp_path / "state" / "updates" / "last-good.yaml").read_text() == path.read_text()
        decoded_at_reload = first["sources"]["cam-a"]["decoded"]
        assert decoded_at_reload > 0

        broken = copy.deepcopy(changed)
        broken["sources"][0]["sample_fps"] = 0
        write_config(path, broken)
        wait_for(lambda: False, 2)  # cam-a decodes on meanwhile
        second = agent.reload()
        assert second["status"] == "rejected", second
        assert "sources[0].sample_fps" in second["reason"]
        assert "rejected" in agent.log() and "sources[0].sample_fps" in agent.log()
        assert sorted(second["sources"]) == ["cam-a", "cam-b", "cam-c"]  # all still running
        assert second["sources"]["cam-a"]["since"] == first["sources"]["cam-a"]["since"]  # never restarted
        assert second["sources"]["cam-a"]["decoded"] > decoded_at_reload  # its decoder's counter went on
    finally:
        out = agent.stop()
    assert len(agent.rows("cam-a")) == 1 and len(agent.rows("cam-b")) == 2, out  # cam-b ran twice, cam-a once
    assert int(agent.rows("cam-a")[0][1]) > second["sources"]["cam-a"]["decoded"]
