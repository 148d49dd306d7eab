"""From detections to a Case, stage by stage: tracking, places (zones, masks), co-located groups, the
persistence rule, the registry (a problem seen again is the next revision), locating the box."""

from agent.cases.case import Case, EvidenceFile, case_id
from agent.cases.colocated import Colocator
from agent.cases.locate import locate
from agent.cases.places import SourcePlaces
from agent.cases.registry import CaseRegistry
from agent.cases.rules import PersistenceRule, Sighting
from agent.cases.tracking import Tracker

__all__ = [
    "Case",
    "CaseRegistry",
    "Colocator",
    "EvidenceFile",
    "PersistenceRule",
    "Sighting",
    "SourcePlaces",
    "Tracker",
    "case_id",
    "locate",
]
