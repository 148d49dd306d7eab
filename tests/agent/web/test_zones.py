"""Zones saved from the page: a bad polygon is refused with the key that is wrong and changes nothing;
what the file says otherwise (${VAR}, relative paths) is written back as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.web.zones import ZoneEditor, ZoneError, with_zones


def config_text(clip: Path) -> str:
    return (
        "agent_id: box-1\n"
        "sources:\n"
        "  - id: cam-1\n"
        "    kind: fixed\n"
        f"    url: {clip}\n"
        "  - id: cam-2\n"
        "    kind: fixed\n"
        "    url: rtsp://admin:${CAM_PASSWORD}@192.168.1.64/Streaming/Channels/101\n"
        "detector:\n"
        "  model: builtin:garbage\n"
    )


def test_a_bad_polygon_is_refused_with_its_key_and_the_file_stays(
    tmp_path: Path, sample_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAM_PASSWORD", "s3cret")
    path = tmp_path / "agent.yaml"
    path.write_text(config_text(sample_clip))
    editor = ZoneEditor(path, reloader=None, submit=None)  # type: ignore[arg-type]  # refused before either
    line = [{"name": "kerb", "polygon_px": [[0, 0], [10, 10]], "types": []}]
    with pytest.raises(ZoneError, match=r"sources\[0\]\.zones\[0\]\.polygon_px"):
        editor.save("cam-1", line, [])
    with pytest.raises(ZoneError, match="no source with id 'cam-9'"):
        editor.save("cam-9", [], [])
    with pytest.raises(ZoneError) as err:
        editor.save("cam-1", [{"name": "bad name!", "polygon_px": [[0, 0], [9, 0], [9, 9]]}], [])
    assert "sources[0].zones[0].name" in str(err.value) and "s3cret" not in str(err.value)
    assert path.read_text() == config_text(sample_clip) and not (tmp_path / "agent.yaml.bak").exists()


def test_the_rest_of_the_file_is_written_back_as_it_was(sample_clip: Path) -> None:
    zones = [{"name": "kerb", "polygon_px": [[0, 0], [100, 0], [100, 50]], "types": ["garbage_pile"]}]
    text = with_zones(config_text(sample_clip), "cam-1", zones, [[[0, 0], [5, 0], [5, 5]]])
    saved = yaml.safe_load(text)
    assert saved["sources"][0]["zones"] == zones and saved["sources"][0]["masks_px"] == [[[0, 0], [5, 0], [5, 5]]]
    assert saved["sources"][1]["url"] == "rtsp://admin:${CAM_PASSWORD}@192.168.1.64/Streaming/Channels/101"
    assert "zones" not in yaml.safe_load(with_zones(text, "cam-1", [], []))["sources"][0]  # removed again
