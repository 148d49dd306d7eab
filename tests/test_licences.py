"""The licensing the README states stays true: every shipped model names its licence in its card, the
dependency table matches what pip installed, and the box's runtime never loads the AGPL training stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement

from tests.conftest import REPO

MODELS = REPO / "models"
LICENCE_LINE = re.compile(r"^\*\*Licence: ([A-Za-z0-9.+-]+)\*\*", re.M)
SPDX_IDS = {"AGPL-3.0", "Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause", "GPL-3.0", "CC-BY-4.0"}


def card_for(weights: Path) -> Path:
    """garbage-yolov8n-int8.onnx, garbage-yolov8n.onnx, garbage-yolov8n.pt and the same weights at another
    input shape (garbage-yolov8n-416x224-int8.onnx) share garbage-yolov8n.md."""
    return weights.with_name(re.sub(r"(-\d+x\d+)?(-int8)?$", "", weights.stem) + ".md")


def licence_section(card: Path) -> str:
    text = card.read_text(encoding="utf-8")
    found = re.search(r"^## Licence\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return found.group(1) if found else ""


def test_every_shipped_model_has_a_card_that_names_its_licence() -> None:
    weights = sorted(MODELS.glob("*.onnx")) + sorted(MODELS.glob("*.pt"))
    assert weights
    problems = []
    for path in weights:
        card = card_for(path)
        if not card.is_file():
            problems.append(f"{path.name}: no model card {card.name}")
            continue
        named = LICENCE_LINE.search(licence_section(card))
        if not named or named.group(1) not in SPDX_IDS:
            problems.append(f"{card.name}: its '## Licence' section must begin with **Licence: SPDX-ID**")
        elif "edge-agent train" in card.read_text(encoding="utf-8") and named.group(1) != "AGPL-3.0":
            problems.append(f"{card.name}: trained with ultralytics (edge-agent train), so AGPL-3.0, not {named[1]}")
        elif path.name not in licence_section(card):
            problems.append(f"{card.name}: its licence section does not name {path.name}")
    assert not problems, "\n".join(problems)


def declared_licence(name: str) -> str:
    meta = distribution(name).metadata
    return meta.get("License-Expression") or meta.get("License") or ""


def runtime_packages() -> set[str]:
    """The installed closure of edge-agent's own dependencies, without its extras."""
    found: set[str] = set()
    pending = ["edge-agent"]
    while pending:
        dist = distribution(pending.pop())
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            name = distribution(requirement.name).metadata["Name"]
            if name not in found:
                found.add(name)
                pending.append(name)
    return found


def test_the_dependency_licence_table_matches_the_installed_packages() -> None:
    rows = re.findall(r"^\| ([\w.-]+) \| ([^|]+) \|", (REPO / "docs" / "LICENSES.md").read_text(), re.M)
    table = {name: licence.strip() for name, licence in rows if name != "package"}
    installed = runtime_packages()
    problems = [f"{name}: missing from docs/LICENSES.md" for name in sorted(installed - set(table))]
    problems += [f"{name}: listed but not a runtime dependency" for name in sorted(set(table) - installed)]
    problems += [
        f"{name}: the table says {table[name]!r}, its metadata {declared_licence(name)!r}"
        for name in sorted(installed & set(table))
        if table[name] != declared_licence(name)
    ]
    assert not problems, "\n".join(problems)


def test_the_demo_runs_without_ultralytics_or_torch(tmp_path: Path) -> None:
    # an import of either anywhere on the runtime's path fails here, installed or not
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('ultralytics', 'torch'):\n"
        "            raise ImportError(f'{name} is AGPL training software, not for the runtime')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from agent.cli import main\n"
        "sys.exit(main(['run']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "case(s)" in done.stdout
