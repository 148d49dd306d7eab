"""Apply a new configuration to the running agent without losing a case, or roll back.

A configuration is first checked as `edge-agent check-config` checks it (model load included). Then
only what changed is touched: sources whose settings changed are stopped (their pending clips go into
the outbox, as on shutdown) and started again, new ones started, removed ones stopped, the others keep
running. A changed detector (any entry of `detectors:`), case rules, evidence or grid restarts every
source on a new pipeline with the new list of detectors (each model loaded once). If a source it
started fails within `updates.start_check_s`, the last good configuration (kept in
STATE/updates/last-good.yaml) is applied again. The outcome of each reload is logged and written to
STATE/updates/last-reload.json.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, ConfigError
from agent.config.loading import read_config_text
from agent.detector_setup import LoadedDetector
from agent.pipeline import Pipeline
from agent.updates.check import check_config_text
from agent.updates.supervisor import INBOX, Supervisor
from protocol.files import write_atomic

log = logging.getLogger(__name__)

NEEDS_RESTART = ("agent_id", "state_dir", "uploader", "web")  # identity, outbox, link, page: restart the agent
PIPELINE_KEYS = ("detector", "detectors", "cases", "evidence", "grid")  # shared by all: restart on a new pipeline


@dataclass
class Outcome:
    """What a reload did: status applied, unchanged, rejected or rolled_back, and why."""

    status: str
    reason: str = ""
    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


class Reloader:
    """Owns the running configuration; `apply` swaps it for a checked new one."""

    def __init__(
        self, supervisor: Supervisor, config: AgentConfig, detectors: list[LoadedDetector], text: str | None
    ) -> None:
        self.supervisor = supervisor
        self.config = config
        self.detectors = detectors
        self.folder = config.state_dir / "updates"
        self.folder.mkdir(parents=True, exist_ok=True)
        if text is not None:
            write_atomic(self.folder / "last-good.yaml", text.encode("utf-8"))

    def start(self) -> None:
        """Start every source of the running configuration."""
        for source in self.config.sources:
            self.supervisor.start(source)
        if self.config.inbox:
            self.supervisor.start_inbox(self.config.inbox)

    def apply(self, config: AgentConfig, detectors: list[LoadedDetector], text: str | None, origin: str) -> Outcome:
        """Run `config` (checked by agent.updates.check) instead of the current one; roll back if it fails."""
        refused = [key for key in NEEDS_RESTART if getattr(config, key) != getattr(self.config, key)]
        if config.updates.enabled != self.config.updates.enabled:  # the subscription is made at start-up
            refused.append("updates.enabled")
        if refused:
            return self._done(
                origin,
                Outcome("rejected", f"{', '.join(refused)} changed: that needs a restart of the agent, not a reload"),
            )
        good = (self.config, self.detectors)
        outcome = self._switch(config, detectors)
        failed = self._failures(outcome, config.updates.start_check_s)
        if not failed:
            self.config, self.detectors = config, self.supervisor.pipeline.detectors  # new models only if changed
            if text is not None:
                write_atomic(self.folder / "last-good.yaml", text.encode("utf-8"))
            return self._done(origin, outcome)
        reason = "; ".join(failed) + "; the last good configuration runs again"
        failed_runs = [self.supervisor.running[name] for name in outcome.started + outcome.restarted]
        rollback = self._switch(*good)
        for entry in failed_runs:  # in the log and last-reload.json; not a failure of the run that goes on
            self.supervisor.forget(entry)
        rollback.status, rollback.reason = "rolled_back", reason
        return self._done(origin, rollback)

    def _switch(self, config: AgentConfig, detectors: list[LoadedDetector]) -> Outcome:
        """Stop, start and keep sources so that `config` runs (compared with what runs now)."""
        sup = self.supervisor
        before = {name: entry.config for name, entry in sup.running.items()}
        running = sup.pipeline.config
        whole = _versions(detectors) != _versions(sup.pipeline.detectors) or any(
            getattr(config, key) != getattr(running, key) for key in PIPELINE_KEYS
        )
        if whole:
            sup.stop_all()
            sup.pipeline.registry.close()
            old = sup.pipeline
            sup.pipeline = Pipeline(config, detectors, old.outbox, old.signer, old.on_case)
            sup.pipeline.on_detect = old.on_detect  # the metrics' inference histogram follows the new pipeline
        else:
            sup.pipeline.config = config
        wanted: dict[str, Any] = {s.id: s for s in config.sources} | ({INBOX: config.inbox} if config.inbox else {})
        outcome = Outcome("applied")
        for name, old in before.items():
            if name in wanted and not whole and wanted[name] == old:
                outcome.kept.append(name)  # a file that has ended stays ended: it is not processed again
                continue
            if name in sup.running:
                sup.stop(name)
            (outcome.restarted if name in wanted else outcome.stopped).append(name)
        for name, new in wanted.items():
            if name in sup.running:
                continue
            if name == INBOX:
                sup.start_inbox(new)
            else:
                sup.start(new)
            if name not in before:
                outcome.started.append(name)
        return outcome

    def _failures(self, outcome: Outcome, check_s: float) -> list[str]:
        """Why the sources just (re)started failed within `check_s`; [] when none did."""
        fresh = outcome.started + outcome.restarted
        deadline = time.monotonic() + check_s
        while fresh and time.monotonic() < deadline:
            if any(self._problem(name) for name in fresh):
                break
            time.sleep(0.1)
        return [f"{name}: {problem}" for name in fresh if (problem := self._problem(name))]

    def _problem(self, name: str) -> str:
        entry = self.supervisor.running.get(name)
        if entry is None or entry.summary is None:
            return ""
        return entry.summary.problem

    def reload_file(self, path: Path) -> Outcome:
        """SIGHUP: check the local configuration file as check-config does, then apply it."""
        origin = f"{path} (SIGHUP)"
        try:
            text = read_config_text(path)
            config, detectors = check_config_text(text, path.resolve().parent, str(path))
        except ConfigError as exc:
            return self.reject(origin, str(exc))
        return self.apply(config, detectors, text, origin)

    def reject(self, origin: str, reason: str) -> Outcome:
        """A configuration that failed the checks: the running one stays."""
        return self._done(origin, Outcome("rejected", reason))

    def _done(self, origin: str, outcome: Outcome) -> Outcome:
        if outcome.status == "applied" and not (outcome.started or outcome.restarted or outcome.stopped):
            outcome.status = "unchanged"
        report: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(),
            "origin": origin,
            **outcome.__dict__,
            "sources": self.supervisor.report(),
        }
        write_atomic(self.folder / "last-reload.json", json.dumps(report, indent=2).encode())
        if outcome.status in ("applied", "unchanged"):
            log.info(
                "reload from %s %s: started %s, restarted %s, stopped %s, kept running %s",
                origin,
                outcome.status,
                _names(outcome.started),
                _names(outcome.restarted),
                _names(outcome.stopped),
                _names(outcome.kept),
            )
        else:
            log.error("reload from %s %s: %s", origin, outcome.status.replace("_", " "), outcome.reason)
        return outcome


def _names(names: list[str]) -> str:
    return ", ".join(names) or "none"


def _versions(detectors: list[LoadedDetector]) -> list[tuple[str, str]]:
    """Each detector's id and model version, in order: what a new pipeline is needed for when it changes."""
    return [(d.entry.id, d.detector.version) for d in detectors]
