-- Every statement the PostgreSQL store runs. Parameters are named (%(name)s) and always
-- bound; batches travel as arrays and are expanded with unnest, so a batch of any size is
-- one statement. Arrays are sent in binary (%(name)b): for arrays of uuids and timestamps
-- that is several times cheaper to encode than text, where every element is quoted.
-- ``(%(owner)s::text IS NULL OR owner = %(owner)s)`` is per-owner isolation: NULL means any
-- owner.
--
-- Reads of ``payload`` cast it to text: a payload may be a bare JSON string, and only text
-- keeps it apart from JSON that still has to be parsed (the codec parses text).

-- name: schema_exists
SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s) AS present;

-- name: migrate_lock
-- Transaction-scoped: released by the migration's commit or rollback, whatever happens.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- name: migrations_table_exists
SELECT to_regclass('schema_migrations') IS NOT NULL AS present;

-- name: migrations_applied
SELECT version FROM schema_migrations ORDER BY version;

-- name: migration_record
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: setup_checks
SELECT current_setting('autovacuum') = 'on' AS autovacuum,
       current_setting('track_counts') = 'on' AS track_counts,
       coalesce((SELECT o.option_value::boolean
                 FROM pg_class c, pg_options_to_table(c.reloptions) AS o
                 WHERE c.oid = 'runs'::regclass AND o.option_name = 'autovacuum_enabled'),
                true) AS runs_autovacuum;

-- name: db_now
SELECT clock_timestamp() AS now;

-- name: session_reset
-- After a transactional task used a pooled connection. Two statements: run it unprepared.
RESET ALL;
SELECT pg_advisory_unlock_all();

-- name: statement_timeout_local
-- A transactional task's statements are bounded by its job's timeout (milliseconds, text).
SELECT set_config('statement_timeout', %(ms)s, true);

-- name: search_path_restore
SELECT set_config('search_path', %(search_path)s, true);

-- name: notify_due
-- Delivered when the transaction commits (NOTIFY is transactional), so a woken worker
-- finds the runs; notifications with the same payload in one transaction fold into one.
SELECT pg_notify(%(channel)s, queue) FROM unnest(%(queues)b::text[]) AS q (queue);

-- Jobs --------------------------------------------------------------------------------------

-- name: job_insert
INSERT INTO jobs (id, owner, name, schedule, action, payload, policy, paused, next_fire_at,
                  shard, version, created_at, updated_at)
VALUES (%(id)s, %(owner)s, %(name)s, %(schedule)s::jsonb, %(action)s::jsonb,
        %(payload)s::jsonb, %(policy)s::jsonb, %(paused)s, %(next_fire_at)s, %(shard)s,
        %(version)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (owner, name) WHERE deleted_at IS NULL DO NOTHING
RETURNING id, owner, name, schedule, action, payload::text AS payload, policy, paused,
          next_fire_at, shard, version, created_at, updated_at;

-- name: jobs_insert_many
-- Bulk creation (all or none: the caller compares the names returned with those given).
INSERT INTO jobs (id, owner, name, schedule, action, payload, policy, paused, next_fire_at,
                  shard, version, created_at, updated_at)
SELECT j.id, j.owner, j.name, j.schedule::jsonb, j.action::jsonb, j.payload::jsonb,
       j.policy::jsonb, j.paused, j.next_fire_at, j.shard, 1, %(now)s, %(now)s
FROM unnest(%(ids)s::uuid[], %(owners)s::text[], %(names)s::text[], %(schedules)s::text[],
            %(actions)s::text[], %(payloads)s::text[], %(policies)s::text[],
            %(paused)s::boolean[], %(next_fire_ats)s::timestamptz[], %(shards)s::smallint[])
     AS j (id, owner, name, schedule, action, payload, policy, paused, next_fire_at, shard)
ON CONFLICT (owner, name) WHERE deleted_at IS NULL DO NOTHING
RETURNING owner, name;

-- name: job_replace
UPDATE jobs
SET schedule = %(schedule)s::jsonb, action = %(action)s::jsonb, payload = %(payload)s::jsonb,
    policy = %(policy)s::jsonb, paused = %(paused)s, next_fire_at = %(next_fire_at)s,
    version = version + 1, updated_at = %(now)s
WHERE owner = %(owner)s AND name = %(name)s AND deleted_at IS NULL
RETURNING id, owner, name, schedule, action, payload::text AS payload, policy, paused,
          next_fire_at, shard, version, created_at, updated_at;

-- name: job_by_id
SELECT id, owner, name, schedule, action, payload::text AS payload, policy, paused,
       next_fire_at, shard, version, created_at, updated_at
FROM jobs
WHERE id = %(id)s AND deleted_at IS NULL AND (%(owner)s::text IS NULL OR owner = %(owner)s);

-- name: job_by_name
SELECT id, owner, name, schedule, action, payload::text AS payload, policy, paused,
       next_fire_at, shard, version, created_at, updated_at
FROM jobs
WHERE owner = %(owner)s AND name = %(name)s AND deleted_at IS NULL;

-- name: job_list
SELECT id, owner, name, schedule, action, payload::text AS payload, policy, paused,
       next_fire_at, shard, version, created_at, updated_at
FROM jobs
WHERE deleted_at IS NULL AND (%(owner)s::text IS NULL OR owner = %(owner)s)
  AND (%(after_name)s::text IS NULL OR name > %(after_name)s)
ORDER BY name, id
LIMIT %(limit)s;

-- Job searches page on (name, id) along jobs_owner_name (one owner: a name is unique among
-- an owner's live jobs) or jobs_list_all (admins); the filters are checked on the rows the
-- index walk meets. ``last_outcome`` is the state of the job's newest finished run, one probe
-- of runs_fire (job_id, scheduled_for, ...) per job.
-- name: job_search_owner
SELECT j.id, j.owner, j.name, j.schedule, j.action, j.payload::text AS payload, j.policy, j.paused,
       j.next_fire_at, j.shard, j.version, j.created_at, j.updated_at
FROM jobs j
WHERE j.owner = %(owner)s AND j.deleted_at IS NULL
  AND (%(after_name)s::text IS NULL
       OR (j.name, j.id) > (%(after_name)s::text, %(after_id)s::uuid))
  AND (%(name_contains)s::text IS NULL
       OR strpos(lower(j.name), lower(%(name_contains)s::text)) > 0)
  AND (%(paused)s::boolean IS NULL OR j.paused = %(paused)s::boolean)
  AND (%(queue)s::text IS NULL OR j.policy ->> 'queue' = %(queue)s::text)
  AND (%(action_kind)s::text IS NULL OR j.action ->> 'kind' = %(action_kind)s::text)
  AND (%(last_outcome)s::text IS NULL OR (
        SELECT r.state FROM runs r WHERE r.job_id = j.id AND r.finished_at IS NOT NULL
        ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1) = %(last_outcome)s::text)
ORDER BY j.owner, j.name, j.id
LIMIT %(limit)s;

-- name: job_search_all
SELECT j.id, j.owner, j.name, j.schedule, j.action, j.payload::text AS payload, j.policy, j.paused,
       j.next_fire_at, j.shard, j.version, j.created_at, j.updated_at
FROM jobs j
WHERE j.deleted_at IS NULL
  AND (%(after_name)s::text IS NULL
       OR (j.name, j.id) > (%(after_name)s::text, %(after_id)s::uuid))
  AND (%(name_contains)s::text IS NULL
       OR strpos(lower(j.name), lower(%(name_contains)s::text)) > 0)
  AND (%(paused)s::boolean IS NULL OR j.paused = %(paused)s::boolean)
  AND (%(queue)s::text IS NULL OR j.policy ->> 'queue' = %(queue)s::text)
  AND (%(action_kind)s::text IS NULL OR j.action ->> 'kind' = %(action_kind)s::text)
  AND (%(last_outcome)s::text IS NULL OR (
        SELECT r.state FROM runs r WHERE r.job_id = j.id AND r.finished_at IS NOT NULL
        ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1) = %(last_outcome)s::text)
ORDER BY j.name, j.id
LIMIT %(limit)s;

-- name: job_count_owner
-- How many live jobs match, counted up to the cap (a count never scans without end).
SELECT count(*) AS n FROM (
SELECT 1 FROM jobs j
WHERE j.owner = %(owner)s AND j.deleted_at IS NULL
  AND (%(name_contains)s::text IS NULL
       OR strpos(lower(j.name), lower(%(name_contains)s::text)) > 0)
  AND (%(paused)s::boolean IS NULL OR j.paused = %(paused)s::boolean)
  AND (%(queue)s::text IS NULL OR j.policy ->> 'queue' = %(queue)s::text)
  AND (%(action_kind)s::text IS NULL OR j.action ->> 'kind' = %(action_kind)s::text)
  AND (%(last_outcome)s::text IS NULL OR (
        SELECT r.state FROM runs r WHERE r.job_id = j.id AND r.finished_at IS NOT NULL
        ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1) = %(last_outcome)s::text)
LIMIT %(cap)s) AS matched;

-- name: job_count_all
-- How many live jobs match, counted up to the cap (a count never scans without end).
SELECT count(*) AS n FROM (
SELECT 1 FROM jobs j
WHERE j.deleted_at IS NULL
  AND (%(name_contains)s::text IS NULL
       OR strpos(lower(j.name), lower(%(name_contains)s::text)) > 0)
  AND (%(paused)s::boolean IS NULL OR j.paused = %(paused)s::boolean)
  AND (%(queue)s::text IS NULL OR j.policy ->> 'queue' = %(queue)s::text)
  AND (%(action_kind)s::text IS NULL OR j.action ->> 'kind' = %(action_kind)s::text)
  AND (%(last_outcome)s::text IS NULL OR (
        SELECT r.state FROM runs r WHERE r.job_id = j.id AND r.finished_at IS NOT NULL
        ORDER BY r.scheduled_for DESC, r.id DESC LIMIT 1) = %(last_outcome)s::text)
LIMIT %(cap)s) AS matched;

-- name: job_set_paused
UPDATE jobs
SET paused = %(paused)s, next_fire_at = %(next_fire_at)s, version = version + 1,
    updated_at = %(now)s
WHERE id = %(id)s AND deleted_at IS NULL AND (%(owner)s::text IS NULL OR owner = %(owner)s)
RETURNING id, owner, name, schedule, action, payload::text AS payload, policy, paused,
          next_fire_at, shard, version, created_at, updated_at;

-- name: job_soft_delete
UPDATE jobs
SET deleted_at = %(now)s, next_fire_at = NULL, version = version + 1, updated_at = %(now)s
WHERE id = %(id)s AND deleted_at IS NULL AND (%(owner)s::text IS NULL OR owner = %(owner)s)
RETURNING id, owner, name;

-- name: runs_cancel_pending_of_job
-- Fires materialized from a schedule that no longer applies (replaced, paused): those due
-- after ``due_after`` (NULL: all of them).
UPDATE runs SET state = 'cancelled', finished_at = %(now)s
WHERE job_id = %(job_id)s AND state = 'pending'
  AND (%(due_after)s::timestamptz IS NULL OR due_at > %(due_after)s);

-- name: runs_cancel_waiting_of_job
UPDATE runs SET state = 'cancelled', finished_at = %(now)s
WHERE job_id = %(job_id)s AND state IN ('pending', 'queued', 'retrying');

-- name: run_trigger
-- A manual run, due now; queue, priority and overlap are copied from the job's policy so the
-- claim never needs the job row. Nothing is returned for an unknown job. A manual run has its
-- own key space (the unique fire key covers scheduled fires only): it never takes a fire's.
WITH inserted AS (
    INSERT INTO runs (id, job_id, owner, scheduled_for, due_at, state, queue, priority,
                      overlap, manual, created_at, payload)
    SELECT %(id)s, j.id, j.owner, %(now)s, %(now)s, 'queued', j.policy ->> 'queue',
           (j.policy ->> 'priority')::smallint, j.policy ->> 'overlap', true, %(now)s,
           %(payload)s::jsonb
    FROM jobs j
    WHERE j.id = %(job_id)s AND j.deleted_at IS NULL
      AND (%(owner)s::text IS NULL OR j.owner = %(owner)s)
    RETURNING *
)
SELECT inserted.*, j.name AS job_name FROM inserted JOIN jobs j ON j.id = inserted.job_id;

-- Leases and scheduling ---------------------------------------------------------------------

-- name: leases_lock_prior
-- The rows lease_acquire is about to decide on, locked in name order (the order the upsert
-- locks them in too), so that what they held before the upsert is known exactly: a takeover
-- names the holder it took from.
SELECT name, holder, token, expires_at FROM leases
WHERE name = ANY(%(names)b::text[])
ORDER BY name
FOR UPDATE;

-- name: lease_acquire
-- One statement for the whole batch, names in lock order. A free or expired lease is granted
-- with a new token; our own live lease is renewed and keeps its token; another holder's live
-- lease is left alone (the WHERE fails, no row comes back). Every proposed row draws a token
-- before conflicts are known, so renewals and refusals leave gaps in the sequence: tokens
-- only have to grow, not to be dense. Drawing in ``ord`` order makes the tokens granted in
-- one call increase in name order.
INSERT INTO leases AS l (name, holder, token, expires_at, acquired_at)
SELECT x.name, %(holder)s, nextval('fencing'), %(expires_at)s, %(now)s
FROM unnest(%(names)b::text[]) WITH ORDINALITY AS x (name, ord)
ORDER BY x.ord
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    token = CASE WHEN l.holder = excluded.holder AND l.expires_at > %(now)s
                 THEN l.token ELSE excluded.token END,
    acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires_at > %(now)s
                       THEN l.acquired_at ELSE excluded.acquired_at END,
    expires_at = excluded.expires_at
WHERE l.expires_at <= %(now)s OR l.holder = excluded.holder
RETURNING l.name, l.holder, l.token, l.expires_at, l.acquired_at;

-- name: lease_renew
UPDATE leases l SET expires_at = %(expires_at)s
FROM unnest(%(names)b::text[], %(tokens)b::bigint[], %(holders)b::text[])
     AS x (name, token, holder)
WHERE l.name = x.name AND l.token = x.token AND l.holder = x.holder
  AND l.expires_at > %(now)s
RETURNING l.name, l.holder, l.token, l.expires_at, l.acquired_at;

-- name: lease_release
DELETE FROM leases l
USING unnest(%(names)b::text[], %(tokens)b::bigint[]) AS x (name, token)
WHERE l.name = x.name AND l.token = x.token;

-- name: lease_list
SELECT name, holder, token, expires_at, acquired_at FROM leases
WHERE starts_with(name, %(prefix)s)
ORDER BY name;

-- Cluster: takeovers, members, queue depths ------------------------------------------------

-- name: takeovers_insert
INSERT INTO lease_takeovers (at, expired_at, old_token, new_token, name, old_holder, new_holder)
SELECT %(at)s, x.expired_at, x.old_token, x.new_token, x.name, x.old_holder, %(new_holder)s
FROM unnest(%(expired_ats)b::timestamptz[], %(old_tokens)b::bigint[],
            %(new_tokens)b::bigint[], %(names)b::text[], %(old_holders)b::text[])
     AS x (expired_at, old_token, new_token, name, old_holder);

-- name: takeovers_forget
DELETE FROM lease_takeovers WHERE at < %(before)s;

-- name: takeover_list
SELECT name, at, old_holder, new_holder, old_token, new_token, expired_at
FROM lease_takeovers ORDER BY at DESC, name LIMIT %(limit)s;

-- name: member_upsert
INSERT INTO members (id, heartbeat_at, started_at, pid, host, roles, version)
VALUES (%(id)s, %(now)s, %(started_at)s, %(pid)s, %(host)s, %(roles)s, %(version)s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, pid = excluded.pid,
                               host = excluded.host, roles = excluded.roles,
                               version = excluded.version;

-- name: members_forget
DELETE FROM members WHERE heartbeat_at < %(before)s;

-- name: member_delete
DELETE FROM members WHERE id = %(id)s;

-- name: member_list
SELECT id, heartbeat_at, started_at, pid, host, roles, version FROM members ORDER BY id;

-- name: queue_depths
-- A pass over runs_claim, which holds exactly the waiting runs.
SELECT queue, count(*) AS waiting, count(*) FILTER (WHERE due_at <= %(now)s) AS due,
       min(due_at) FILTER (WHERE due_at <= %(now)s) AS oldest_due_at
FROM runs WHERE state IN ('pending', 'queued', 'retrying')
GROUP BY queue ORDER BY queue;

-- name: jobs_due
-- JSON columns as text: the codec decodes each distinct schedule, action and policy once.
SELECT id, owner, name, schedule::text AS schedule, action::text AS action,
       payload::text AS payload, policy::text AS policy, paused,
       next_fire_at, shard, version, created_at, updated_at
FROM jobs
WHERE next_fire_at <= %(horizon)s AND NOT paused AND deleted_at IS NULL
  AND shard = ANY(%(shards)b::int[])
ORDER BY next_fire_at
LIMIT %(limit)s;

-- name: leases_lock_valid
-- The shard leases a fires_commit writes under, share-locked until it commits: a rival
-- cannot take one over (its upsert waits) between this check and our commit.
SELECT l.name FROM leases l
JOIN unnest(%(names)b::text[], %(tokens)b::bigint[]) AS x (name, token)
  ON l.name = x.name AND l.token = x.token
WHERE l.expires_at > %(now)s
ORDER BY l.name
FOR SHARE OF l;

-- name: jobs_advance
-- Conditional on what the scheduler read: a job changed since (paused, replaced, advanced
-- by another scheduler) does not match and its plan is dropped. Every condition on a job is a
-- join clause against the batch (the expected flags ride along in a fenced subquery, as in
-- runs_heartbeat): a filter of jobs' own would let the planner read every due job (jobs_due's
-- predicate) and match the batch against them, a pass over all schedulable jobs per batch.
UPDATE jobs j SET next_fire_at = x.next_fire_at
FROM (SELECT u.*, false AS paused, true AS alive
      FROM unnest(%(ids)b::uuid[], %(versions)b::int[], %(old_next_fire_ats)b::timestamptz[],
                  %(next_fire_ats)b::timestamptz[])
           AS u (id, version, old_next_fire_at, next_fire_at)
      OFFSET 0) AS x
WHERE j.id = x.id AND j.version = x.version AND j.next_fire_at = x.old_next_fire_at
  AND j.paused = x.paused AND (j.deleted_at IS NULL) = x.alive
RETURNING j.id;

-- name: runs_insert_planned
-- A fire that already has a run is left alone (guarantee 1: the unique key decides). One row
-- back, not one per run: how many were created, and the queues to wake.
WITH inserted AS (
INSERT INTO runs (id, job_id, owner, scheduled_for, due_at, state, queue, priority, overlap,
                  fires, first_fire, finished_at, created_at)
SELECT x.id, x.job_id, j.owner, x.scheduled_for, x.due_at, x.state, j.policy ->> 'queue',
       (j.policy ->> 'priority')::smallint, j.policy ->> 'overlap', x.fires, x.first_fire,
       x.finished_at, %(now)s
FROM unnest(%(ids)b::uuid[], %(job_ids)b::uuid[], %(scheduled_fors)b::timestamptz[],
            %(due_ats)b::timestamptz[], %(states)b::text[], %(fires)b::int[],
            %(first_fires)b::timestamptz[], %(finished_ats)b::timestamptz[])
     AS x (id, job_id, scheduled_for, due_at, state, fires, first_fire, finished_at)
JOIN jobs j ON j.id = x.job_id
ON CONFLICT (job_id, scheduled_for, (CASE WHEN manual THEN id END)) DO NOTHING
RETURNING queue, state
)
SELECT count(*)::int AS created,
       array_agg(DISTINCT queue) FILTER (WHERE state = 'pending') AS queues
FROM inserted;

-- Runs: the worker side ---------------------------------------------------------------------

-- name: claim_candidates
-- Served by runs_claim: same state list, same order. SKIP LOCKED makes concurrent claimers
-- pass over each other's candidates instead of queueing behind them.
SELECT id, job_id, overlap, scheduled_for FROM runs
WHERE queue = %(queue)s AND state IN ('pending', 'queued', 'retrying')
  AND due_at <= %(horizon)s AND (due_at <= %(now)s OR overlap = 'allow')
ORDER BY priority DESC, due_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: jobs_lock
-- Serializes claimers of the same overlap-guarded job: whoever holds the job's row decides
-- its overlap alone. SKIP LOCKED, because a claimer already holds its candidate runs: waiting
-- here for a job row that a writer holds while it waits for those runs (a replace or pause
-- cancelling pending runs) would deadlock. The candidates of a skipped job are left waiting
-- for a later claim. NO KEY UPDATE: inserting a run (its foreign key check) is not blocked.
SELECT id FROM jobs WHERE id = ANY(%(ids)b::uuid[]) FOR NO KEY UPDATE SKIP LOCKED;

-- name: runs_live_of_jobs
-- A separate statement from jobs_lock on purpose: under READ COMMITTED it takes a snapshot
-- after the job locks are held, so it sees runs claimed by whoever held them before us.
SELECT id, job_id FROM runs
WHERE job_id = ANY(%(job_ids)b::uuid[]) AND state IN ('running', 'retrying');

-- name: runs_skip
UPDATE runs SET state = 'skipped', finished_at = %(now)s, error = %(reason)s
WHERE id = ANY(%(ids)b::uuid[]);

-- name: runs_cancel
-- Cancel waiting or running runs (a user, or overlap=replace). A running run's attempt is
-- recorded here as cancelled, since its worker's own (fenced) write will be refused. The
-- rows are locked first so that a worker completing the run at the same moment either
-- finishes before us (and the run is no longer cancellable) or is refused after us.
WITH target AS (
    SELECT id, state, attempt, token, worker_id, started_at FROM runs
    WHERE id = ANY(%(ids)b::uuid[])
      AND state IN ('pending', 'queued', 'retrying', 'running')
    FOR UPDATE
), cancelled AS (
    UPDATE runs r
    SET state = 'cancelled', finished_at = %(now)s, lease_expires_at = NULL,
        error = %(reason)s
    FROM target t
    WHERE r.id = t.id
    RETURNING t.id, t.state, t.attempt, t.token, t.worker_id, t.started_at
), recorded AS (
    INSERT INTO attempts (run_id, number, token, worker_id, started_at, finished_at,
                          outcome, error)
    SELECT id, attempt, token, worker_id, started_at, %(now)s, 'cancelled', %(reason)s
    FROM cancelled
    WHERE state = 'running'
)
SELECT id FROM cancelled;

-- name: runs_start
-- The claim itself: one statement for the batch. Tokens are drawn in ``ord`` (claim) order
-- in a materialized step of their own, so the join below cannot reorder the nextval calls.
-- Joined with jobs to hand the worker what it executes.
WITH claim AS MATERIALIZED (
    SELECT x.id, x.ord, nextval('fencing') AS token
    FROM unnest(%(ids)b::uuid[]) WITH ORDINALITY AS x (id, ord)
    ORDER BY x.ord
)
UPDATE runs r
SET state = 'running', attempt = r.attempt + 1, token = c.token,
    worker_id = %(worker_id)s, lease_expires_at = %(lease_expires_at)s,
    started_at = GREATEST(r.due_at, %(now)s), error = NULL
FROM claim c, jobs j
WHERE r.id = c.id AND j.id = r.job_id
  -- Redundant with the join, but it lets the planner see the batch's size and probe the
  -- primary key per id instead of hashing the whole table.
  AND r.id = ANY(%(ids)b::uuid[])
-- Ids, action and policy as text: cheaper to decode than uuid and jsonb values, and the
-- codec decodes each distinct action and policy text once (most jobs share them).
RETURNING c.ord, r.id::text AS id, r.job_id::text AS job_id, r.owner, r.queue,
          r.scheduled_for, r.attempt, r.failures, r.token, r.started_at, r.lease_expires_at,
          j.name AS job_name, j.action::text AS action,
          COALESCE(r.payload, j.payload)::text AS payload, j.policy::text AS policy;

-- name: runs_heartbeat
-- Every condition on the run is a join clause against the batch (the expected state and
-- worker ride along in a fenced subquery, OFFSET 0, so they are not folded into constants):
-- the planner has no filter on runs to estimate on its own, and reaches runs only by probing
-- the primary key with each id. With ``state = 'running'`` as a filter, statistics that saw
-- few running runs made it expect one row, scan that side first and compare every run with
-- the whole array (n² comparisons; 300 ms for a 500-run batch at the peak).
UPDATE runs r SET lease_expires_at = %(lease_expires_at)s
FROM (SELECT u.id, u.token, 'running'::text AS state, %(worker_id)s::text AS worker_id
      FROM unnest(%(ids)b::uuid[], %(tokens)b::bigint[]) AS u (id, token)
      OFFSET 0) AS x
WHERE r.id = x.id AND r.token = x.token AND r.worker_id = x.worker_id AND r.state = x.state
RETURNING r.id;

-- name: runs_finish
-- Record ended attempts: each only if its run is still running under its token (and, for
-- the reaper, its lease expired before ``expired_before``). The run's ``started_at`` becomes
-- the attempt's real start (the claim set when it was to start). One statement, hence atomic on
-- its own: the run updates and the attempt rows commit together or not at all. ``ord``
-- tells the caller which results were accepted.
WITH accepted AS (
    UPDATE runs r
    SET state = x.state, failures = x.failures, due_at = COALESCE(x.due_at, r.due_at),
        finished_at = x.run_finished_at, lease_expires_at = NULL, error = x.error,
        output = x.output, started_at = x.started_at
    -- The expected state rides along as a join clause, as in runs_heartbeat: runs is reached
    -- only through the primary key, one probe per id, whatever the statistics say.
    FROM (SELECT u.*, 'running'::text AS was
          FROM unnest(%(ids)b::uuid[], %(tokens)b::bigint[], %(states)b::text[],
                      %(failures)b::int[], %(due_ats)b::timestamptz[],
                      %(run_finished_ats)b::timestamptz[], %(expired_befores)b::timestamptz[],
                      %(numbers)b::int[], %(worker_ids)b::text[], %(started_ats)b::timestamptz[],
                      %(finished_ats)b::timestamptz[], %(outcomes)b::text[], %(errors)b::text[],
                      %(outputs)b::text[])
               WITH ORDINALITY
               AS u (id, token, state, failures, due_at, run_finished_at, expired_before,
                     number, worker_id, started_at, finished_at, outcome, error, output, ord)
          OFFSET 0) AS x
    WHERE r.id = x.id AND r.token = x.token AND r.state = x.was
      AND (x.expired_before IS NULL OR r.lease_expires_at <= x.expired_before)
    RETURNING x.ord, x.id, x.number, x.token, x.worker_id, x.started_at, x.finished_at,
              x.outcome, x.error, x.output, r.state, r.queue, r.job_id, r.owner
), recorded AS (
    -- A succeeded attempt is the run's last: the run row keeps all of it (number, token,
    -- worker, start, end, output), and attempt_list reads it from there. Only attempts that
    -- the run's next attempt would overwrite get a row: one row less per successful fire.
    INSERT INTO attempts (run_id, number, token, worker_id, started_at, finished_at,
                          outcome, error, output)
    SELECT id, number, token, worker_id, started_at, finished_at, outcome, error, output
    FROM accepted WHERE outcome <> 'succeeded'
), outcomes AS (
    -- The outbox (see notify.sql), in this same statement so that a notification commits
    -- with its outcome at no extra round trip. Per job, its last counted outcome here
    -- decides its failing flag.
    SELECT DISTINCT ON (job_id) job_id, id AS run_id, outcome = 'succeeded' AS ok, finished_at
    FROM accepted WHERE outcome IN ('succeeded', 'failed', 'timed_out', 'lost')
    ORDER BY job_id, finished_at DESC, ord DESC
), marks AS (
    -- The jobs an outcome changes (as this statement's snapshot sees them), with their flag
    -- before: one probe per job. A success of a job that is not failing and has no
    -- deadline (the common case) stops here and writes nothing.
    SELECT o.job_id, o.run_id, o.ok, o.finished_at, j.failing AS was_failing
    FROM outcomes o JOIN jobs j ON j.id = o.job_id
    WHERE j.failing = o.ok
       OR (o.ok AND (j.policy ->> 'deadline' IS NOT NULL OR j.deadman_lapsed_at IS NOT NULL))
), job_marks AS (
    -- The condition again on the row being updated: a concurrent batch that changed the
    -- job first is seen after its lock is released (no second flip, no second recovery).
    UPDATE jobs j
    SET failing = NOT m.ok,
        deadman_lapsed_at = CASE WHEN m.ok THEN NULL ELSE j.deadman_lapsed_at END,
        deadman_due_at = CASE
            WHEN NOT m.ok THEN j.deadman_due_at
            WHEN j.policy ->> 'deadline' IS NULL THEN NULL
            ELSE m.finished_at + make_interval(secs => (j.policy ->> 'deadline')::float8) END
    FROM marks m
    WHERE j.id = m.job_id
      AND (j.failing = m.ok
           OR (m.ok AND (j.policy ->> 'deadline' IS NOT NULL OR j.deadman_lapsed_at IS NOT NULL)))
    RETURNING m.run_id, m.ok AND m.was_failing AS recovered
), events AS (
    SELECT id AS run_id, job_id, owner, number, state, error, finished_at, 'failure' AS event,
           'failure:' || id || ':' || number AS dedupe_key
    FROM accepted WHERE outcome IN ('failed', 'timed_out', 'lost')
    UNION ALL
    SELECT id, job_id, owner, number, state, error, finished_at, 'dead', 'dead:' || id
    FROM accepted WHERE state = 'dead'
    UNION ALL
    SELECT a.id, a.job_id, a.owner, a.number, a.state, a.error, a.finished_at, 'recovery',
           'recovery:' || a.id
    FROM job_marks m JOIN accepted a ON a.id = m.run_id WHERE m.recovered
), notified AS (
    INSERT INTO notifications (id, rule_id, channel_id, owner, job_id, job_name, run_id, event,
                               dedupe_key, detail, created_at, next_attempt_at)
    SELECT gen_random_uuid(), nr.id, nr.channel_id, nr.owner, e.job_id, j.name, e.run_id,
           e.event, e.dedupe_key,
           jsonb_build_object('scheduled_for', r.scheduled_for, 'attempt', e.number,
                              'state', e.state, 'error', e.error, 'fires', r.fires,
                              'manual', r.manual),
           e.finished_at, e.finished_at
    FROM events e
    JOIN jobs j ON j.id = e.job_id
    JOIN runs r ON r.id = e.run_id
    JOIN notify_rules nr
      ON nr.job_id = e.job_id OR (nr.job_id IS NULL AND (nr.is_global OR nr.owner = e.owner))
    WHERE CASE e.event WHEN 'dead' THEN nr.on_dead WHEN 'failure' THEN nr.on_failure
                       WHEN 'recovery' THEN nr.on_recovery ELSE false END
    ON CONFLICT DO NOTHING
)
SELECT ord, state, queue FROM accepted;

-- name: runs_expired
SELECT r.id, r.token, r.attempt, r.failures, r.worker_id, r.started_at, j.policy,
       r.job_id, j.name AS job_name, r.queue
FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE r.state = 'running' AND r.lease_expires_at <= %(now)s
ORDER BY r.lease_expires_at
LIMIT %(limit)s;

-- name: runs_next_due
-- The earliest due time of the queues' waiting runs, along runs_claim (queue, priority DESC,
-- due_at): its first entry under each priority is that priority's earliest due time, so the
-- walk takes one probe per priority present in the queue (usually one), then one to find
-- that no lower priority is left.
WITH RECURSIVE firsts (queue, priority, due_at) AS (
    SELECT q.queue, x.priority, x.due_at
    FROM unnest(%(queues)b::text[]) AS q (queue)
    CROSS JOIN LATERAL (
        SELECT r.priority, r.due_at FROM runs r
        WHERE r.queue = q.queue AND r.state IN ('pending', 'queued', 'retrying')
        ORDER BY r.priority DESC, r.due_at
        LIMIT 1
    ) AS x
    UNION ALL
    SELECT f.queue, x.priority, x.due_at
    FROM firsts f
    CROSS JOIN LATERAL (
        SELECT r.priority, r.due_at FROM runs r
        WHERE r.queue = f.queue AND r.state IN ('pending', 'queued', 'retrying')
          AND r.priority < f.priority
        ORDER BY r.priority DESC, r.due_at
        LIMIT 1
    ) AS x
)
SELECT min(due_at) AS due FROM firsts;

-- Runs: the reading and admin side ----------------------------------------------------------

-- name: run_by_id
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE r.id = %(id)s AND (%(owner)s::text IS NULL OR r.owner = %(owner)s);

-- name: run_list
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE (%(owner)s::text IS NULL OR r.owner = %(owner)s)
  AND (%(job_id)s::uuid IS NULL OR r.job_id = %(job_id)s)
  AND (%(states)b::text[] IS NULL OR r.state = ANY(%(states)b))
  AND (%(before_at)s::timestamptz IS NULL
       OR (r.scheduled_for, r.id) < (%(before_at)s, %(before_id)s::uuid))
ORDER BY r.scheduled_for DESC, r.id DESC
LIMIT %(limit)s;

-- Run searches, newest first by (scheduled_for, id): along runs_fire (one job), runs_owner
-- (one owner) or runs_time (admins).
-- name: run_search_job
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE r.job_id = %(job_id)s::uuid AND (%(owner)s::text IS NULL OR r.owner = %(owner)s::text)
  AND (%(states)b::text[] IS NULL OR r.state = ANY(%(states)b))
  AND (%(since)s::timestamptz IS NULL OR r.scheduled_for >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR r.scheduled_for < %(until)s::timestamptz)
  AND (%(worker)s::text IS NULL OR starts_with(r.worker_id, %(worker)s::text))
  AND (%(before_at)s::timestamptz IS NULL
       OR (r.scheduled_for, r.id) < (%(before_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY r.scheduled_for DESC, r.id DESC
LIMIT %(limit)s;

-- name: run_search_owner
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE r.owner = %(owner)s::text
  AND (%(states)b::text[] IS NULL OR r.state = ANY(%(states)b))
  AND (%(since)s::timestamptz IS NULL OR r.scheduled_for >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR r.scheduled_for < %(until)s::timestamptz)
  AND (%(worker)s::text IS NULL OR starts_with(r.worker_id, %(worker)s::text))
  AND (%(before_at)s::timestamptz IS NULL
       OR (r.scheduled_for, r.id) < (%(before_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY r.scheduled_for DESC, r.id DESC
LIMIT %(limit)s;

-- name: run_search_all
SELECT r.*, j.name AS job_name FROM runs r JOIN jobs j ON j.id = r.job_id
WHERE true
  AND (%(states)b::text[] IS NULL OR r.state = ANY(%(states)b))
  AND (%(since)s::timestamptz IS NULL OR r.scheduled_for >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR r.scheduled_for < %(until)s::timestamptz)
  AND (%(worker)s::text IS NULL OR starts_with(r.worker_id, %(worker)s::text))
  AND (%(before_at)s::timestamptz IS NULL
       OR (r.scheduled_for, r.id) < (%(before_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY r.scheduled_for DESC, r.id DESC
LIMIT %(limit)s;

-- name: attempt_list
-- The recorded attempts, and a succeeded run's last attempt from the run row (runs_finish
-- writes no attempts row for it; runs recorded before migration 0011 have one, shown instead).
SELECT a.run_id, a.number, a.token, a.worker_id, a.started_at, a.finished_at, a.outcome,
       a.error, a.output
FROM attempts a JOIN runs r ON r.id = a.run_id
WHERE a.run_id = %(run_id)s AND (%(owner)s::text IS NULL OR r.owner = %(owner)s)
UNION ALL
SELECT r.id, r.attempt, r.token, r.worker_id, r.started_at, r.finished_at, 'succeeded',
       r.error, r.output
FROM runs r
WHERE r.id = %(run_id)s AND (%(owner)s::text IS NULL OR r.owner = %(owner)s)
  AND r.state = 'succeeded'
  AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = r.id AND a.number = r.attempt)
ORDER BY number;

-- name: run_requeue
WITH requeued AS (
    UPDATE runs
    SET state = 'queued', failures = 0, due_at = %(now)s, finished_at = NULL,
        lease_expires_at = NULL
    WHERE id = %(id)s AND state = 'dead' AND (%(owner)s::text IS NULL OR owner = %(owner)s)
    RETURNING *
)
SELECT requeued.*, j.name AS job_name FROM requeued JOIN jobs j ON j.id = requeued.job_id;

-- name: run_counts
-- Live and dead runs only, each read along its partial index (runs_claim, runs_live,
-- runs_dead): never a scan of the finished runs, which retention bounds but may be millions.
SELECT state, count(*) AS n FROM runs
WHERE state IN ('pending', 'queued', 'retrying')
  AND (%(owner)s::text IS NULL OR owner = %(owner)s)
GROUP BY state
UNION ALL
SELECT 'running', count(*) FROM runs
WHERE state = 'running' AND (%(owner)s::text IS NULL OR owner = %(owner)s)
UNION ALL
SELECT 'dead', count(*) FROM runs
WHERE state = 'dead' AND (%(owner)s::text IS NULL OR owner = %(owner)s);

-- Retention ---------------------------------------------------------------------------------

-- name: retention_shortest_job_age
-- The shortest per-job retention (seconds), one probe of jobs_retention.
SELECT min((policy->>'retention')::float8) AS shortest FROM jobs WHERE policy ? 'retention';

-- name: runs_prune
-- One retention batch: finished runs past their age, visited along runs_time from the pass's
-- cursor, deleted with their attempts. Rows another transaction holds are skipped (SKIP
-- LOCKED), never waited for; the batch's row locks last one short statement.
WITH doomed AS (
    SELECT r.id, r.scheduled_for, r.state, r.attempt
    FROM runs r JOIN jobs j ON j.id = r.job_id
    WHERE (r.scheduled_for, r.id) > (%(after_at)s, %(after_id)s)
      AND r.scheduled_for < %(horizon)s
      AND r.state IN ('succeeded', 'skipped', 'missed', 'cancelled')
      AND r.finished_at < CASE
          WHEN j.policy ? 'retention'
              THEN %(now)s - make_interval(secs => (j.policy->>'retention')::float8)
          WHEN r.state = 'succeeded' THEN %(succeeded)s::timestamptz
          WHEN r.state = 'skipped' THEN %(skipped)s::timestamptz
          WHEN r.state = 'missed' THEN %(missed)s::timestamptz
          ELSE %(cancelled)s::timestamptz END
    ORDER BY r.scheduled_for, r.id
    LIMIT %(limit)s
    FOR UPDATE OF r SKIP LOCKED
), gone AS (
    DELETE FROM attempts a USING doomed d WHERE a.run_id = d.id RETURNING a.run_id, a.number
), deleted AS (
    DELETE FROM runs r USING doomed d WHERE r.id = d.id RETURNING 1
)
-- Attempts counted as attempt_list shows them: a succeeded run's last attempt lives in its
-- run row (see runs_finish), so it is deleted with the run.
SELECT (SELECT count(*) FROM deleted) AS runs,
       (SELECT count(*) FROM gone)
       + (SELECT count(*) FROM doomed d
          WHERE d.state = 'succeeded'
            AND NOT EXISTS (SELECT 1 FROM gone g
                            WHERE g.run_id = d.id AND g.number = d.attempt)) AS attempts,
       (SELECT count(*) FROM doomed) AS picked,
       l.scheduled_for AS last_at, l.id AS last_id
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT scheduled_for, id FROM doomed ORDER BY scheduled_for DESC, id DESC LIMIT 1
) AS l ON true;

-- name: jobs_purge
-- Deleted jobs whose runs are all gone (retention took them), with their job versions.
WITH doomed AS (
    SELECT j.id FROM jobs j
    WHERE j.deleted_at IS NOT NULL AND j.deleted_at < %(before)s
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = j.id)
    ORDER BY j.deleted_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
), versions AS (
    DELETE FROM job_versions v USING doomed d WHERE v.job_id = d.id
)
DELETE FROM jobs j USING doomed d WHERE j.id = d.id RETURNING j.id;

-- Users, API keys, secrets -------------------------------------------------------------------

-- name: user_insert
INSERT INTO users (id, name, password_hash, role, owner, created_at, updated_at, disabled_at)
VALUES (%(id)s, %(name)s, %(password_hash)s, %(role)s, %(owner)s, %(created_at)s,
        %(updated_at)s, %(disabled_at)s)
ON CONFLICT (name) DO NOTHING
RETURNING id;

-- name: users_lock
-- The first user: concurrent first starts queue here, and the one after the first finds a
-- user. Transaction-scoped, so it cannot be left behind.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: user_any
SELECT EXISTS (SELECT 1 FROM users) AS present;

-- name: user_by_id
SELECT * FROM users WHERE id = %(id)s;

-- name: user_by_name
SELECT * FROM users WHERE name = %(name)s;

-- name: user_list
SELECT * FROM users WHERE (%(after_name)s::text IS NULL OR name > %(after_name)s)
ORDER BY name LIMIT %(limit)s;

-- name: user_set_password
UPDATE users
SET password_hash = %(password_hash)s, updated_at = %(now)s,
    session_epoch = session_epoch + %(end_sessions)s
WHERE id = %(id)s
RETURNING *;

-- name: user_set_role
UPDATE users SET role = %(role)s, updated_at = %(now)s WHERE id = %(id)s RETURNING *;

-- name: user_set_disabled
UPDATE users
SET disabled_at = CASE WHEN %(disabled)s THEN COALESCE(disabled_at, %(now)s) END,
    updated_at = %(now)s,
    session_epoch = session_epoch + CASE WHEN %(disabled)s THEN 1 ELSE 0 END
WHERE id = %(id)s
RETURNING *;

-- name: apikey_insert
INSERT INTO api_keys (id, prefix, secret_hash, user_id, name, created_at, expires_at,
                      revoked_at, last_used_at)
VALUES (%(id)s, %(prefix)s, %(secret_hash)s, %(user_id)s, %(name)s, %(created_at)s,
        %(expires_at)s, %(revoked_at)s, %(last_used_at)s)
ON CONFLICT (prefix) DO NOTHING
RETURNING id;

-- name: apikey_by_prefix
SELECT * FROM api_keys WHERE prefix = %(prefix)s;

-- name: apikey_list
SELECT * FROM api_keys WHERE (%(user_id)s::uuid IS NULL OR user_id = %(user_id)s)
ORDER BY created_at, id LIMIT %(limit)s;

-- name: apikey_revoke
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %(now)s)
WHERE id = %(id)s AND (%(user_id)s::uuid IS NULL OR user_id = %(user_id)s)
RETURNING *;

-- name: apikey_touch
-- At most one write a minute per key; a touch racing another is a no-op, not a wait.
UPDATE api_keys SET last_used_at = %(now)s
WHERE id = (SELECT id FROM api_keys
            WHERE id = %(id)s
              AND (last_used_at IS NULL OR last_used_at <= %(stale_before)s)
            FOR UPDATE SKIP LOCKED);

-- name: secret_insert
-- Concurrent first starts: one insert wins; the others' DO NOTHING waits for it to commit.
-- The value is then read by a separate statement (a new snapshot, which sees the winner).
INSERT INTO server_secrets (name, value, created_at) VALUES (%(name)s, %(value)s, %(now)s)
ON CONFLICT (name) DO NOTHING;

-- name: secret_get
SELECT value FROM server_secrets WHERE name = %(name)s;

-- name: secret_replace
INSERT INTO server_secrets (name, value, created_at) VALUES (%(name)s, %(value)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at;

-- Audit and job versions ---------------------------------------------------------------------

-- name: audit_insert
INSERT INTO audit_log (at, actor, owner, action, target_kind, target_id, details)
VALUES (%(at)s, %(actor)s, %(owner)s, %(action)s, %(target_kind)s, %(target_id)s,
        %(details)s::jsonb);

-- name: audit_insert_many
INSERT INTO audit_log (at, actor, owner, action, target_kind, target_id, details)
SELECT %(at)s, %(actor)s, x.owner, %(action)s, %(target_kind)s, x.target_id, x.details::jsonb
FROM unnest(%(owners)s::text[], %(target_ids)s::text[], %(details)s::text[])
     AS x (owner, target_id, details);

-- name: audit_list_all
-- Newest first by (at, id); the bounds are always given (the caller fills the open ends),
-- so each query is one backward range scan of its index.
SELECT * FROM audit_log
WHERE (%(target_kind)s::text IS NULL OR target_kind = %(target_kind)s)
  AND at >= %(since)s AND at < %(until)s AND (at, id) < (%(before_at)s, %(before_id)s)
ORDER BY at DESC, id DESC
LIMIT %(limit)s;

-- name: audit_list_owner
SELECT * FROM audit_log
WHERE owner = %(owner)s AND (%(target_kind)s::text IS NULL OR target_kind = %(target_kind)s)
  AND at >= %(since)s AND at < %(until)s AND (at, id) < (%(before_at)s, %(before_id)s)
ORDER BY owner DESC, at DESC, id DESC
LIMIT %(limit)s;

-- name: audit_list_target
SELECT * FROM audit_log
WHERE target_kind = %(target_kind)s AND target_id = %(target_id)s
  AND (%(owner)s::text IS NULL OR owner = %(owner)s)
  AND at >= %(since)s AND at < %(until)s AND (at, id) < (%(before_at)s, %(before_id)s)
ORDER BY target_kind DESC, target_id DESC, at DESC, id DESC
LIMIT %(limit)s;

-- name: job_lock_live
-- The live job a change is about, locked until the change commits (confined to the owner).
SELECT id, owner, name, schedule, action, payload::text AS payload, policy, paused,
       next_fire_at, shard, version, created_at, updated_at
FROM jobs
WHERE id = %(id)s AND deleted_at IS NULL AND (%(owner)s::text IS NULL OR owner = %(owner)s)
FOR NO KEY UPDATE;

-- name: job_lock_by_name
SELECT id FROM jobs WHERE owner = %(owner)s AND name = %(name)s AND deleted_at IS NULL
FOR NO KEY UPDATE;

-- name: job_snapshot
-- Keep a job's current definition before it changes (the same transaction changes it).
INSERT INTO job_versions (job_id, version, definition, changed_at, changed_by)
SELECT id, version,
       jsonb_build_object('name', name, 'schedule', schedule, 'action', action,
                          'payload', payload, 'policy', policy, 'paused', paused),
       %(now)s, %(actor)s
FROM jobs WHERE id = %(id)s;

-- name: job_update
UPDATE jobs
SET name = %(name)s, schedule = %(schedule)s::jsonb, action = %(action)s::jsonb,
    payload = %(payload)s::jsonb, policy = %(policy)s::jsonb,
    next_fire_at = %(next_fire_at)s, version = version + 1, updated_at = %(now)s
WHERE id = %(id)s
RETURNING id, owner, name, schedule, action, payload::text AS payload, policy, paused,
          next_fire_at, shard, version, created_at, updated_at;

-- name: job_versions_list
SELECT v.job_id, v.version, v.definition, v.changed_at, v.changed_by
FROM job_versions v JOIN jobs j ON j.id = v.job_id
WHERE v.job_id = %(job_id)s AND (%(owner)s::text IS NULL OR j.owner = %(owner)s)
  AND (%(before_version)s::int IS NULL OR v.version < %(before_version)s)
ORDER BY v.version DESC
LIMIT %(limit)s;
