-- The PostgreSQL schema. Unqualified names land in the store's schema (the connection's
-- search_path names only it). Same tables and meanings as the SQLite store, in native types.
--
-- Columns are ordered widest-alignment first (uuid, timestamptz, bigint, then int, smallint,
-- boolean, then variable-length) so rows carry no alignment padding: bytes per stored row
-- matter at millions of jobs and runs. Text keys and sort columns use the "C" collation:
-- byte order like SQLite (same paging order in both stores), and cheaper comparisons.

-- Guarantee 3's fencing tokens: every granted lease and every claimed run takes nextval.
-- CACHE 1 (the default) keeps values increasing in the order sessions draw them.
CREATE SEQUENCE fencing AS bigint;

CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    next_fire_at timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    deleted_at   timestamptz,
    version      integer NOT NULL DEFAULT 1,
    shard        smallint NOT NULL,
    paused       boolean NOT NULL DEFAULT false,
    owner        text COLLATE "C" NOT NULL,
    name         text COLLATE "C" NOT NULL,
    schedule     jsonb NOT NULL,
    action       jsonb NOT NULL,
    policy       jsonb NOT NULL,
    payload      jsonb
);
-- A name is unique among an owner's live jobs; a deleted job frees its name.
CREATE UNIQUE INDEX jobs_owner_name ON jobs (owner, name) WHERE deleted_at IS NULL;
-- What schedulers scan: only jobs that can fire.
CREATE INDEX jobs_due ON jobs (next_fire_at)
    WHERE NOT paused AND deleted_at IS NULL AND next_fire_at IS NOT NULL;

CREATE TABLE runs (
    id               uuid PRIMARY KEY,
    job_id           uuid NOT NULL REFERENCES jobs (id),
    scheduled_for    timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    first_fire       timestamptz,
    lease_expires_at timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    token            bigint,
    attempt          integer NOT NULL DEFAULT 0,
    failures         integer NOT NULL DEFAULT 0,
    fires            integer NOT NULL DEFAULT 1,
    priority         smallint NOT NULL DEFAULT 0,
    manual           boolean NOT NULL DEFAULT false,
    state            text COLLATE "C" NOT NULL CHECK (state IN (
                         'pending', 'queued', 'running', 'retrying', 'succeeded', 'dead',
                         'skipped', 'missed', 'cancelled')),
    overlap          text COLLATE "C" NOT NULL DEFAULT 'allow'
                         CHECK (overlap IN ('allow', 'forbid', 'replace')),
    queue            text COLLATE "C" NOT NULL,
    owner            text COLLATE "C" NOT NULL,
    worker_id        text,
    error            text,
    output           text,
    -- Guarantee 1: a fire materializes as exactly one run, whatever the schedulers do.
    CONSTRAINT runs_fire UNIQUE (job_id, scheduled_for)
) WITH (
    -- Claim and completion change ``state``, which the partial indexes below filter on, so
    -- those updates cannot be HOT; free space still lets the new row version stay on its
    -- page (a claimed batch dirties the pages it already had, not new ones at the end).
    fillfactor = 90,
    -- A queue table churns: vacuum early so dead versions do not pile up in the claim index.
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);
-- The claim query's index: only waiting runs, in claim order. The state list is written
-- exactly as in the claim query so the planner can prove the query implies the predicate.
CREATE INDEX runs_claim ON runs (queue, priority DESC, due_at)
    WHERE state IN ('pending', 'queued', 'retrying');
-- The earliest due time of a queue in one probe (the claim index is ordered by priority
-- first). Only waiting row versions enter it: claims and completions do not pay for it.
CREATE INDEX runs_due ON runs (queue, due_at)
    WHERE state IN ('pending', 'queued', 'retrying');
-- The reaper's index: leases of running runs, earliest expiry first.
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE state = 'running';
-- Live runs of a job, for overlap policies.
CREATE INDEX runs_live ON runs (job_id) WHERE state IN ('running', 'retrying');
-- An owner's runs, newest first (scanned backwards), with the id as the paging tie-break.
CREATE INDEX runs_owner ON runs (owner, scheduled_for, id);

CREATE TABLE attempts (
    run_id      uuid NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    token       bigint NOT NULL,
    number      integer NOT NULL,
    outcome     text COLLATE "C" NOT NULL CHECK (outcome IN (
                    'succeeded', 'failed', 'timed_out', 'released', 'lost', 'cancelled')),
    worker_id   text NOT NULL,
    error       text,
    output      text,
    PRIMARY KEY (run_id, number)
);

CREATE TABLE leases (
    name       text COLLATE "C" PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    token      bigint NOT NULL,
    holder     text NOT NULL
) WITH (fillfactor = 50);
