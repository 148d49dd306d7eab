"""Reading configuration files: YAML, `${VAR}` from the environment, `builtin:` names, paths
relative to the file, and validation errors that name the key by its path (`sources[2].url`), show
the bad value (passwords masked) and say what is accepted."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agent.config import resources
from streams.video import is_live, mask_url

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem, one per line."""


def parse_model(model: type[Model], text: str, base_dir: Path, origin: str) -> Model:
    """Parse YAML text into `model`; raise ConfigError listing every problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of keys at the top, not {type(raw).__name__}")
    problems: list[str] = []
    raw = _prepare(raw, (), base_dir, problems)
    if problems:
        raise ConfigError(_report(origin, problems))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_report(origin, [_describe(e) for e in exc.errors()])) from None


_PATH_KEYS = {
    "url",
    "telemetry",
    "model",
    "state_dir",
    "ca_file",
    "client_cert",
    "client_key",
    "password_file",
    "store_dir",
    "keys_dir",
    "geo_zones",
    "file",
}


def _prepare(node: Any, loc: tuple, base_dir: Path, problems: list[str]) -> Any:
    """Expand ${VAR}, resolve builtin: names and relative paths, recursively."""
    if isinstance(node, dict):
        return {k: _prepare(v, (*loc, k), base_dir, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_prepare(v, (*loc, i), base_dir, problems) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    value = _expand_env(node, loc, problems)
    key = loc[-1] if loc else ""
    if key in _PATH_KEYS and not is_live(value):
        if value.startswith("builtin:"):
            found = resources.builtin(value.removeprefix("builtin:"))
            if found is None:
                problems.append(f"{_path(loc)}: unknown built-in {value!r}; accepted: {resources.builtin_names()}")
                return value
            return str(found)
        expanded = Path(value).expanduser()
        return str(expanded if expanded.is_absolute() else base_dir / expanded)
    return value


def _expand_env(value: str, loc: tuple, problems: list[str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            problems.append(
                f"{_path(loc)}: environment variable {name} is not set; export {name}=… before starting the agent"
            )
            return ""
        return os.environ[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", replace, value)


def _describe(error: dict) -> str:
    loc = tuple(error["loc"])
    where = _path(loc)
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; check its spelling against configs/README.md"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message} (got {_show(loc, value)})"


def _show(loc: tuple, value: Any) -> str:
    if any(isinstance(p, str) and ("password" in p or "secret" in p) for p in loc):
        return "***"
    if isinstance(value, str):
        return repr(mask_url(value))
    if isinstance(value, dict | list):
        return type(value).__name__
    return repr(value)


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _report(origin: str, problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{origin}: {len(problems)} problem(s) in the configuration:\n{lines}"
