"""The box's state for the platform over MQTT: a retained status per source and a periodic heartbeat.

These are latest-state messages, not cases: they never go through the outbox, and one that cannot
be sent (no connection) is simply replaced by the next. Each source's status goes out when its
state or reason changes and again on every (re)connection, so a platform subscribing late, or a
broker restarted without persistence, has the present state at once. The heartbeat
(`{p}/{a}/stats`) goes out on connection and every `uploader.stats_interval_s`, a few hundred bytes
each, for 4G. The retained `{p}/{a}/status` ("online", "offline" as the last will) is the uploader's.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from agent.observe.view import AgentView, inputs_of, state_and_reason, stats_of, wall_time
from agent.pipeline import RunningSource
from protocol.messages import Topics
from uploader import MqttUploader

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1.0"
POLL_S = 0.5  # how soon a change of state is published; also bounds a flapping source to 2 messages/s


class StatusPublisher:
    """A thread that publishes source states on change and the heartbeat on its interval."""

    def __init__(self, view: AgentView, uploader: MqttUploader, topics: Topics) -> None:
        self.view = view
        self.topics = topics
        self.connection = uploader.connection  # the uploader's: status needs no second login to the broker
        self.interval_s = view.config.uploader.stats_interval_s
        self._sent: dict[str, tuple[str, str]] = {}  # source id -> (state, reason) last published
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt-status", daemon=True)
        uploader.on_connect_hooks.append(self._on_connected)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Publish the final states (stopped, ended) while the connection is still up."""
        self._stop.set()
        self._thread.join(timeout=5)
        if self.connection.connected.is_set():
            self._publish_changes(self.connection.client)

    def _on_connected(self, client: mqtt.Client) -> None:
        with self._lock:
            self._sent.clear()  # everything again: the broker may have lost its retained messages
        self._publish_changes(client)
        self._publish_stats(client)

    def _run(self) -> None:
        next_stats = time.monotonic() + self.interval_s
        while not self._stop.wait(POLL_S):
            if not self.connection.connected.is_set():
                continue
            client = self.connection.client
            self._publish_changes(client)
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self.interval_s
                self._publish_stats(client)

    def _publish_changes(self, client: mqtt.Client) -> None:
        for running in self.view.sources():
            current = state_and_reason(running)
            with self._lock:
                if self._sent.get(running.config.id) == current:
                    continue
                self._sent[running.config.id] = current
            payload = json.dumps(self.source_status(running)).encode()
            client.publish(self.topics.source_status(running.config.id), payload, qos=1, retain=True)
            log.debug("status: %s is %s", running.config.id, current[0])

    def _publish_stats(self, client: mqtt.Client) -> None:
        client.publish(self.topics.stats, json.dumps(self.heartbeat()).encode(), qos=1, retain=True)

    def source_status(self, running: RunningSource) -> dict[str, object]:
        """The retained status of one source (protocol/schemas/source-status-v1.schema.json)."""
        stats = stats_of(running)
        last_frame = wall_time(stats.last_frame_mono_s)
        state, reason = state_and_reason(running)
        status: dict[str, object] = {
            "schema_version": SCHEMA_VERSION,
            "agent_id": self.view.config.agent_id,
            "source_id": running.config.id,
            "state": state,
            "since": _iso(wall_time(stats.since_mono_s) or datetime.now(UTC)),
            "reason": reason[:300],
            "last_frame_at": _iso(last_frame) if last_frame else None,
            "position": _position(running),
        }
        if inputs := inputs_of(running):
            status["inputs"] = {role: {"state": str(s.state), "reason": s.reason[:300]} for role, s in inputs.items()}
        return status

    def heartbeat(self) -> dict[str, object]:
        """The periodic summary (protocol/schemas/stats-v1.schema.json)."""
        sources = {
            r.config.id: {
                "state": str(stats_of(r).state),
                "decoded": stats_of(r).decoded,
                "analysed": r.summary.frames_analysed,
                "cases": len(r.summary.case_ids),
            }
            for r in self.view.sources()
        }
        return {
            "schema_version": SCHEMA_VERSION,
            "agent_id": self.view.config.agent_id,
            "at": _iso(datetime.now(UTC)),
            "uptime_s": round(time.monotonic() - self.view.started_mono_s, 1),
            "sources": sources,
            "outbox": self.view.outbox_stats.depth().cases,
            "upload_bytes": self.view.upload_bytes(),
            "budget_left_bytes": self.view.budget_left_bytes(),
        }


def _position(running: RunningSource) -> dict[str, float] | None:
    """A fixed camera's configured position, else the newest analysed frame's fix, else None."""
    if running.config.position is not None:
        return {"lat": running.config.position.lat, "lon": running.config.position.lon}
    fix = running.last_fix
    return {"lat": fix.lat, "lon": fix.lon} if fix is not None else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
