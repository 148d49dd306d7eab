"""/metrics says what the end-of-run summary says: both read the same counters (the demo clip)."""

from __future__ import annotations

import threading
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.detector_setup import build_detector
from agent.observe.metrics import build_registry
from agent.observe.view import AgentView
from agent.pipeline import Pipeline, state_paths
from protocol.signing import Signer
from tests.agent.test_pipeline import demo_config
from uploader import Outbox
from uploader.outbox_stats import OutboxStats


def test_metrics_agree_with_the_summary_and_the_outbox(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    outbox_dir, keys_dir = state_paths(config)
    outbox = Outbox(outbox_dir)
    detector = build_detector(config.detector)
    pipeline = Pipeline(config, detector, outbox, Signer.load_or_create(keys_dir))
    view = AgentView(config, pipeline, outbox, OutboxStats(outbox.root), None)
    registry = build_registry(view)
    source = config.sources[0]
    summary = pipeline.run_source(source, threading.Event())
    text = generate_latest(registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    one = (("source", source.id),)
    assert summary.cases > 0 and not summary.error
    assert samples[("edge_agent_frames_decoded_total", one)] == summary.frames_decoded == 240
    assert samples[("edge_agent_frames_analysed_total", one)] == summary.frames_analysed
    assert samples[("edge_agent_inference_seconds_count", (("model", detector.name),))] == summary.frames_analysed
    assert samples[("edge_agent_cases_raised_total", one)] == summary.cases
    assert samples[("edge_agent_source_state", (("source", source.id), ("state", "ended")))] == 1
    by_class = {dict(k[1])["class"]: v for k, v in samples.items() if k[0] == "edge_agent_detections_total"}
    assert set(by_class) <= set(detector.class_names) and sum(by_class.values()) >= summary.detections > 0
    counts = outbox.counts()
    assert samples[("edge_agent_outbox_cases", (("state", "pending"),))] == counts["pending"] > 0
    assert samples[("edge_agent_outbox_file_bytes", (("state", "pending"),))] > 0
    assert samples[("edge_agent_outbox_oldest_unacked_age_seconds", ())] > 0
    assert samples[("edge_agent_outbox_disk_bytes", ())] == outbox.disk_bytes()
    assert samples[("edge_agent_upload_bytes_total", ())] == 0  # no uploader: nothing went out
    assert ("edge_agent_upload_budget_left_bytes", ()) not in samples  # no daily budget configured
    assert samples[("edge_agent_process_resident_memory_bytes", ())] > 0
    view.outbox_stats.close()
    outbox.close()
