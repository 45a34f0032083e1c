-- Notifications: channels (where to), rules (when), the outbox (what to send, written in the
-- transaction of the outcome that causes it) and the delivery log (each try). And the job
-- columns the outbox and the dead-man's switch need. Adding columns with constant defaults
-- rewrites no table.

-- True while the job's last counted attempt failed: the next success is a recovery.
ALTER TABLE jobs ADD COLUMN failing boolean NOT NULL DEFAULT false;
-- Dead-man's switch: when the deadline next passes (armed by the maintenance service, moved
-- by every success), and since when it has passed (set once per lapse, cleared by a success).
ALTER TABLE jobs ADD COLUMN deadman_due_at timestamptz;
ALTER TABLE jobs ADD COLUMN deadman_lapsed_at timestamptz;
CREATE INDEX jobs_deadman_due ON jobs (deadman_due_at)
    WHERE deadman_due_at IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX jobs_deadman_lapsed ON jobs (owner, deadman_lapsed_at)
    WHERE deadman_lapsed_at IS NOT NULL AND deleted_at IS NULL;
-- Jobs given a deadline and not armed yet: few, found without a scan.
CREATE INDEX jobs_deadman_unarmed ON jobs (id)
    WHERE (policy ->> 'deadline') IS NOT NULL AND deadman_due_at IS NULL
      AND deadman_lapsed_at IS NULL AND deleted_at IS NULL;

CREATE TABLE notify_channels (
    id         uuid PRIMARY KEY,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz,
    owner      text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('apprise', 'webhook')),
    url        text NOT NULL,
    secret     text,
    created_by text
);
CREATE UNIQUE INDEX notify_channels_name ON notify_channels (owner, name) WHERE deleted_at IS NULL;

CREATE TABLE notify_rules (
    id          uuid PRIMARY KEY,
    job_id      uuid,
    channel_id  uuid NOT NULL REFERENCES notify_channels (id),
    created_at  timestamptz NOT NULL,
    is_global   boolean NOT NULL DEFAULT false,
    on_dead     boolean NOT NULL DEFAULT false,
    on_failure  boolean NOT NULL DEFAULT false,
    on_recovery boolean NOT NULL DEFAULT false,
    on_missed   boolean NOT NULL DEFAULT false,
    on_deadman  boolean NOT NULL DEFAULT false,
    owner       text COLLATE "C" NOT NULL,
    created_by  text
);
CREATE INDEX notify_rules_job ON notify_rules (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX notify_rules_wide ON notify_rules (owner) WHERE job_id IS NULL;
CREATE INDEX notify_rules_channel ON notify_rules (channel_id);

CREATE TABLE notifications (
    id              uuid PRIMARY KEY,
    rule_id         uuid NOT NULL,
    channel_id      uuid NOT NULL,
    job_id          uuid NOT NULL,
    run_id          uuid,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz,
    delivered_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    state           text COLLATE "C" NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'delivered', 'failed')),
    event           text COLLATE "C" NOT NULL,
    owner           text COLLATE "C" NOT NULL,
    job_name        text NOT NULL,
    dedupe_key      text NOT NULL,
    detail          jsonb NOT NULL,
    last_error      text
);
-- One notification per (rule, cause): writing it twice writes nothing.
CREATE UNIQUE INDEX notifications_once ON notifications (rule_id, dedupe_key);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_owner ON notifications (owner, created_at, id);
CREATE INDEX notifications_all ON notifications (created_at, id);

CREATE TABLE notify_deliveries (
    notification_id uuid NOT NULL,
    at              timestamptz NOT NULL,
    attempt         integer NOT NULL,
    duration_ms     integer NOT NULL,
    ok              boolean NOT NULL,
    error           text,
    PRIMARY KEY (notification_id, attempt)
);
