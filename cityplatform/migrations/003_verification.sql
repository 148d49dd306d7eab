-- Verification by the next pass (问题核查): each agent's `cleared` observations (its case's place seen
-- clear) exactly once, and each platform case's latest verification with the evidence that gave it.
CREATE TABLE cleared (
    id TEXT PRIMARY KEY,  -- the observation's id (its evidence files are stored under it, revision 1)
    agent_id TEXT NOT NULL,
    case_id TEXT NOT NULL,  -- the agent's case (a report) that was not seen again
    case_revision INTEGER NOT NULL,
    clear_until DOUBLE PRECISION NOT NULL,  -- the snapshot's time, seconds since the epoch
    received_at DOUBLE PRECISION NOT NULL,
    json TEXT NOT NULL  -- the signed bytes as received
);
CREATE INDEX cleared_case ON cleared (case_id);
-- verification: NULL (not passed since), 'fixed' (a cleared observation; the case's status becomes
-- 'verified' and no new report joins it) or 'still there' (a later pass saw it again; status 'open').
ALTER TABLE platform_cases
    ADD COLUMN verification TEXT,
    ADD COLUMN verified_at TIMESTAMPTZ,
    ADD COLUMN verified_agent TEXT,
    ADD COLUMN verified_by TEXT,  -- the cleared observation's id, or the agent case seen again
    ADD COLUMN verified_revision INTEGER;  -- the revision of that observation (1) or case
