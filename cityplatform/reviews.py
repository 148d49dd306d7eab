"""An inspector's review of a platform case: confirm, reject with a reason, or correct the type, from the
review page or `edge-agent platform-review`. Every decision is kept (table `reviews`, migration 004);
the latest one of a case is the one that counts."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cityplatform.store import Store
from protocol import CASE_SCHEMA

DECISIONS = ("confirm", "reject", "correct")
REASONS = {
    "not_a_problem": "not a problem (the model was wrong: a hard negative for training)",
    "duplicate": "a duplicate of another case",
    "wrong_type": "a problem, but of another type (prefer `correct`)",
    "outside_rules": "real, but outside the rules (hours, zone, size)",
}
CASE_TYPES = tuple(json.loads(CASE_SCHEMA.read_text())["properties"]["type"]["enum"])


@dataclass(frozen=True)
class Review:
    platform_case_id: int
    decision: str
    reason: str | None = None
    corrected_type: str | None = None
    reviewer: str = ""

    def problem(self) -> str:
        """What is wrong with this review as given, naming the option and the fix; '' when it is whole."""
        if self.decision not in DECISIONS:
            return f"decision {self.decision!r:.40}: give one of {', '.join(DECISIONS)}"
        if (self.decision == "reject") != (self.reason is not None):
            return "a rejection needs --reason (and only a rejection has one)"
        if self.reason is not None and self.reason not in REASONS:
            return f"reason {self.reason!r:.40}: give one of {', '.join(REASONS)}"
        if (self.decision == "correct") != (self.corrected_type is not None):
            return "a correction needs the right type (and only a correction has one)"
        if self.corrected_type is not None and self.corrected_type not in CASE_TYPES:
            return f"type {self.corrected_type!r:.40}: give one of {', '.join(CASE_TYPES)}"
        if not 0 < len(self.reviewer) <= 100:
            return "--reviewer: give the inspector's name or id (at most 100 characters)"
        return ""


def review_case(store: Store, review: Review) -> int:
    """Record `review` in its own transaction, serialised per case: what the review page and
    `edge-agent platform-review` both call. Its id; ValueError naming what to fix."""
    with store.transaction(f"review:{review.platform_case_id}") as tx:
        return record_review(tx.run, review)


def record_review(run, review: Review) -> int:
    """Store one review; its id. ValueError naming what to fix when the review or its case is wrong."""
    if problem := review.problem():
        raise ValueError(problem)
    row = run("SELECT type FROM platform_cases WHERE id = ?", (review.platform_case_id,)).fetchone()
    if row is None:
        raise ValueError(f"platform case {review.platform_case_id} does not exist: see `edge-agent platform-export`")
    if review.corrected_type == row[0]:
        raise ValueError(f"platform case {review.platform_case_id} is already a {row[0]}: confirm it instead")
    return run(
        "INSERT INTO reviews (platform_case_id, decision, reason, corrected_type, reviewer) VALUES (?, ?, ?, ?, ?) "
        "RETURNING id",
        (review.platform_case_id, review.decision, review.reason, review.corrected_type, review.reviewer),
    ).fetchone()[0]


def latest_reviews(run) -> list[tuple[int, str, str, str | None, str | None]]:
    """(platform case, its type, the latest decision, reason, corrected type) of every reviewed case."""
    return [
        tuple(row)
        for row in run(
            "SELECT DISTINCT ON (r.platform_case_id) r.platform_case_id, p.type, r.decision, r.reason, "
            "r.corrected_type FROM reviews r JOIN platform_cases p ON p.id = r.platform_case_id "
            "ORDER BY r.platform_case_id, r.id DESC",
            (),
        ).fetchall()
    ]
