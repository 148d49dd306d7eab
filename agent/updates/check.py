"""The checks of `edge-agent check-config`, in one place: a reload and a remote update pass exactly
the checks an operator runs by hand, the model load included."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agent.config import AgentConfig, ConfigError, load_config, parse_config
from agent.detector_setup import LoadedDetector, build_detectors


def check_config_file(path: Path) -> tuple[AgentConfig, list[LoadedDetector]]:
    """Read and validate a configuration file and load its models; ConfigError lists what is wrong."""
    return check_config(load_config(path), str(path))


def check_config_text(text: str, base_dir: Path, origin: str) -> tuple[AgentConfig, list[LoadedDetector]]:
    """As check_config_file, for a configuration received as bytes; relative paths resolve in `base_dir`."""
    return check_config(parse_config(text, base_dir=base_dir, origin=origin), origin)


def check_config(config: AgentConfig, origin: str) -> tuple[AgentConfig, list[LoadedDetector]]:
    """Load every model as `run` does (a file that is no model fails here, not at the first start, with the
    key of its entry) and check that class maps, vetoes and co-located rules name classes they have."""
    try:
        detectors = build_detectors(config)
        check_class_map(config, detectors)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    return config, detectors


def check_class_map(config: AgentConfig, detectors: Sequence[LoadedDetector] | tuple[str, ...]) -> None:
    """Refuse at start-up a class map or a co-located rule that names classes no detector has.
    `detectors` may be the class names of the one model of a `detector:` file."""
    if isinstance(detectors, tuple) and all(isinstance(name, str) for name in detectors):
        classes = [(config.detector_entries[0], "detector", tuple(detectors))]
    else:
        classes = [(d.entry, d.key, d.detector.class_names) for d in detectors]  # type: ignore[union-attr]
    problems = [
        f"{key}.class_map: {', '.join(map(repr, unknown))} not among the classes of {entry.model.name} "
        f"({', '.join(names)}); map the model's own class names"
        for entry, key, names in classes
        if (unknown := sorted(set(entry.class_map) - set(names)))
    ]
    names_of = {entry.id: names for entry, _, names in classes}
    problems += [
        f"{key}.vetoes[{j}].classes: {', '.join(map(repr, unknown))} not among the classes of detector "
        f"{veto.veto_with!r} ({', '.join(names_of[veto.veto_with])}); list its own class names"
        for entry, key, _ in classes
        for j, veto in enumerate(entry.vetoes)
        if veto.veto_with in names_of and (unknown := sorted(set(veto.classes) - set(names_of[veto.veto_with])))
    ]
    known = {name for _, _, names in classes for name in names}
    models = "; ".join(f"{entry.model.name} ({', '.join(names)})" for entry, _, names in classes)
    for i, composite in enumerate(config.cases.colocated):
        for part in ("objects", "people"):
            if unknown := sorted(set(getattr(composite, part)) - known):
                problems.append(
                    f"cases.colocated[{i}].{part}: {', '.join(map(repr, unknown))} not among the classes of {models}; "
                    "list the model's own class names (train one with them: models/README.md)"
                )
    if problems:
        raise ConfigError("\n".join(problems))
