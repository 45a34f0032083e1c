-- Retention (runs_prune, jobs_purge): the indexes its reads need. Runs are visited along
-- runs_time (scheduled_for, id), which exists already; no index is added on runs, so the
-- claim and completion path pays nothing for retention.
-- The shortest per-job retention, one probe (bounds how far a pass reads).
CREATE INDEX jobs_retention ON jobs (((policy->>'retention')::float8)) WHERE policy ? 'retention';
-- Deleted jobs waiting to be purged once their runs are gone.
CREATE INDEX jobs_deleted ON jobs (deleted_at) WHERE deleted_at IS NOT NULL;
