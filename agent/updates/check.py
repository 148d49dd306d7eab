"""The checks of `edge-agent check-config`, in one place: a reload and a remote update pass exactly
the checks an operator runs by hand, the model load included."""

from __future__ import annotations

from pathlib import Path

from agent.config import AgentConfig, ConfigError, load_config, parse_config
from agent.detector_setup import build_detector
from detectors import Detector, ModelError


def check_config_file(path: Path) -> tuple[AgentConfig, Detector]:
    """Read and validate a configuration file and load its model; ConfigError lists what is wrong."""
    return check_config(load_config(path), str(path))


def check_config_text(text: str, base_dir: Path, origin: str) -> tuple[AgentConfig, Detector]:
    """As check_config_file, for a configuration received as bytes; relative paths resolve in `base_dir`."""
    return check_config(parse_config(text, base_dir=base_dir, origin=origin), origin)


def check_config(config: AgentConfig, origin: str) -> tuple[AgentConfig, Detector]:
    """Load the model as `run` does (a file that is no model fails here, not at the first start) and check
    that the class map and co-located rules name classes it has."""
    try:
        detector = build_detector(config.detector)
    except ModelError as exc:
        raise ConfigError(
            f"{origin}: detector.model: {exc}; give a model made by `edge-agent export`, or builtin:garbage"
        ) from None
    try:
        check_class_map(config, detector.class_names)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    return config, detector


def check_class_map(config: AgentConfig, class_names: tuple[str, ...]) -> None:
    """Refuse at start-up a class map or a co-located rule that names classes the model does not have."""
    named = [("detector.class_map", list(config.detector.class_map), "map the model's own class names")]
    for i, composite in enumerate(config.cases.colocated):
        fix = "list the model's own class names (train one with them: models/README.md)"
        named += [(f"cases.colocated[{i}].objects", composite.objects, fix)]
        named += [(f"cases.colocated[{i}].people", composite.people, fix)]
    problems = [
        f"{key}: {', '.join(map(repr, unknown))} not among the classes of "
        f"{config.detector.model.name} ({', '.join(class_names)}); {fix}"
        for key, names, fix in named
        if (unknown := sorted(set(names) - set(class_names)))
    ]
    if problems:
        raise ConfigError("\n".join(problems))
