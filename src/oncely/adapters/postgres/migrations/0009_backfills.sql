-- Backfills: a job's past fires created as runs (oncely.domain.backfill). Each run a backfill
-- created is linked to it, so it can be listed and its runs not yet started cancelled.
CREATE TABLE backfills (
    id           uuid PRIMARY KEY,
    owner        text NOT NULL,
    job_id       uuid NOT NULL REFERENCES jobs (id),
    range_start  timestamptz NOT NULL,
    range_end    timestamptz NOT NULL,
    rate         double precision NOT NULL,
    fires        integer NOT NULL,
    created      integer NOT NULL,
    state        text NOT NULL,
    created_at   timestamptz NOT NULL,
    created_by   text,
    cancelled_at timestamptz,
    cancelled    integer NOT NULL DEFAULT 0
);
CREATE INDEX backfills_job ON backfills (job_id, created_at DESC);

CREATE TABLE backfill_runs (
    backfill_id uuid NOT NULL REFERENCES backfills (id),
    run_id      uuid NOT NULL,
    PRIMARY KEY (backfill_id, run_id)
);
