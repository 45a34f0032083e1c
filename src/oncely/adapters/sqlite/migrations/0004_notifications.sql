-- Notifications: channels (where to), rules (when), the outbox (what to send, written in the
-- transaction of the outcome that causes it) and the delivery log (each try). And the job
-- columns the outbox and the dead-man's switch need.

-- 1 while the job's last counted attempt failed: the next success is a recovery.
ALTER TABLE jobs ADD COLUMN failing INTEGER NOT NULL DEFAULT 0;
-- Dead-man's switch: when the deadline next passes (armed by the maintenance service, moved
-- by every success), and since when it has passed (set once per lapse, cleared by a success).
ALTER TABLE jobs ADD COLUMN deadman_due_at INTEGER;
ALTER TABLE jobs ADD COLUMN deadman_lapsed_at INTEGER;
CREATE INDEX jobs_deadman_due ON jobs (deadman_due_at)
    WHERE deadman_due_at IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX jobs_deadman_lapsed ON jobs (owner, deadman_lapsed_at)
    WHERE deadman_lapsed_at IS NOT NULL AND deleted_at IS NULL;
-- Jobs given a deadline and not armed yet: few, found without a scan.
CREATE INDEX jobs_deadman_unarmed ON jobs (id)
    WHERE json_extract(policy, '$.deadline') IS NOT NULL AND deadman_due_at IS NULL
      AND deadman_lapsed_at IS NULL AND deleted_at IS NULL;

CREATE TABLE notify_channels (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX notify_channels_name ON notify_channels (owner, name) WHERE deleted_at IS NULL;

CREATE TABLE notify_rules (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    job_id      TEXT,
    is_global   INTEGER NOT NULL DEFAULT 0,
    channel_id  TEXT NOT NULL REFERENCES notify_channels (id),
    on_dead     INTEGER NOT NULL DEFAULT 0,
    on_failure  INTEGER NOT NULL DEFAULT 0,
    on_recovery INTEGER NOT NULL DEFAULT 0,
    on_missed   INTEGER NOT NULL DEFAULT 0,
    on_deadman  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    created_by  TEXT
);
CREATE INDEX notify_rules_job ON notify_rules (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX notify_rules_wide ON notify_rules (owner) WHERE job_id IS NULL;
CREATE INDEX notify_rules_channel ON notify_rules (channel_id);

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    rule_id         TEXT NOT NULL,
    channel_id      TEXT NOT NULL,
    owner           TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    job_name        TEXT NOT NULL,
    run_id          TEXT,
    event           TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL,
    detail          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    delivered_at    INTEGER,
    last_error      TEXT
);
-- One notification per (rule, cause): writing it twice writes nothing.
CREATE UNIQUE INDEX notifications_once ON notifications (rule_id, dedupe_key);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_owner ON notifications (owner, created_at DESC, id DESC);
CREATE INDEX notifications_all ON notifications (created_at DESC, id DESC);

CREATE TABLE notify_deliveries (
    notification_id TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    ok              INTEGER NOT NULL,
    error           TEXT,
    duration_ms     INTEGER NOT NULL,
    PRIMARY KEY (notification_id, attempt)
);
