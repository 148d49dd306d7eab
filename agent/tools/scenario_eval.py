"""Event-level precision and recall: the cases a labelled scenario raised against those its labels call for.

Why: per-image precision says how often a box is right; an inspector cares how often a case is.
`edge-agent eval --scenario FILE` builds the scenario (`agent.tools.scenario`), runs it through the
agent as `edge-agent process` does (local outbox, no broker), and compares.

What the labels call for: a segment whose photo is labelled with a class that maps to a case type
(`detector.class_map`) is a sighting of that type where the camera was in the middle of the
segment, when the agent analysed at least the rule's `min_detections` frames of it, the rule was
active then (`hours`, season) and the labelled box counts under the source's zones (pixel zones
by the label's bottom centre, geo zones by the position). Sightings of one type within the rule's
`max_distance_m` of each other (or, without positions, from the one camera) are one expected case:
a pile passed twice is one case. A raised case matches an expected one of its type within
`max_distance_m` (or, without positions, any of its type). Precision is matched / raised (1 when
nothing was raised), recall matched / expected (1 when nothing was expected).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np

from agent.cases.places import SourcePlaces
from agent.config import AgentConfig, SourceConfig
from agent.config.rules import CasesConfig
from agent.geo.earth import distance_m
from agent.runner import RunResult, run_agent
from agent.tools.scenario import Scenario, Shown, build, load_spec
from detectors import Detections
from streams import Frame
from streams.video import VideoSource


@dataclass
class ExpectedCase:
    """A case the labels call for: one type at one place, from one or more segments."""

    case_type: str
    latlon: tuple[float, float] | None
    segments: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)  # frames analysed in each of those segments


@dataclass(frozen=True)
class RaisedCase:
    """A case the agent stored, with every revision of it."""

    case_id: str
    case_type: str
    latlon: tuple[float, float] | None
    revisions: tuple[int, ...]
    first_seen: str
    last_seen: str


@dataclass
class EventReport:
    expected: list[ExpectedCase]
    raised: list[RaisedCase]
    matches: dict[int, str]  # expected index -> raised case id
    frames_decoded: int
    frames_analysed: int

    @property
    def precision(self) -> float:
        return len(self.matches) / len(self.raised) if self.raised else 1.0

    @property
    def recall(self) -> float:
        return len(self.matches) / len(self.expected) if self.expected else 1.0

    def counts(self) -> dict[str, float]:
        """The numbers of the report, for JSON."""
        return {
            "expected": len(self.expected),
            "raised": len(self.raised),
            "matched": len(self.matches),
            "precision": self.precision,
            "recall": self.recall,
        }


def scenario_source(scenario: Scenario) -> SourceConfig:
    """The source `edge-agent process` would make for the scenario's video and track."""
    return SourceConfig(
        id="scenario",
        kind=scenario.spec.kind,
        url=str(scenario.video.resolve()),
        telemetry=scenario.track.resolve() if scenario.track else None,
        start_time=scenario.spec.start,
        **scenario.spec.source,
    )


def scenario_config(scenario: Scenario, base: AgentConfig, state_dir: Path) -> AgentConfig:
    """`base` (detector, rules, evidence) with the scenario as its only source and a local outbox only."""
    cases = CasesConfig.model_validate(scenario.spec.cases) if scenario.spec.cases is not None else base.cases
    uploader = base.uploader.model_copy(update={"mqtt": None})
    return base.model_copy(
        update={
            "sources": [scenario_source(scenario)],
            "inbox": None,
            "state_dir": state_dir,
            "cases": cases,
            "uploader": uploader,
        }
    )


def run_scenario(scenario: Scenario, config: AgentConfig) -> tuple[RunResult, list[float]]:
    """Run the agent on the scenario; also returns the media time of every analysed frame."""
    analysed: list[float] = []

    def on_frame(_video: VideoSource, frame: Frame) -> None:
        analysed.append(frame.media_s)

    return run_agent(config, on_frame_factory=lambda _source_id: on_frame), analysed


def expected_cases(scenario: Scenario, config: AgentConfig, analysed_s: list[float]) -> list[ExpectedCase]:
    """The cases the labels call for under `config`'s rules and the source's zones (see the module doc)."""
    source = config.sources[0]
    places = SourcePlaces.from_config(source)
    class_map = {name: t for entry in config.detector_entries for name, t in entry.class_map.items()}
    names = scenario.spec.classes
    times = np.asarray(analysed_s)
    expected: list[ExpectedCase] = []
    for segment in scenario.segments:
        frames = int(((times >= segment.start_s - 1e-6) & (times < segment.end_s - 1e-6)).sum())
        latlon = _where(scenario, source, segment)
        for case_type in sorted({class_map.get(names[c], "") for c in segment.labels_cls} - {""}):
            middle = scenario.spec.start + timedelta(seconds=(segment.start_s + segment.end_s) / 2)
            rule = config.cases.rule(case_type, middle)
            if frames < rule.min_detections or not rule.active_at(middle.astimezone(config.cases.tz)):
                continue
            boxes = _label_boxes(segment, case_type, names, class_map)
            if not places.trigger(boxes, case_type, latlon).any():
                continue
            same = next((e for e in expected if _same_place(e, case_type, latlon, rule.max_distance_m)), None)
            if same is None:
                same = ExpectedCase(case_type, latlon)
                expected.append(same)
            same.segments.append(segment.index)
            same.frames.append(frames)
    return expected


def raised_cases(outbox_dir: Path) -> list[RaisedCase]:
    """Every case in the outbox with its revisions; the position and times of its newest revision."""
    revisions: dict[str, list[dict]] = {}
    for path in sorted(outbox_dir.glob("cases/*/r*/case.json")):
        record = json.loads(path.read_bytes())
        revisions.setdefault(record["id"], []).append(record)
    raised = []
    for case_id, records in revisions.items():
        records.sort(key=lambda r: r["revision"])
        newest = records[-1]
        location = newest.get("location")
        raised.append(
            RaisedCase(
                case_id,
                newest["type"],
                (location["lat"], location["lon"]) if location else None,
                tuple(r["revision"] for r in records),
                newest["first_seen"],
                newest["last_seen"],
            )
        )
    raised.sort(key=lambda r: r.first_seen)
    return raised


def match(expected: list[ExpectedCase], raised: list[RaisedCase], config: AgentConfig) -> dict[int, str]:
    """Pair expected and raised cases one to one: same type, within the rule's `max_distance_m`."""
    taken: set[str] = set()
    pairs: dict[int, str] = {}
    for i, want in enumerate(expected):
        radius_m = config.cases.rule(want.case_type).max_distance_m
        for case in raised:
            if case.case_id in taken or case.case_type != want.case_type:
                continue
            positioned = want.latlon is not None and case.latlon is not None
            if positioned and distance_m(*want.latlon, *case.latlon) > radius_m:  # type: ignore[misc]
                continue
            pairs[i] = case.case_id
            taken.add(case.case_id)
            break
    return pairs


def evaluate_scenario(scenario: Scenario, base: AgentConfig, state_dir: Path) -> EventReport:
    """Run a built scenario through the agent and compare the raised cases with the expected ones."""
    config = scenario_config(scenario, base, state_dir)
    result, analysed = run_scenario(scenario, config)
    summary = result.summaries[0]
    if summary.error:
        raise RuntimeError(f"scenario: {summary.error}")
    expected = expected_cases(scenario, config, analysed)
    raised = raised_cases(Path(result.outbox_dir))
    return EventReport(expected, raised, match(expected, raised, config), summary.frames_decoded, len(analysed))


def evaluate_file(path: Path, base: AgentConfig, out_dir: Path) -> tuple[EventReport, Scenario]:
    """Build the scenario described in `path` into `out_dir` and evaluate it (video, track, outbox stay there)."""
    scenario = build(load_spec(path), out_dir)
    return evaluate_scenario(scenario, base, out_dir / "state"), scenario


def print_events(report: EventReport, scenario: Scenario) -> None:
    """The expected and raised cases side by side, then precision and recall on one line."""
    print(
        f"scenario: {len(scenario.segments)} segments, {report.frames_decoded} frames, "
        f"{report.frames_analysed} analysed"
    )
    by_id = {c.case_id: c for c in report.raised}
    print("expected (from the labels):")
    for i, want in enumerate(report.expected):
        got = by_id.get(report.matches.get(i, ""))
        found = f"case {got.case_id[:8]} revisions {list(got.revisions)}" if got else "MISSED"
        print(
            f"  {want.case_type:<16} at {_place(want.latlon)}  segments {want.segments} "
            f"(frames analysed {want.frames})  -> {found}"
        )
    matched = set(report.matches.values())
    print("raised but not expected:")
    for case in report.raised:
        if case.case_id not in matched:
            print(f"  {case.case_type:<16} at {_place(case.latlon)}  case {case.case_id[:8]} {case.first_seen}")
    print(
        f"events: expected {len(report.expected)}, raised {len(report.raised)}, matched {len(report.matches)}; "
        f"precision {report.precision:.3f}, recall {report.recall:.3f}"
    )


def _where(scenario: Scenario, source: SourceConfig, segment: Shown) -> tuple[float, float] | None:
    if scenario.track is not None:
        return scenario.latlon(segment.middle_en)
    return (source.position.lat, source.position.lon) if source.position else None


def _label_boxes(segment: Shown, case_type: str, names: list[str], class_map: dict[str, str]) -> Detections:
    keep = np.array([class_map.get(names[c]) == case_type for c in segment.labels_cls], dtype=bool)
    xyxy = segment.labels_xyxy[keep].astype(np.float32)
    return Detections(xyxy, np.ones(len(xyxy), np.float32), segment.labels_cls[keep].astype(np.int32))


def _same_place(known: ExpectedCase, case_type: str, latlon: tuple[float, float] | None, radius_m: float) -> bool:
    if known.case_type != case_type:
        return False
    if known.latlon is None or latlon is None:
        return known.latlon is None and latlon is None
    return distance_m(*known.latlon, *latlon) <= radius_m


def _place(latlon: tuple[float, float] | None) -> str:
    return f"{latlon[0]:.5f},{latlon[1]:.5f}" if latlon else "(the camera's view)"
