-- What every receiver stores: each agent's case revisions exactly once, evidence chunks until a file is
-- whole, the files' records, files waiting for their case, and the agents that sent them.
CREATE TABLE cases (
    case_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    json TEXT NOT NULL,  -- the signed bytes as received: the signature covers them
    PRIMARY KEY (case_id, revision)
);
CREATE INDEX cases_received ON cases (received_at);
CREATE INDEX cases_agent ON cases (agent_id, case_id);
CREATE TABLE chunks (
    agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, idx INTEGER, data BYTEA NOT NULL,
    PRIMARY KEY (agent_id, case_id, revision, name, idx)
);
CREATE TABLE evidence (
    agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, sha256 TEXT NOT NULL, bytes BIGINT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (agent_id, case_id, revision, name)
);
CREATE INDEX evidence_sha ON evidence (agent_id, case_id, sha256);
CREATE TABLE waiting (
    agent_id TEXT, case_id TEXT, revision INTEGER, name TEXT, count INTEGER NOT NULL, sha256 TEXT NOT NULL,
    bytes BIGINT NOT NULL, since DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (agent_id, case_id, revision, name)
);
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,  -- the key its last stored case was signed with
    first_case_at DOUBLE PRECISION NOT NULL,
    last_case_at DOUBLE PRECISION NOT NULL
);
