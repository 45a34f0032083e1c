-- Retention (runs_prune, jobs_purge): the indexes its reads need (runs_time already serves
-- the runs; nothing is added on runs, so claims and completions pay nothing for retention).
CREATE INDEX jobs_retention ON jobs (json_extract(policy, '$.retention'))
    WHERE json_extract(policy, '$.retention') IS NOT NULL;
CREATE INDEX jobs_deleted ON jobs (deleted_at) WHERE deleted_at IS NOT NULL;
