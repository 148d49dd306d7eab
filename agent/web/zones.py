"""Zones and masks drawn on the page, written into the configuration file and applied.

The new file is checked exactly as `edge-agent check-config` checks it (models loaded) before anything
is written; the previous file is kept as FILE.bak; the new one is applied by the reload path a SIGHUP
takes, on the agent's main thread, so only the changed source restarts. If the reload fails and rolls
back, the previous file is put back too, so that the file always says what runs. The file is rewritten
through YAML: its comments are not kept (the .bak file still has them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import yaml

from agent.config import ConfigError
from agent.config.loading import read_config_text
from agent.updates.check import check_config_text
from agent.updates.reload import Outcome, Reloader
from protocol.files import write_atomic

log = logging.getLogger(__name__)

Submit = Callable[[Callable[[], object]], None]  # runs a job on the thread that owns the sources
APPLY_TIMEOUT_S = 120.0


class ZoneError(Exception):
    """The zones cannot be saved; the message says why and what to do."""


class ZoneEditor:
    def __init__(self, config_path: Path | None, reloader: Reloader, submit: Submit) -> None:
        self.config_path = config_path
        self.reloader = reloader
        self.submit = submit

    def save(self, source_id: str, zones: list[dict[str, Any]], masks_px: list[list[list[float]]]) -> Outcome:
        """Write `zones` and `masks_px` for `source_id` into the file and apply it; ZoneError when refused."""
        path = self.config_path
        if path is None:
            raise ZoneError("the agent runs without a configuration file (-c FILE): there is nowhere to save zones")
        try:
            old_text = read_config_text(path)
            new_text = with_zones(old_text, source_id, zones, masks_px)
            config, detectors = check_config_text(new_text, path.resolve().parent, str(path))
        except ConfigError as exc:
            raise ZoneError(str(exc)) from None
        write_atomic(path.with_name(path.name + ".bak"), old_text.encode("utf-8"))
        write_atomic(path, new_text.encode("utf-8"))
        outcome = self._on_main(lambda: self.reloader.apply(config, detectors, new_text, f"{path} (web page)"))
        if outcome.status not in ("applied", "unchanged"):
            write_atomic(path, old_text.encode("utf-8"))
            log.warning("web: zones for %s not applied (%s); %s is as it was", source_id, outcome.reason, path)
        else:
            log.info("web: zones for %s saved into %s (previous file: %s.bak)", source_id, path, path.name)
        return outcome

    def _on_main(self, job: Callable[[], Outcome]) -> Outcome:
        done: Future[Outcome] = Future()

        def run() -> None:
            try:
                done.set_result(job())
            except Exception as exc:  # handed back to the page's request, not lost in the main loop
                done.set_exception(exc)

        self.submit(run)
        return done.result(timeout=APPLY_TIMEOUT_S)


def with_zones(text: str, source_id: str, zones: list[dict[str, Any]], masks_px: list[list[list[float]]]) -> str:
    """The configuration text with the source's `zones` and `masks_px` replaced (${VAR} kept as written)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"the configuration file is not valid YAML: {exc}") from None
    sources = raw.get("sources") if isinstance(raw, dict) else None
    entry = next((s for s in sources or [] if isinstance(s, dict) and s.get("id") == source_id), None)
    if entry is None:
        raise ConfigError(f"sources: no source with id {source_id!r} in the file; reload the page")
    for key, value in (("zones", zones), ("masks_px", masks_px)):
        if value:
            entry[key] = value
        else:
            entry.pop(key, None)
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)
