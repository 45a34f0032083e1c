-- Notifications (SQLite): channels, rules, the outbox, deliveries, the dead-man's switch.
-- Outbox inserts run inside the transaction that records the outcome (see outbox_* below).
-- New ids are random UUIDs made in SQL, one per matching rule.

-- name: channel_insert
INSERT INTO notify_channels (id, owner, name, kind, url, secret, created_at, created_by)
VALUES (:id, :owner, :name, :kind, :url, :secret, :created_at, :created_by)
ON CONFLICT DO NOTHING;

-- name: channel_by_id
SELECT * FROM notify_channels
WHERE id = :id AND deleted_at IS NULL AND (:owner IS NULL OR owner = :owner);

-- name: channel_list
SELECT * FROM notify_channels
WHERE deleted_at IS NULL AND (:owner IS NULL OR owner = :owner)
ORDER BY owner, name;

-- name: channel_soft_delete
UPDATE notify_channels SET deleted_at = :now
WHERE id = :id AND deleted_at IS NULL AND (:owner IS NULL OR owner = :owner)
RETURNING id, owner, name;

-- name: rules_delete_of_channel
DELETE FROM notify_rules WHERE channel_id = :id;

-- name: notifications_fail_of_channel
UPDATE notifications SET state = 'failed', next_attempt_at = NULL, last_error = 'channel deleted'
WHERE channel_id = :id AND state = 'pending';

-- name: rule_insert
INSERT INTO notify_rules (id, owner, job_id, is_global, channel_id, on_dead, on_failure,
                          on_recovery, on_missed, on_deadman, created_at, created_by)
VALUES (:id, :owner, :job_id, :is_global, :channel_id, :on_dead, :on_failure, :on_recovery,
        :on_missed, :on_deadman, :created_at, :created_by);

-- name: rule_by_id
SELECT * FROM notify_rules WHERE id = :id AND (:owner IS NULL OR owner = :owner);

-- name: rule_list
SELECT * FROM notify_rules
WHERE (:owner IS NULL OR owner = :owner) AND (:job_id IS NULL OR job_id = :job_id)
ORDER BY created_at, id;

-- name: rule_delete
DELETE FROM notify_rules WHERE id = :id AND (:owner IS NULL OR owner = :owner)
RETURNING id, owner;

-- name: outbox_run_event
-- One notification per rule that matches the run's job and wants this event. Rules are found
-- through notify_rules_job (the job's own) and notify_rules_wide (its owner's and global).
INSERT INTO notifications (id, rule_id, channel_id, owner, job_id, job_name, run_id, event,
                           dedupe_key, detail, created_at, next_attempt_at)
SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'
             || substr(hex(randomblob(2)), 2) || '-'
             || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2)
             || '-' || hex(randomblob(6))),
       nr.id, nr.channel_id, nr.owner, r.job_id, j.name, r.id, :event, :dedupe_key,
       json_object('scheduled_for',
                   strftime('%Y-%m-%dT%H:%M:%fZ', r.scheduled_for / 1000000.0, 'unixepoch'),
                   'attempt', :attempt, 'state', r.state, 'error', r.error,
                   'fires', r.fires, 'manual', r.manual),
       :now, :now
FROM runs r
JOIN jobs j ON j.id = r.job_id
JOIN notify_rules nr
  ON nr.job_id = r.job_id OR (nr.job_id IS NULL AND (nr.is_global = 1 OR nr.owner = r.owner))
WHERE r.id = :run_id
  AND CASE :event WHEN 'dead' THEN nr.on_dead WHEN 'failure' THEN nr.on_failure
                  WHEN 'recovery' THEN nr.on_recovery WHEN 'missed' THEN nr.on_missed
                  ELSE 0 END = 1
ON CONFLICT DO NOTHING;

-- name: job_mark_failing
UPDATE jobs SET failing = 1
WHERE id = (SELECT job_id FROM runs WHERE id = :run_id) AND failing = 0;

-- name: job_success_state
SELECT j.id, j.failing, json_extract(j.policy, '$.deadline') AS deadline
FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = :run_id;

-- name: job_mark_succeeded
-- A success ends a failing stretch and re-arms the dead-man's switch from its finish.
UPDATE jobs
SET failing = 0, deadman_lapsed_at = NULL,
    deadman_due_at = CASE WHEN :deadline IS NULL THEN NULL
                          ELSE :finished_at + CAST(:deadline * 1000000 AS INTEGER) END
WHERE id = :id;

-- name: notification_due
SELECT n.*, c.kind AS channel_kind, c.url AS channel_url, c.secret AS channel_secret,
       c.deleted_at AS channel_deleted_at
FROM notifications n LEFT JOIN notify_channels c ON c.id = n.channel_id
WHERE n.state = 'pending' AND n.next_attempt_at <= :now
ORDER BY n.next_attempt_at
LIMIT :limit;

-- name: delivery_insert
INSERT INTO notify_deliveries (notification_id, attempt, at, ok, error, duration_ms)
VALUES (:id, :attempt, :now, :ok, :error, :duration_ms)
ON CONFLICT DO NOTHING;

-- name: notification_update
-- Conditional on the attempt count: of two deliverers recording one try, one wins.
UPDATE notifications
SET attempts = :attempt, state = :state, next_attempt_at = :next_attempt_at,
    delivered_at = :delivered_at, last_error = :error
WHERE id = :id AND state = 'pending' AND attempts = :attempt - 1;

-- name: notification_by_id
SELECT * FROM notifications WHERE id = :id AND (:owner IS NULL OR owner = :owner);

-- name: notification_list
SELECT * FROM notifications
WHERE (:owner IS NULL OR owner = :owner) AND (:state IS NULL OR state = :state)
  AND (:job_id IS NULL OR job_id = :job_id)
  AND (:before_at IS NULL OR created_at < :before_at
       OR (created_at = :before_at AND id < :before_id))
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: delivery_list
SELECT d.* FROM notify_deliveries d JOIN notifications n ON n.id = d.notification_id
WHERE d.notification_id = :id AND (:owner IS NULL OR n.owner = :owner)
ORDER BY d.attempt;

-- name: deadman_arm
UPDATE jobs
SET deadman_due_at = :now + CAST(json_extract(policy, '$.deadline') * 1000000 AS INTEGER)
WHERE id IN (SELECT id FROM jobs
             WHERE json_extract(policy, '$.deadline') IS NOT NULL AND deadman_due_at IS NULL
               AND deadman_lapsed_at IS NULL AND deleted_at IS NULL
             LIMIT :limit);

-- name: deadman_due
SELECT id, owner, name, paused, json_extract(policy, '$.deadline') AS deadline, deadman_due_at
FROM jobs
WHERE deadman_due_at IS NOT NULL AND deleted_at IS NULL AND deadman_due_at <= :now
ORDER BY deadman_due_at
LIMIT :limit;

-- name: deadman_lapse
UPDATE jobs SET deadman_lapsed_at = deadman_due_at, deadman_due_at = NULL
WHERE id = :id AND deadman_due_at = :due_at;

-- name: deadman_disarm
UPDATE jobs SET deadman_due_at = NULL WHERE id = :id AND deadman_due_at = :due_at;

-- name: outbox_deadman
INSERT INTO notifications (id, rule_id, channel_id, owner, job_id, job_name, run_id, event,
                           dedupe_key, detail, created_at, next_attempt_at)
SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'
             || substr(hex(randomblob(2)), 2) || '-'
             || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2)
             || '-' || hex(randomblob(6))),
       nr.id, nr.channel_id, nr.owner, j.id, j.name, NULL, 'deadman', :dedupe_key,
       json_object('deadline', :deadline,
                   'due_at', strftime('%Y-%m-%dT%H:%M:%fZ', :due_at / 1000000.0, 'unixepoch'),
                   'paused', j.paused),
       :now, :now
FROM jobs j
JOIN notify_rules nr
  ON nr.job_id = j.id OR (nr.job_id IS NULL AND (nr.is_global = 1 OR nr.owner = j.owner))
WHERE j.id = :job_id AND nr.on_deadman = 1
ON CONFLICT DO NOTHING;

-- name: deadman_missing_lapsed
SELECT id, owner, name, paused, json_extract(policy, '$.deadline') AS deadline,
       deadman_lapsed_at AS due_at
FROM jobs
WHERE deadman_lapsed_at IS NOT NULL AND deleted_at IS NULL
  AND (:owner IS NULL OR owner = :owner)
  AND json_extract(policy, '$.deadline') IS NOT NULL
ORDER BY deadman_lapsed_at
LIMIT :limit;

-- name: deadman_missing_due
SELECT id, owner, name, paused, json_extract(policy, '$.deadline') AS deadline,
       deadman_due_at AS due_at
FROM jobs
WHERE deadman_due_at IS NOT NULL AND deleted_at IS NULL AND deadman_due_at <= :now
  AND (:owner IS NULL OR owner = :owner)
  AND json_extract(policy, '$.deadline') IS NOT NULL
ORDER BY deadman_due_at
LIMIT :limit;
