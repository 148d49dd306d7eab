"""Liveness and readiness as JSON, for Docker's HEALTHCHECK, systemd and a fleet's monitoring.

`/healthz` answers while the process serves requests. `/readyz` says whether the box does its job:
the detectors are loaded, the outbox takes writes, and, where cameras are configured, at least one of
them is live; it lists every source's state so that one look says which camera is down.
"""

from __future__ import annotations

import tempfile
import time

from agent.observe.view import AgentView
from streams.health import State


def liveness(view: AgentView) -> dict[str, object]:
    return {
        "status": "ok",
        "agent_id": view.config.agent_id,
        "uptime_s": round(time.monotonic() - view.started_mono_s, 1),
    }


def readiness(view: AgentView) -> tuple[bool, dict[str, object]]:
    """(ready, the report): unready while the outbox cannot be written or no configured camera is live."""
    detectors = view.pipeline.detectors
    detector = detectors[0].detector
    writable, outbox_problem = _outbox_writable(view)
    cameras = view.cameras()
    states = {running.config.id: view.state_of(running.config.id) for running in view.sources()}
    states |= {sid: view.state_of(sid) for sid in cameras}
    live = sorted(sid for sid, state in states.items() if state == State.LIVE)
    problems = [] if writable else [outbox_problem]
    if cameras and not set(live) & set(cameras):
        problems.append(f"no camera is live ({', '.join(f'{c}: {states[c]}' for c in cameras)})")
    report: dict[str, object] = {
        "ready": not problems,
        "detector": {"loaded": True, "model": detector.name, "version": detector.version},  # the first
        "detectors": {d.entry.id: {"model": d.detector.name, "version": d.detector.version} for d in detectors},
        "outbox_writable": writable,
        "sources": states,
        "live": live,
        "problems": problems,
    }
    return not problems, report


def _outbox_writable(view: AgentView) -> tuple[bool, str]:
    """A real write in the outbox folder: permissions, a read-only remount and a full disk all show here."""
    try:
        with tempfile.TemporaryFile(dir=view.outbox.root, prefix=".ready-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        return False, f"outbox {view.outbox.root} is not writable: {exc.strerror or exc}"
    return True, ""
