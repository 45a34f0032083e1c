-- Manual runs get their own key space, and listings get the indexes they page on.
--
-- A manual trigger used to take the unique fire key (job_id, scheduled_for) at "now": a
-- trigger at the very instant of a scheduled fire swallowed that fire (the scheduler's insert
-- found the key taken and did nothing). The key now covers scheduled fires only; a manual run
-- is identified by its id alone.

ALTER TABLE runs DROP CONSTRAINT runs_fire;
-- Guarantee 1: a scheduled fire materializes as exactly one run, whatever the schedulers do.
CREATE UNIQUE INDEX runs_fire ON runs (job_id, scheduled_for) WHERE NOT manual;
-- A job's runs (manual ones included), newest first (scanned backwards): per-job listing
-- and "last outcome".
CREATE INDEX runs_job ON runs (job_id, scheduled_for, id);
-- Every owner's runs, newest first (admins).
CREATE INDEX runs_time ON runs (scheduled_for, id);
-- Dead runs, for requeue by filter; only dead rows enter it.
CREATE INDEX runs_dead ON runs (owner, scheduled_for, id) WHERE state = 'dead';

-- Job listings page on (name, id): per owner, and across owners for admins.
CREATE INDEX jobs_list ON jobs (owner, name, id) WHERE deleted_at IS NULL;
CREATE INDEX jobs_list_all ON jobs (name, id) WHERE deleted_at IS NULL;
