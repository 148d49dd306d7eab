"""Starts what the configuration asks for (the HTTP endpoint, MQTT status) and systemd's notifications,
and stops them in the order that lets the last states still go out."""

from __future__ import annotations

from agent.config import AgentConfig
from agent.observe.sdnotify import Watchdog, sd_notify
from agent.observe.status import StatusPublisher
from agent.observe.view import AgentView
from agent.pipeline import Pipeline
from protocol.messages import Topics
from uploader import MqttUploader, Outbox
from uploader.outbox_stats import OutboxStats


class Observers:
    """The agent's self-reporting for one run; `tick()` from the main loop, `stop()` before the uploader's."""

    def __init__(self, config: AgentConfig, pipeline: Pipeline, outbox: Outbox, uploader: MqttUploader | None) -> None:
        self.view = AgentView(config, pipeline, outbox, OutboxStats(outbox.root), uploader)
        self.server = None
        if config.metrics:  # prometheus-client is imported only by a box that serves metrics
            from agent.observe.http import ObserveServer
            from agent.observe.metrics import build_registry

            self.server = ObserveServer(config.metrics, self.view, build_registry(self.view))
        self.status = None
        if uploader is not None and config.uploader.mqtt is not None:
            topics = Topics(config.uploader.mqtt.topic_prefix, config.agent_id)
            self.status = StatusPublisher(self.view, uploader, topics)
        self.watchdog = Watchdog()

    def start(self) -> None:
        """Before the uploader connects (its first connection publishes the states), then READY=1."""
        if self.server:
            self.server.start()
        if self.status:
            self.status.start()
        sd_notify("READY=1")

    def tick(self) -> None:
        self.watchdog.tick()

    def stop(self) -> None:
        sd_notify("STOPPING=1")
        if self.status:
            self.status.stop()
        if self.server:
            self.server.stop()
        self.view.outbox_stats.close()
