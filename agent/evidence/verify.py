"""`edge-agent verify`: does every case's signature hold and does every evidence file match its hash?"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from protocol.signing import PUBLIC_KEY_FILE, verify_record


def verify_path(path: Path, key_path: Path | None) -> tuple[list[str], int]:
    """Returns (problems, number of cases checked). Each problem names the file that fails."""
    case_files = [path / "case.json"] if (path / "case.json").exists() else sorted(path.rglob("case.json"))
    if key_path is None:
        key_path = find_key(path)
        if key_path is None:
            return [f"{path}: no public key found; give one with --key"], 0
    public_pem = key_path.read_bytes()
    problems: list[str] = []
    for case_file in case_files:
        problems += verify_case(case_file, public_pem)
    return problems, len(case_files)


def verify_case(case_file: Path, public_pem: bytes) -> list[str]:
    try:
        record = json.loads(case_file.read_bytes())
    except (OSError, ValueError) as exc:
        return [f"{case_file}: unreadable case JSON ({exc})"]
    problems = []
    wrong = verify_record(record, public_pem)
    if wrong:
        problems.append(f"{case_file}: {wrong}")
    for item in record.get("evidence", []):
        evidence = case_file.parent / str(item.get("name", ""))
        if not evidence.is_file():
            problems.append(f"{evidence}: evidence file missing")
        elif hashlib.sha256(evidence.read_bytes()).hexdigest() != item.get("sha256"):
            problems.append(f"{evidence}: sha256 differs from the case (the file was altered)")
    return problems


def find_key(path: Path) -> Path | None:
    """Look for keys/agent_ed25519.pub.pem in the path and the folders above it."""
    for folder in [path, *path.resolve().parents]:
        candidate = folder / "keys" / PUBLIC_KEY_FILE
        if candidate.is_file():
            return candidate
    return None
