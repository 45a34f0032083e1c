-- Manual runs get their own key space, and listings get the indexes they page on.
--
-- A manual trigger used to take the unique fire key (job_id, scheduled_for) at "now": a
-- trigger at the very instant of a scheduled fire swallowed that fire (the scheduler's insert
-- found the key taken and did nothing). The key now covers scheduled fires only; a manual run
-- is identified by its id alone. SQLite cannot drop a table constraint, so runs is rebuilt.

CREATE TABLE runs_new (
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
    created_at       INTEGER NOT NULL
);
INSERT INTO runs_new (id, job_id, owner, scheduled_for, due_at, state, queue, priority, overlap,
                      attempt, failures, fires, first_fire, manual, token, worker_id,
                      lease_expires_at, started_at, finished_at, error, output, created_at)
SELECT id, job_id, owner, scheduled_for, due_at, state, queue, priority, overlap, attempt,
       failures, fires, first_fire, manual, token, worker_id, lease_expires_at, started_at,
       finished_at, error, output, created_at
FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;

-- Guarantee 1: a scheduled fire materializes as exactly one run, whatever the schedulers do.
CREATE UNIQUE INDEX runs_fire ON runs (job_id, scheduled_for) WHERE manual = 0;
CREATE INDEX runs_claim ON runs (queue, priority DESC, due_at)
    WHERE state IN ('pending', 'queued', 'retrying');
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX runs_live ON runs (job_id) WHERE state IN ('running', 'retrying');
CREATE INDEX runs_owner ON runs (owner, scheduled_for DESC, id DESC);
-- A job's runs (manual ones included), newest first: per-job listing and "last outcome".
CREATE INDEX runs_job ON runs (job_id, scheduled_for DESC, id DESC);
-- Every owner's runs, newest first (admins).
CREATE INDEX runs_time ON runs (scheduled_for DESC, id DESC);
-- Dead runs, for requeue by filter; only dead rows enter it.
CREATE INDEX runs_dead ON runs (owner, scheduled_for DESC, id DESC) WHERE state = 'dead';

-- Job listings page on (name, id): per owner, and across owners for admins.
CREATE INDEX jobs_list ON jobs (owner, name, id) WHERE deleted_at IS NULL;
CREATE INDEX jobs_list_all ON jobs (name, id) WHERE deleted_at IS NULL;
