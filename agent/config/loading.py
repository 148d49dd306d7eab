"""Reading configuration files: YAML, `${VAR}` from the environment, `builtin:` names, paths
relative to the file, and validation errors that name the key by its path (`sources[2].url`), show
the bad value (passwords masked, long values cut) and say what is accepted."""

from __future__ import annotations

import difflib
import logging
import os
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from agent.config import resources
from streams.video import mask_url

Model = TypeVar("Model", bound=BaseModel)
log = logging.getLogger(__name__)

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")  # two letters at least: not a drive letter
_QUOTE_CHARS = 200  # the most of a bad value an error repeats: a whole file path fits
_PATH_MAX = 4096  # Linux's; a longer path or URL makes the OS raise instead of answering "not found"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml reads a 5 MB value in a blink


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem, one per line."""


def read_config_text(path: Path) -> str:
    """The file's text; ConfigError (no traceback) when it is missing, unreadable or not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{data[exc.start]:02x} at byte offset {exc.start} (line {line});"
            " save the file as UTF-8"
        ) from None


def looks_like_url(value: str) -> bool:
    """A scheme (`rtsp://`, or a typo such as `rstp://` or `rtsp:/`) or a `user:password@` makes a URL,
    never a file path: it is not resolved against the file's folder, and its password stays masked."""
    at = value.rfind("@")
    return _SCHEME.match(value) is not None or (at > 0 and ":" in value[:at])


def parse_model(model: type[Model], text: str, base_dir: Path, origin: str, context: dict | None = None) -> Model:
    """Parse YAML text into `model` (its validators see `context`); raise ConfigError listing every problem;
    log a warning for each password written in the file itself."""
    try:
        raw = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of keys at the top, not {type(raw).__name__}")
    problems: list[str] = []
    prepared = _prepare(raw, (), base_dir, problems)
    if problems:
        raise ConfigError(_report(origin, problems))
    try:
        parsed = model.model_validate(prepared, context=context)
    except ValidationError as exc:
        raise ConfigError(_report(origin, [_describe(model, e) for e in exc.errors()])) from None
    for where in _plain_text_passwords(raw, ()):
        log.warning(
            "%s: %s: a password is written in plain text in the file; use ${VAR} from the environment "
            "(e.g. ${CAM_PASSWORD}, set with export) or, under mqtt, password_file",
            origin,
            where,
        )
    return parsed


_PATH_KEYS = {
    "url",
    "detect",  # sources[].inputs
    "record",
    "telemetry",
    "model",
    "face_model",
    "state_dir",
    "folder",
    "ca_file",
    "client_cert",
    "client_key",
    "platform_key",
    "local_dir",
    "password_file",
    "store_dir",
    "keys_dir",
    "geo_zones",
    "file",
    "cert_file",
    "key_file",
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
    if key in _PATH_KEYS and len(value) > _PATH_MAX:
        problems.append(f"{_path(loc)}: {len(value)} characters is too long for a path or URL (got {_quote(value)})")
        return value
    if key in _PATH_KEYS and not looks_like_url(value):
        if value.startswith("builtin:"):
            found = resources.builtin(value.removeprefix("builtin:"))
            if found is None:
                problems.append(
                    f"{_path(loc)}: unknown built-in {_quote(value)}; accepted: {resources.builtin_names()}"
                )
                return value
            return str(found)
        expanded = Path(value).expanduser()
        return str(expanded if expanded.is_absolute() else base_dir / expanded)
    return value


def _expand_env(value: str, loc: tuple, problems: list[str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            name = _cut(name)
            problems.append(
                f"{_path(loc)}: environment variable {name} is not set; export {name}=… before starting the agent"
            )
            return ""
        return os.environ[name]

    return _ENV.sub(replace, value)


def _plain_text_passwords(node: Any, loc: tuple) -> list[str]:
    """Where the file itself holds a password: a `password` key, or a `user:password@` in a URL,
    with anything but ${VAR} in it."""
    if isinstance(node, dict):
        return [w for k, v in node.items() for w in _plain_text_passwords(v, (*loc, k))]
    if isinstance(node, list):
        return [w for i, v in enumerate(node) for w in _plain_text_passwords(v, (*loc, i))]
    if node is None or isinstance(node, bool) or (isinstance(node, str) and not node.strip()):
        return []
    key = str(loc[-1]) if loc else ""
    literal = _ENV.sub("", str(node))  # what is left once every ${VAR} is taken out
    if key in ("password", "secret") and literal.strip():
        return [_path(loc)]
    if isinstance(node, str) and mask_url(literal) != literal:
        return [_path(loc)]
    return []


def _describe(model: type[BaseModel], error: dict) -> str:
    loc = tuple(error["loc"])
    where = _path(loc)
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; {_suggest(str(loc[-1]), _keys_at(model, loc[:-1]))}"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    message = mask_url(error["msg"].removeprefix("Value error, "))
    if isinstance(value, str) and len(value) > _QUOTE_CHARS:  # a validator may have quoted it whole
        message = message.replace(repr(value), _quote(value)).replace(value, _cut(mask_url(value)))
    return f"{where}: {message} (got {_show(loc, value)})"


def _suggest(key: str, accepted: list[str]) -> str:
    close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6) if len(key) <= 64 else []
    if close:
        return f"did you mean {close[0]}? (configs/README.md lists every key)"
    if accepted:
        return f"accepted here: {', '.join(accepted)}"
    return "check its spelling against configs/README.md"


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the model accepts at `loc` (a mapping's path), as the file spells them."""
    node: Any = model
    for part in loc:
        node = _step(node, part)
        if node is None:
            return []
    found = _model_in(node)
    return [field.alias or name for name, field in found.model_fields.items()] if found else []


def _step(node: Any, part: Any) -> Any:
    """The type found under `part` (a key or a list index) of the type `node`, or None."""
    origin = get_origin(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        for name, field in node.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    if origin in (list, tuple) and isinstance(part, int):
        return get_args(node)[0]
    if origin is dict:
        return get_args(node)[1]
    if origin in (Union, UnionType, Annotated):
        return next((found for arg in get_args(node) if (found := _step(arg, part)) is not None), None)
    return None


def is_file(path: str | os.PathLike) -> bool:
    """Whether `path` names a file: False, not OSError, for a name too long for the file system
    (Path.is_file raises on ENAMETOOLONG before Python 3.12)."""
    return os.path.isfile(path)


def _model_in(node: Any) -> type[BaseModel] | None:
    if isinstance(node, type) and issubclass(node, BaseModel):
        return node
    if get_origin(node) in (Union, UnionType, Annotated):
        return next((found for arg in get_args(node) if (found := _model_in(arg)) is not None), None)
    return None


def _show(loc: tuple, value: Any) -> str:
    if any(isinstance(p, str) and ("password" in p or "secret" in p) for p in loc):
        return "***"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict | list):
        return type(value).__name__
    return _cut(repr(value))


def _quote(value: str) -> str:
    """The value as an error shows it: passwords masked, at most about 200 characters."""
    if "@" in value and re.search(r"\s", value):  # a password with a space would span two words
        return "'***'"
    masked = mask_url(value)
    if len(masked) <= _QUOTE_CHARS:
        return repr(masked)
    return f"{_ends(masked)!r} ({len(masked)} characters)"


def _cut(text: str) -> str:
    return text if len(text) <= _QUOTE_CHARS else f"{_ends(text)} ({len(text)} characters)"


def _ends(text: str) -> str:
    """Its start and its end (a path's file name is at its end), the middle elided."""
    head = _QUOTE_CHARS // 3
    return f"{text[:head]}…{text[-(_QUOTE_CHARS - head - 20) :]}"


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        part = part if isinstance(part, int) else _cut(str(part))
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _report(origin: str, problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{origin}: {len(problems)} problem(s) in the configuration:\n{lines}"
