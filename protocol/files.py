"""Crash-safe file writes: a file is either absent or complete, never half-written."""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path

_PARTIAL = ".tmp"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, then rename over the final name."""
    tmp = path.with_name(path.name + _PARTIAL)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:  # a full disk: leave no half-written file taking the space that is left
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_partial_files(folder: Path) -> None:
    """Delete what a crash left half-written in `folder` (write_atomic's temporary names)."""
    for tmp in folder.glob(f"*{_PARTIAL}"):
        tmp.unlink()


def complete_folder(folder: Path, last_file: str) -> dict[str, bytes] | None:
    """The other files of a folder whose `last_file` (JSON, written last) is in place and whole; None if not."""
    path = folder / last_file
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != last_file and not p.name.endswith(_PARTIAL)}


def tree_bytes(root: Path) -> int:
    """Bytes of the files under `root`; what another thread deletes meanwhile counts as nothing."""
    total = 0
    for folder, _dirs, names in os.walk(root):  # os.walk skips folders that vanish under it
        for name in names:
            with suppress(FileNotFoundError):
                total += os.stat(os.path.join(folder, name)).st_size
    return total
