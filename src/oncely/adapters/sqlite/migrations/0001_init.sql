-- Timestamps are integer microseconds since the Unix epoch (UTC): exact and cheap to compare.
-- Ids are UUIDv7 text. JSON columns hold compact JSON text.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- The store-wide fencing sequence: every granted lease takes the next value.
INSERT INTO meta (key, value) VALUES ('fencing', 0);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    name         TEXT NOT NULL,
    schedule     TEXT NOT NULL,
    action       TEXT NOT NULL,
    payload      TEXT,
    policy       TEXT NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0,
    next_fire_at INTEGER,
    shard        INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER
);
CREATE UNIQUE INDEX jobs_owner_name ON jobs (owner, name) WHERE deleted_at IS NULL;
CREATE INDEX jobs_due ON jobs (next_fire_at)
    WHERE paused = 0 AND deleted_at IS NULL AND next_fire_at IS NOT NULL;

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL REFERENCES jobs (id),
    owner            TEXT NOT NULL,
    scheduled_for    INTEGER NOT NULL,
    due_at           INTEGER NOT NULL,
    state            TEXT NOT NULL,
    queue            TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    overlap          TEXT NOT NULL DEFAULT 'allow',
    attempt          INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0,
    fires            INTEGER NOT NULL DEFAULT 1,
    first_fire       INTEGER,
    manual           INTEGER NOT NULL DEFAULT 0,
    token            INTEGER,
    worker_id        TEXT,
    lease_expires_at INTEGER,
    started_at       INTEGER,
    finished_at      INTEGER,
    error            TEXT,
    output           TEXT,
    created_at       INTEGER NOT NULL,
    -- Guarantee 1: a fire materializes as exactly one run, whatever the schedulers do.
    UNIQUE (job_id, scheduled_for)
);
-- The claim query's index: only waiting runs, in claim order.
CREATE INDEX runs_claim ON runs (queue, priority DESC, due_at)
    WHERE state IN ('pending', 'queued', 'retrying');
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX runs_live ON runs (job_id) WHERE state IN ('running', 'retrying');
CREATE INDEX runs_owner ON runs (owner, scheduled_for DESC, id DESC);

CREATE TABLE attempts (
    run_id      TEXT NOT NULL,
    number      INTEGER NOT NULL,
    token       INTEGER NOT NULL,
    worker_id   TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    error       TEXT,
    output      TEXT,
    PRIMARY KEY (run_id, number)
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    token      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
