-- PostGIS must be there (a superuser creates it once: CREATE EXTENSION postgis); a no-op when it is.
CREATE EXTENSION IF NOT EXISTS postgis;
-- One platform case per problem across agents: each agent case is a report of exactly one platform
-- case; the city's grid layer gives each platform case its grid cell, street office and district.
CREATE TABLE grid_cells (
    code TEXT PRIMARY KEY,
    name TEXT,
    street TEXT,
    district TEXT,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX grid_cells_geom ON grid_cells USING GIST (geom);
CREATE TABLE platform_cases (
    id BIGSERIAL PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',  -- open; the review and verification steps add more
    position geography(Point, 4326),  -- of its most certain report; NULL: no report had a position
    uncertainty_m DOUBLE PRECISION,  -- of that position, in metres
    opened_at TIMESTAMPTZ NOT NULL,
    last_report_at TIMESTAMPTZ NOT NULL,
    dispatch TEXT NOT NULL,  -- 'grid': the fields below come from the grid layer; 'manual': a person must
    dispatch_reason TEXT,    -- ... and why
    grid_code TEXT,
    grid_name TEXT,
    street TEXT,
    district TEXT,
    code_standard TEXT,
    code TEXT,
    code_name TEXT,
    due_at TIMESTAMPTZ
);
CREATE INDEX platform_cases_open ON platform_cases USING GIST (position) WHERE status = 'open';
CREATE INDEX platform_cases_street ON platform_cases (street);
CREATE TABLE reports (
    case_id TEXT PRIMARY KEY,  -- the agent's case (all its revisions are this one report)
    platform_case_id BIGINT NOT NULL REFERENCES platform_cases (id),
    agent_id TEXT NOT NULL,
    revision INTEGER NOT NULL,  -- the latest stored
    source_kind TEXT NOT NULL,
    position geography(Point, 4326),
    uncertainty_m DOUBLE PRECISION,
    method TEXT,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL
);
CREATE INDEX reports_platform_case ON reports (platform_case_id);
