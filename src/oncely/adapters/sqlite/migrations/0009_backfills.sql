-- Backfills: a job's past fires created as runs (oncely.domain.backfill). Each run a backfill
-- created is linked to it, so it can be listed and its runs not yet started cancelled.
CREATE TABLE backfills (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    job_id       TEXT NOT NULL REFERENCES jobs (id),
    range_start  INTEGER NOT NULL,
    range_end    INTEGER NOT NULL,
    rate         REAL NOT NULL,
    fires        INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    state        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT,
    cancelled_at INTEGER,
    cancelled    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX backfills_job ON backfills (job_id, created_at DESC);

CREATE TABLE backfill_runs (
    backfill_id TEXT NOT NULL REFERENCES backfills (id),
    run_id      TEXT NOT NULL,
    PRIMARY KEY (backfill_id, run_id)
);
