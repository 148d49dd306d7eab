"""Prometheus metrics, read at scrape time from the counters the agent keeps anyway.

A custom collector turns `AgentView` into metric families on each scrape, so nothing is counted
twice and a metric cannot drift from the end-of-run summary. Only the inference time needs its own
observations (a histogram); the process's CPU and RSS come from prometheus-client's collector.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.observe.view import AgentView, inputs_of, stats_of
from streams.health import State

PREFIX = "edge_agent"
INFERENCE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def build_registry(view: AgentView) -> CollectorRegistry:
    """A registry with the agent's metrics; hooks the inference histogram into the pipeline."""
    registry = CollectorRegistry()
    inference = Histogram(
        f"{PREFIX}_inference_seconds",
        "Detector inference time per analysed frame",
        ["model"],
        buckets=INFERENCE_BUCKETS_S,
        registry=registry,
    )
    view.pipeline.on_detect = lambda model, seconds: inference.labels(model).observe(seconds)
    ProcessCollector(namespace=PREFIX, registry=registry)  # edge_agent_process_cpu_seconds_total, ..._bytes
    registry.register(AgentCollector(view))
    return registry


class AgentCollector(Collector):
    """Sources, detections, cases, the outbox, the upload and the disk, as they are at this scrape."""

    def __init__(self, view: AgentView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        yield from self._sources()
        yield from self._outbox()
        yield from self._upload()

    def _sources(self) -> Iterator[Metric]:
        by_source = ["source"]
        decoded = CounterMetricFamily(f"{PREFIX}_frames_decoded", "Frames decoded per source", labels=by_source)
        analysed = CounterMetricFamily(f"{PREFIX}_frames_analysed", "Frames run through the detector", labels=by_source)
        dropped = CounterMetricFamily(
            f"{PREFIX}_frames_dropped", "Sampled frames replaced before the detector took them", labels=by_source
        )
        reconnects = CounterMetricFamily(f"{PREFIX}_source_reconnects", "Reconnections per source", labels=by_source)
        state = GaugeMetricFamily(
            f"{PREFIX}_source_state", "1 for the state the source is in, 0 for the others", labels=["source", "state"]
        )
        age = GaugeMetricFamily(
            f"{PREFIX}_source_last_frame_age_seconds", "Seconds since the source's newest frame", labels=by_source
        )
        detections = CounterMetricFamily(
            f"{PREFIX}_detections", "Detections by the model's class name", labels=["source", "class"]
        )
        cases = CounterMetricFamily(f"{PREFIX}_cases_raised", "Case revisions accepted per source", labels=by_source)
        inputs = GaugeMetricFamily(
            f"{PREFIX}_source_input_state",
            "Two-input cameras: 1 for the state each input (detect, record) is in, 0 for the others",
            labels=["source", "input", "state"],
        )
        now = time.monotonic()
        for running in self.view.sources():
            sid, stats = running.config.id, stats_of(running)
            decoded.add_metric([sid], stats.decoded)
            analysed.add_metric([sid], running.summary.frames_analysed)
            dropped.add_metric([sid], stats.dropped)
            reconnects.add_metric([sid], stats.reconnects)
            current = str(stats.state)
            for value in State:
                state.add_metric([sid, value.value], 1.0 if value.value == current else 0.0)
            last = stats.last_frame_mono_s
            age.add_metric([sid], math.nan if last is None else now - last)
            for name, n in sorted(running.by_class.items()):
                detections.add_metric([sid, name], n)
            cases.add_metric([sid], len(running.summary.case_ids))
            for role, stats in inputs_of(running).items():
                for value in State:
                    inputs.add_metric([sid, role, value.value], 1.0 if value.value == str(stats.state) else 0.0)
        yield from (decoded, analysed, dropped, reconnects, state, age, detections, cases, inputs)

    def _outbox(self) -> Iterator[Metric]:
        depth = self.view.outbox_stats.depth()
        cases = GaugeMetricFamily(f"{PREFIX}_outbox_cases", "Case revisions by upload state", labels=["state"])
        files = GaugeMetricFamily(f"{PREFIX}_outbox_files", "Evidence files by upload state", labels=["state"])
        size = GaugeMetricFamily(f"{PREFIX}_outbox_file_bytes", "Evidence bytes by upload state", labels=["state"])
        for state, n in sorted(depth.cases.items()):
            cases.add_metric([state], n)
        for state, n in sorted(depth.files.items()):
            files.add_metric([state], n)
            size.add_metric([state], depth.file_bytes.get(state, 0))
        oldest = GaugeMetricFamily(
            f"{PREFIX}_outbox_oldest_unacked_age_seconds",
            "Age of the oldest case or file the platform has not acknowledged (0: none waits)",
            value=depth.oldest_unacked_s or 0.0,
        )
        disk = GaugeMetricFamily(
            f"{PREFIX}_outbox_disk_bytes", "Bytes the outbox's case folders take", value=self.view.outbox.disk_bytes()
        )
        free = GaugeMetricFamily(
            f"{PREFIX}_state_disk_free_bytes",
            "Free bytes on the disk of the state folder",
            value=shutil.disk_usage(self.view.outbox.root).free,
        )
        yield from (cases, files, size, oldest, disk, free)

    def _upload(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            f"{PREFIX}_upload_bytes", "Bytes published since the agent started", value=self.view.upload_bytes()
        )
        left = self.view.budget_left_bytes()
        if left is not None:
            yield GaugeMetricFamily(f"{PREFIX}_upload_budget_left_bytes", "Today's upload budget left", value=left)
        uploader = self.view.uploader
        if uploader is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_mqtt_connected",
                "1 while connected to the broker",
                value=uploader.connection.connected.is_set(),
            )
