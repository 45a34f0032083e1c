-- Every statement the SQLite store runs. Parameters are named (:name) and always bound.

-- name: fencing_next
UPDATE meta SET value = value + :count WHERE key = 'fencing' RETURNING value;

-- name: job_insert
INSERT INTO jobs (id, owner, name, schedule, action, payload, policy, paused, next_fire_at,
                  shard, version, created_at, updated_at)
VALUES (:id, :owner, :name, :schedule, :action, :payload, :policy, :paused, :next_fire_at,
        :shard, :version, :created_at, :updated_at);

-- name: job_insert_or_skip
-- Bulk creation: a taken name is skipped, and the caller, counting, refuses the whole batch.
INSERT OR IGNORE INTO jobs (id, owner, name, schedule, action, payload, policy, paused,
                            next_fire_at, shard, version, created_at, updated_at)
VALUES (:id, :owner, :name, :schedule, :action, :payload, :policy, :paused, :next_fire_at,
        :shard, :version, :created_at, :updated_at);

-- name: jobs_by_ids
SELECT owner, name FROM jobs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: job_replace
UPDATE jobs
SET schedule = :schedule, action = :action, payload = :payload, policy = :policy,
    paused = :paused, next_fire_at = :next_fire_at, version = version + 1, updated_at = :now
WHERE id = :id;

-- name: job_by_id
SELECT * FROM jobs
WHERE id = :id AND deleted_at IS NULL AND (:owner IS NULL OR owner = :owner);

-- name: job_by_name
SELECT * FROM jobs WHERE owner = :owner AND name = :name AND deleted_at IS NULL;

-- name: job_list
SELECT * FROM jobs
WHERE deleted_at IS NULL AND (:owner IS NULL OR owner = :owner)
  AND (:after_name IS NULL OR name > :after_name)
ORDER BY name, id
LIMIT :limit;

-- Job searches page on (name, id) along jobs_list (one owner) or jobs_list_all (admins);
-- the filters are checked on the rows the index walk meets. ``last_outcome`` is the state
-- of the job's newest finished run, one probe of runs_job per job.
-- name: job_search_owner
SELECT j.* FROM jobs j
WHERE j.owner = :owner AND j.deleted_at IS NULL
  AND (:after_name IS NULL OR j.name > :after_name
       OR (j.name = :after_name AND j.id > :after_id))
  AND (:name_contains IS NULL OR instr(lower(j.name), lower(:name_contains)) > 0)
  AND (:paused IS NULL OR j.paused = :paused)
  AND (:queue IS NULL OR json_extract(j.policy, '$.queue') = :queue)
  AND (:action_kind IS NULL OR json_extract(j.action, '$.kind') = :action_kind)
  AND (:last_outcome IS NULL OR (
        SELECT r.state FROM runs r WHERE r.job_id = j.id AND r.finished_at IS NOT NULL
        ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1) = :last_outcome)
ORDER BY j.owner, j.name, j.id
LIMIT :limit;

-- name: job_search_all
SELECT j.* FROM jobs j
WHERE j.deleted_at IS NULL
  AND (:after_name IS NULL OR j.name > :after_name
       OR (j.name = :after_name AND j.id > :after_id))
  AND (:name_contains IS NULL OR instr(lower(j.name), lower(:name_contains)) > 0)
  AND (:paused IS NULL OR j.paused = :paused)
  AND (:queue IS NULL OR json_extract(j.policy, '$.queue') = :queue)
  AND (:action_kind IS NULL OR json_extract(j.action, '$.kind') = :action_kind)
  AND (:last_outcome IS NULL OR (
        SELECT r.state FROM runs r WHERE r.job_id = j.id AND r.finished_at IS NOT NULL
        ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1) = :last_outcome)
ORDER BY j.name, j.id
LIMIT :limit;

-- name: job_count_owner
-- How many live jobs match, counted up to the cap (a count never scans without end).
SELECT count(*) AS n FROM (
SELECT 1 FROM jobs j
WHERE j.owner = :owner AND j.deleted_at IS NULL
  AND (:name_contains IS NULL OR instr(lower(j.name), lower(:name_contains)) > 0)
  AND (:paused IS NULL OR j.paused = :paused)
  AND (:queue IS NULL OR json_extract(j.policy, '$.queue') = :queue)
  AND (:action_kind IS NULL OR json_extract(j.action, '$.kind') = :action_kind)
  AND (:last_outcome IS NULL OR (
        SELECT r.state FROM runs r WHERE r.job_id = j.id AND r.finished_at IS NOT NULL
        ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1) = :last_outcome)
LIMIT :cap) AS matched;

-- name: job_count_all
-- How many live jobs match, counted up to the cap (a count never scans without end).
SELECT count(*) AS n FROM (
SELECT 1 FROM jobs j
WHERE j.deleted_at IS NULL
  AND (:name_contains IS NULL OR instr(lower(j.name), lower(:name_contains)) > 0)
  AND (:paused IS NULL OR j.paused = :paused)
  AND (:queue IS NULL OR json_extract(j.policy, '$.queue') = :queue)
  AND (:action_kind IS NULL OR json_extract(j.action, '$.kind') = :action_kind)
  AND (:last_outcome IS NULL OR (
        SELECT r.state FROM runs r WHERE r.job_id = j.id AND r.finished_at IS NOT NULL
        ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1) = :last_outcome)
LIMIT :cap) AS matched;

-- name: job_set_paused
UPDATE jobs
SET paused = :paused, next_fire_at = :next_fire_at, version = version + 1, updated_at = :now
WHERE id = :id AND deleted_at IS NULL AND (:owner IS NULL OR owner = :owner);

-- name: job_soft_delete
UPDATE jobs
SET deleted_at = :now, next_fire_at = NULL, version = version + 1, updated_at = :now
WHERE id = :id AND deleted_at IS NULL AND (:owner IS NULL OR owner = :owner)
RETURNING id, owner, name;

-- name: runs_cancel_pending_of_job
-- Fires materialized from a schedule that no longer applies (replaced, paused, deleted).
UPDATE runs SET state = 'cancelled', finished_at = :now
WHERE job_id = :job_id AND state = 'pending' AND due_at > :due_after;

-- name: runs_cancel_waiting_of_job
UPDATE runs SET state = 'cancelled', finished_at = :now
WHERE job_id = :job_id AND state IN ('pending', 'queued', 'retrying');

-- name: run_insert
INSERT INTO runs (id, job_id, owner, scheduled_for, due_at, state, queue, priority, overlap,
                  fires, first_fire, manual, finished_at, created_at)
VALUES (:id, :job_id, :owner, :scheduled_for, :due_at, :state, :queue, :priority, :overlap,
        :fires, :first_fire, :manual, :finished_at, :created_at)
ON CONFLICT (job_id, scheduled_for) WHERE manual = 0 DO NOTHING;

-- name: lease_get
SELECT * FROM leases WHERE name = :name;

-- name: lease_upsert
INSERT INTO leases (name, holder, token, expires_at, acquired_at)
VALUES (:name, :holder, :token, :expires_at, :acquired_at)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = excluded.token,
                                 expires_at = excluded.expires_at,
                                 acquired_at = excluded.acquired_at;

-- name: lease_renew
UPDATE leases SET expires_at = :expires_at
WHERE name = :name AND token = :token AND holder = :holder AND expires_at > :now
RETURNING name, holder, token, expires_at, acquired_at;

-- name: lease_release
DELETE FROM leases WHERE name = :name AND token = :token;

-- name: lease_list
SELECT * FROM leases WHERE name LIKE :prefix || '%' ORDER BY name;

-- Cluster: takeovers, members, queue depths ------------------------------------------------

-- name: takeover_insert
INSERT INTO lease_takeovers (at, expired_at, old_token, new_token, name, old_holder, new_holder)
VALUES (:at, :expired_at, :old_token, :new_token, :name, :old_holder, :new_holder);

-- name: takeovers_forget
DELETE FROM lease_takeovers WHERE at < :before;

-- name: takeover_list
SELECT * FROM lease_takeovers ORDER BY at DESC, name LIMIT :limit;

-- name: member_upsert
INSERT INTO members (id, heartbeat_at, started_at, pid, host, roles, version)
VALUES (:id, :now, :started_at, :pid, :host, :roles, :version)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, pid = excluded.pid,
                               host = excluded.host, roles = excluded.roles,
                               version = excluded.version;

-- name: members_forget
DELETE FROM members WHERE heartbeat_at < :before;

-- name: member_delete
DELETE FROM members WHERE id = :id;

-- name: member_list
SELECT * FROM members ORDER BY id;

-- name: queue_depths
-- Reads runs_claim (queue, priority, due_at) only: it holds every waiting run.
SELECT queue, count(*) AS waiting, sum(due_at <= :now) AS due,
       min(CASE WHEN due_at <= :now THEN due_at END) AS oldest_due_at
FROM runs WHERE state IN ('pending', 'queued', 'retrying')
GROUP BY queue ORDER BY queue;

-- name: lease_valid
SELECT 1 FROM leases WHERE name = :name AND token = :token AND expires_at > :now;

-- name: jobs_due
SELECT * FROM jobs
WHERE next_fire_at <= :horizon AND paused = 0 AND deleted_at IS NULL
  AND next_fire_at IS NOT NULL AND shard IN (SELECT value FROM json_each(:shards))
ORDER BY next_fire_at
LIMIT :limit;

-- name: job_advance
UPDATE jobs SET next_fire_at = :next_fire_at
WHERE id = :id AND version = :version AND next_fire_at = :old_next_fire_at
  AND paused = 0 AND deleted_at IS NULL;

-- name: claim_candidates
SELECT id, job_id, overlap, scheduled_for FROM runs
WHERE queue = :queue AND state IN ('pending', 'queued', 'retrying')
  AND due_at <= :horizon AND (due_at <= :now OR overlap = 'allow')
ORDER BY priority DESC, due_at
LIMIT :limit;

-- name: live_runs_of_job
SELECT id FROM runs WHERE job_id = :job_id AND state IN ('running', 'retrying');

-- name: run_start
UPDATE runs
SET state = 'running', attempt = attempt + 1, token = :token, worker_id = :worker_id,
    lease_expires_at = :lease_expires_at, started_at = max(due_at, :now), error = NULL
WHERE id = :id;

-- name: run_skip
UPDATE runs SET state = 'skipped', finished_at = :now, error = :reason WHERE id = :id;

-- name: run_cancel_running
-- The attempt of a running run that a user (or overlap=replace) cancels is recorded here,
-- since its worker's own write will be refused.
INSERT INTO attempts (run_id, number, token, worker_id, started_at, finished_at, outcome, error)
SELECT id, attempt, token, worker_id, started_at, :now, 'cancelled', :reason
FROM runs WHERE id = :id AND state = 'running';

-- name: run_set_cancelled
UPDATE runs SET state = 'cancelled', finished_at = :now, lease_expires_at = NULL, error = :reason
WHERE id = :id AND state IN ('pending', 'queued', 'retrying', 'running');

-- name: claimed_details
SELECT r.id, r.job_id, r.owner, r.queue, r.scheduled_for, r.attempt, r.failures, r.token,
       r.started_at, r.lease_expires_at, j.name AS job_name, j.action,
       COALESCE(r.payload, j.payload) AS payload, j.policy
FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE r.id = :id;

-- name: run_heartbeat
UPDATE runs SET lease_expires_at = :lease_expires_at
WHERE id = :id AND token = :token AND worker_id = :worker_id AND state = 'running'
RETURNING id;

-- name: run_finish
UPDATE runs
SET state = :state, failures = :failures, due_at = COALESCE(:due_at, due_at),
    finished_at = :finished_at, lease_expires_at = NULL, error = :error, output = :output,
    started_at = :started_at
WHERE id = :id AND token = :token AND state = 'running'
  AND (:expired_before IS NULL OR lease_expires_at <= :expired_before)
RETURNING id;

-- name: attempt_insert
INSERT INTO attempts (run_id, number, token, worker_id, started_at, finished_at, outcome,
                      error, output)
VALUES (:run_id, :number, :token, :worker_id, :started_at, :finished_at, :outcome,
        :error, :output);

-- name: runs_expired
SELECT r.id, r.token, r.attempt, r.failures, r.worker_id, r.started_at, j.policy,
       r.job_id, j.name AS job_name, r.queue
FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE r.state = 'running' AND r.lease_expires_at <= :now
ORDER BY r.lease_expires_at
LIMIT :limit;

-- name: runs_next_due
SELECT min(due_at) AS due FROM runs
WHERE queue = :queue AND state IN ('pending', 'queued', 'retrying');

-- name: run_set_payload
-- A manual run's own payload (JSON text).
UPDATE runs SET payload = :payload WHERE id = :id;

-- name: run_by_id
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE r.id = :id AND (:owner IS NULL OR r.owner = :owner);

-- name: run_list
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE (:owner IS NULL OR r.owner = :owner)
  AND (:job_id IS NULL OR r.job_id = :job_id)
  AND (:states IS NULL OR r.state IN (SELECT value FROM json_each(:states)))
  AND (:before_at IS NULL OR r.scheduled_for < :before_at
       OR (r.scheduled_for = :before_at AND r.id < :before_id))
ORDER BY r.scheduled_for DESC, r.id DESC
LIMIT :limit;

-- Run searches, newest first by (scheduled_for, id): along runs_job (one job), runs_owner
-- (one owner) or runs_time (admins).
-- name: run_search_job
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE r.job_id = :job_id AND (:owner IS NULL OR r.owner = :owner)
  AND (:states IS NULL OR r.state IN (SELECT value FROM json_each(:states)))
  AND (:since IS NULL OR r.scheduled_for >= :since)
  AND (:until IS NULL OR r.scheduled_for < :until)
  AND (:worker IS NULL OR substr(r.worker_id, 1, length(:worker)) = :worker)
  AND (:before_at IS NULL OR r.scheduled_for < :before_at
       OR (r.scheduled_for = :before_at AND r.id < :before_id))
ORDER BY r.scheduled_for DESC, r.id DESC
LIMIT :limit;

-- name: run_search_owner
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE r.owner = :owner
  AND (:states IS NULL OR r.state IN (SELECT value FROM json_each(:states)))
  AND (:since IS NULL OR r.scheduled_for >= :since)
  AND (:until IS NULL OR r.scheduled_for < :until)
  AND (:worker IS NULL OR substr(r.worker_id, 1, length(:worker)) = :worker)
  AND (:before_at IS NULL OR r.scheduled_for < :before_at
       OR (r.scheduled_for = :before_at AND r.id < :before_id))
ORDER BY r.scheduled_for DESC, r.id DESC
LIMIT :limit;

-- name: run_search_all
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE 1 = 1
  AND (:states IS NULL OR r.state IN (SELECT value FROM json_each(:states)))
  AND (:since IS NULL OR r.scheduled_for >= :since)
  AND (:until IS NULL OR r.scheduled_for < :until)
  AND (:worker IS NULL OR substr(r.worker_id, 1, length(:worker)) = :worker)
  AND (:before_at IS NULL OR r.scheduled_for < :before_at
       OR (r.scheduled_for = :before_at AND r.id < :before_id))
ORDER BY r.scheduled_for DESC, r.id DESC
LIMIT :limit;

-- name: attempt_list
SELECT a.* FROM attempts a JOIN runs r ON r.id = a.run_id
WHERE a.run_id = :run_id AND (:owner IS NULL OR r.owner = :owner)
ORDER BY a.number;

-- name: run_requeue
UPDATE runs
SET state = 'queued', failures = 0, due_at = :now, finished_at = NULL, lease_expires_at = NULL
WHERE id = :id AND state = 'dead';

-- name: run_counts
-- Live and dead runs only, along their partial indexes: never a scan of the finished runs.
SELECT state, count(*) AS n FROM runs
WHERE state IN ('pending', 'queued', 'retrying') AND (:owner IS NULL OR owner = :owner)
GROUP BY state
UNION ALL
SELECT 'running', count(*) FROM runs
WHERE state = 'running' AND (:owner IS NULL OR owner = :owner)
UNION ALL
SELECT 'dead', count(*) FROM runs WHERE state = 'dead' AND (:owner IS NULL OR owner = :owner);

-- Retention ---------------------------------------------------------------------------------

-- name: retention_shortest_job_age
SELECT min(json_extract(policy, '$.retention')) AS shortest FROM jobs
WHERE json_extract(policy, '$.retention') IS NOT NULL;

-- name: runs_prune_pick
-- One retention batch: finished runs past their age, along runs_time from the pass's cursor.
SELECT r.id, r.scheduled_for
FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE (r.scheduled_for, r.id) > (:after_at, :after_id)
  AND r.scheduled_for < :horizon
  AND r.state IN ('succeeded', 'skipped', 'missed', 'cancelled')
  AND r.finished_at < CASE
      WHEN json_extract(j.policy, '$.retention') IS NOT NULL
          THEN :now - CAST(json_extract(j.policy, '$.retention') * 1000000 AS INTEGER)
      WHEN r.state = 'succeeded' THEN :succeeded
      WHEN r.state = 'skipped' THEN :skipped
      WHEN r.state = 'missed' THEN :missed
      ELSE :cancelled END
ORDER BY r.scheduled_for, r.id
LIMIT :limit;

-- name: jobs_purge_pick
SELECT j.id FROM jobs j
WHERE j.deleted_at IS NOT NULL AND j.deleted_at < :before
  AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = j.id)
ORDER BY j.deleted_at
LIMIT :limit;

-- Users, API keys, secrets -------------------------------------------------------------------

-- name: user_insert
INSERT INTO users (id, name, password_hash, role, owner, created_at, updated_at, disabled_at)
VALUES (:id, :name, :password_hash, :role, :owner, :created_at, :updated_at, :disabled_at)
ON CONFLICT (name) DO NOTHING;

-- name: user_any
SELECT 1 FROM users LIMIT 1;

-- name: user_by_id
SELECT * FROM users WHERE id = :id;

-- name: user_by_name
SELECT * FROM users WHERE name = :name;

-- name: user_list
SELECT * FROM users WHERE (:after_name IS NULL OR name > :after_name) ORDER BY name LIMIT :limit;

-- name: user_set_password
UPDATE users
SET password_hash = :password_hash, updated_at = :now,
    session_epoch = session_epoch + :end_sessions
WHERE id = :id
RETURNING *;

-- name: user_set_role
UPDATE users SET role = :role, updated_at = :now WHERE id = :id RETURNING *;

-- name: user_set_disabled
UPDATE users
SET disabled_at = CASE WHEN :disabled THEN COALESCE(disabled_at, :now) END, updated_at = :now,
    session_epoch = session_epoch + CASE WHEN :disabled THEN 1 ELSE 0 END
WHERE id = :id
RETURNING *;

-- name: apikey_insert
INSERT INTO api_keys (id, prefix, secret_hash, user_id, name, created_at, expires_at,
                      revoked_at, last_used_at)
VALUES (:id, :prefix, :secret_hash, :user_id, :name, :created_at, :expires_at, :revoked_at,
        :last_used_at)
ON CONFLICT (prefix) DO NOTHING;

-- name: apikey_by_prefix
SELECT * FROM api_keys WHERE prefix = :prefix;

-- name: apikey_by_id
SELECT k.*, u.name AS user_name FROM api_keys k JOIN users u ON u.id = k.user_id
WHERE k.id = :id AND (:user_id IS NULL OR k.user_id = :user_id);

-- name: apikey_list
SELECT * FROM api_keys WHERE (:user_id IS NULL OR user_id = :user_id)
ORDER BY created_at, id LIMIT :limit;

-- name: apikey_revoke
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, :now)
WHERE id = :id AND (:user_id IS NULL OR user_id = :user_id)
RETURNING *;

-- name: apikey_touch
UPDATE api_keys SET last_used_at = :now
WHERE id = :id AND (last_used_at IS NULL OR last_used_at <= :stale_before);

-- name: secret_insert
INSERT INTO server_secrets (name, value, created_at) VALUES (:name, :value, :now)
ON CONFLICT (name) DO NOTHING;

-- name: secret_get
SELECT value FROM server_secrets WHERE name = :name;

-- name: secret_replace
INSERT INTO server_secrets (name, value, created_at) VALUES (:name, :value, :now)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at;

-- Audit and job versions ---------------------------------------------------------------------

-- name: audit_insert
INSERT INTO audit_log (at, actor, owner, action, target_kind, target_id, details)
VALUES (:at, :actor, :owner, :action, :target_kind, :target_id, :details);

-- name: audit_list_all
-- Newest first by (at, id); the bounds are always given (the caller fills the open ends),
-- so each query is one range scan of its index.
SELECT * FROM audit_log INDEXED BY audit_at
WHERE (:target_kind IS NULL OR target_kind = :target_kind)
  AND at >= :since AND at < :until AND (at, id) < (:before_at, :before_id)
ORDER BY at DESC, id DESC
LIMIT :limit;

-- name: audit_list_owner
SELECT * FROM audit_log INDEXED BY audit_owner
WHERE owner = :owner AND (:target_kind IS NULL OR target_kind = :target_kind)
  AND at >= :since AND at < :until AND (at, id) < (:before_at, :before_id)
ORDER BY at DESC, id DESC
LIMIT :limit;

-- name: audit_list_target
SELECT * FROM audit_log INDEXED BY audit_target
WHERE target_kind = :target_kind AND target_id = :target_id
  AND (:owner IS NULL OR owner = :owner)
  AND at >= :since AND at < :until AND (at, id) < (:before_at, :before_id)
ORDER BY at DESC, id DESC
LIMIT :limit;

-- name: job_snapshot
-- Keep a job's current definition before it changes (the same transaction changes it).
INSERT INTO job_versions (job_id, version, definition, changed_at, changed_by)
SELECT id, version,
       json_object('name', name, 'schedule', json(schedule), 'action', json(action),
                   'payload', json(payload), 'policy', json(policy), 'paused', paused),
       :now, :actor
FROM jobs WHERE id = :id;

-- name: job_update
UPDATE jobs
SET name = :name, schedule = :schedule, action = :action, payload = :payload,
    policy = :policy, next_fire_at = :next_fire_at, version = version + 1, updated_at = :now
WHERE id = :id;

-- name: job_versions_list
SELECT v.* FROM job_versions v JOIN jobs j ON j.id = v.job_id
WHERE v.job_id = :job_id AND (:owner IS NULL OR j.owner = :owner)
  AND (:before_version IS NULL OR v.version < :before_version)
ORDER BY v.version DESC
LIMIT :limit;
