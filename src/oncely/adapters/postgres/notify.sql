-- Notifications (PostgreSQL): channels, rules, the outbox, deliveries, the dead-man's switch.
-- The outbox rows of attempts are written by runs_finish (queries.sql) in its own statement;
-- missed fires by outbox_missed inside fires_commit's transaction.

-- name: channel_insert
INSERT INTO notify_channels (id, owner, name, kind, url, secret, created_at, created_by)
VALUES (%(id)s, %(owner)s, %(name)s, %(kind)s, %(url)s, %(secret)s, %(created_at)s,
        %(created_by)s)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: channel_by_id
SELECT * FROM notify_channels
WHERE id = %(id)s AND deleted_at IS NULL AND (%(owner)s::text IS NULL OR owner = %(owner)s);

-- name: channel_list
SELECT * FROM notify_channels
WHERE deleted_at IS NULL AND (%(owner)s::text IS NULL OR owner = %(owner)s)
ORDER BY owner, name;

-- name: channel_delete
WITH gone AS (
    UPDATE notify_channels SET deleted_at = %(now)s
    WHERE id = %(id)s AND deleted_at IS NULL AND (%(owner)s::text IS NULL OR owner = %(owner)s)
    RETURNING id, owner, name
), rules AS (
    DELETE FROM notify_rules WHERE channel_id IN (SELECT id FROM gone)
), given_up AS (
    UPDATE notifications
    SET state = 'failed', next_attempt_at = NULL, last_error = 'channel deleted'
    WHERE channel_id IN (SELECT id FROM gone) AND state = 'pending'
)
SELECT id, owner, name FROM gone;

-- name: rule_insert
INSERT INTO notify_rules (id, owner, job_id, is_global, channel_id, on_dead, on_failure,
                          on_recovery, on_missed, on_deadman, created_at, created_by)
VALUES (%(id)s, %(owner)s, %(job_id)s, %(is_global)s, %(channel_id)s, %(on_dead)s,
        %(on_failure)s, %(on_recovery)s, %(on_missed)s, %(on_deadman)s, %(created_at)s,
        %(created_by)s)
RETURNING *;

-- name: rule_list
SELECT * FROM notify_rules
WHERE (%(owner)s::text IS NULL OR owner = %(owner)s)
  AND (%(job_id)s::uuid IS NULL OR job_id = %(job_id)s)
ORDER BY created_at, id;

-- name: rule_delete
DELETE FROM notify_rules WHERE id = %(id)s AND (%(owner)s::text IS NULL OR owner = %(owner)s)
RETURNING id, owner;

-- name: outbox_missed
INSERT INTO notifications (id, rule_id, channel_id, owner, job_id, job_name, run_id, event,
                           dedupe_key, detail, created_at, next_attempt_at)
SELECT gen_random_uuid(), nr.id, nr.channel_id, nr.owner, r.job_id, j.name, r.id, 'missed',
       'missed:' || r.id,
       jsonb_build_object('scheduled_for', r.scheduled_for, 'state', r.state,
                          'fires', r.fires),
       %(now)s, %(now)s
FROM runs r
JOIN jobs j ON j.id = r.job_id
JOIN notify_rules nr
  ON nr.job_id = r.job_id OR (nr.job_id IS NULL AND (nr.is_global OR nr.owner = r.owner))
WHERE r.id = ANY(%(ids)s::uuid[]) AND r.state = 'missed' AND nr.on_missed
ON CONFLICT DO NOTHING;

-- name: notification_due
SELECT n.*, c.kind AS channel_kind, c.url AS channel_url, c.secret AS channel_secret,
       c.deleted_at AS channel_deleted_at
FROM notifications n LEFT JOIN notify_channels c ON c.id = n.channel_id
WHERE n.state = 'pending' AND n.next_attempt_at <= %(now)s
ORDER BY n.next_attempt_at
LIMIT %(limit)s;

-- name: notification_record
-- Conditional on the attempt count: of two deliverers recording one try, one wins.
WITH updated AS (
    UPDATE notifications
    SET attempts = %(attempt)s, state = %(state)s, next_attempt_at = %(next_attempt_at)s,
        delivered_at = %(delivered_at)s, last_error = %(error)s
    WHERE id = %(id)s AND state = 'pending' AND attempts = %(attempt)s - 1
    RETURNING id
), logged AS (
    INSERT INTO notify_deliveries (notification_id, attempt, at, ok, error, duration_ms)
    SELECT id, %(attempt)s, %(now)s, %(ok)s, %(error)s, %(duration_ms)s FROM updated
    ON CONFLICT DO NOTHING
)
SELECT id FROM updated;

-- name: notification_by_id
SELECT * FROM notifications
WHERE id = %(id)s AND (%(owner)s::text IS NULL OR owner = %(owner)s);

-- name: notification_list
SELECT * FROM notifications
WHERE (%(owner)s::text IS NULL OR owner = %(owner)s)
  AND (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(job_id)s::uuid IS NULL OR job_id = %(job_id)s)
  AND (%(before_at)s::timestamptz IS NULL
       OR (created_at, id) < (%(before_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: delivery_list
SELECT d.* FROM notify_deliveries d JOIN notifications n ON n.id = d.notification_id
WHERE d.notification_id = %(id)s AND (%(owner)s::text IS NULL OR n.owner = %(owner)s)
ORDER BY d.attempt;

-- name: deadman_arm
UPDATE jobs
SET deadman_due_at = %(now)s + make_interval(secs => (policy ->> 'deadline')::float8)
WHERE id IN (SELECT id FROM jobs
             WHERE (policy ->> 'deadline') IS NOT NULL AND deadman_due_at IS NULL
               AND deadman_lapsed_at IS NULL AND deleted_at IS NULL
             LIMIT %(limit)s);

-- name: deadman_lapse
-- Jobs whose deadline passed: marked lapsed (disarmed until a success) in the statement that
-- writes their notifications. Rows another sweeper holds are left to it (SKIP LOCKED).
WITH due AS (
    SELECT id, deadman_due_at, (policy ->> 'deadline')::float8 AS deadline FROM jobs
    WHERE deadman_due_at IS NOT NULL AND deleted_at IS NULL AND deadman_due_at <= %(now)s
    ORDER BY deadman_due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), marked AS (
    UPDATE jobs j
    SET deadman_lapsed_at = CASE WHEN d.deadline IS NULL THEN j.deadman_lapsed_at
                                 ELSE d.deadman_due_at END,
        deadman_due_at = NULL
    FROM due d WHERE j.id = d.id
    RETURNING j.id, j.owner, j.name, j.paused, d.deadline, d.deadman_due_at
), notified AS (
    INSERT INTO notifications (id, rule_id, channel_id, owner, job_id, job_name, run_id, event,
                               dedupe_key, detail, created_at, next_attempt_at)
    SELECT gen_random_uuid(), nr.id, nr.channel_id, nr.owner, m.id, m.name, NULL, 'deadman',
           'deadman:' || m.id || ':' || (extract(epoch FROM m.deadman_due_at) * 1000000)::bigint,
           jsonb_build_object('deadline', m.deadline, 'due_at', m.deadman_due_at,
                              'paused', m.paused),
           %(now)s, %(now)s
    FROM marked m
    JOIN notify_rules nr
      ON nr.job_id = m.id OR (nr.job_id IS NULL AND (nr.is_global OR nr.owner = m.owner))
    WHERE m.deadline IS NOT NULL AND nr.on_deadman
    ON CONFLICT DO NOTHING
)
SELECT count(*) FILTER (WHERE deadline IS NOT NULL) AS lapsed FROM marked;

-- name: deadman_missing_lapsed
SELECT id, owner, name, paused, (policy ->> 'deadline')::float8 AS deadline,
       deadman_lapsed_at AS due_at
FROM jobs
WHERE deadman_lapsed_at IS NOT NULL AND deleted_at IS NULL
  AND (%(owner)s::text IS NULL OR owner = %(owner)s)
  AND (policy ->> 'deadline') IS NOT NULL
ORDER BY deadman_lapsed_at
LIMIT %(limit)s;

-- name: deadman_missing_due
SELECT id, owner, name, paused, (policy ->> 'deadline')::float8 AS deadline,
       deadman_due_at AS due_at
FROM jobs
WHERE deadman_due_at IS NOT NULL AND deleted_at IS NULL AND deadman_due_at <= %(now)s
  AND (%(owner)s::text IS NULL OR owner = %(owner)s)
  AND (policy ->> 'deadline') IS NOT NULL
ORDER BY deadman_due_at
LIMIT %(limit)s;
