-- An inspector's decisions on platform cases (the review page, or `edge-agent platform-review`): confirm,
-- reject with a reason, or correct the type. Every decision is kept; the latest one of a case counts
-- (cityplatform/reviews.py), and it is what `edge-agent platform-training-set` turns into training data.
CREATE TABLE reviews (
    id BIGSERIAL PRIMARY KEY,
    platform_case_id BIGINT NOT NULL REFERENCES platform_cases (id),
    decision TEXT NOT NULL CHECK (decision IN ('confirm', 'reject', 'correct')),
    reason TEXT CHECK (reason IN ('not_a_problem', 'duplicate', 'wrong_type', 'outside_rules')),
    corrected_type TEXT,
    reviewer TEXT NOT NULL,
    reviewed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((decision = 'reject') = (reason IS NOT NULL)),
    CHECK ((decision = 'correct') = (corrected_type IS NOT NULL))
);
CREATE INDEX reviews_case ON reviews (platform_case_id, id);
