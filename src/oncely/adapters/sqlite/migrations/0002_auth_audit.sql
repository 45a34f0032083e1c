-- Accounts, API keys, server secrets, the audit log and job versions (who did what, and what
-- a job was before). Timestamps are integer microseconds since the epoch, as in 0001.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    owner         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

-- Only a hash of a key's secret is stored; ``prefix`` (public, random) finds the row.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    prefix       TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at, id);

-- Values generated once per store and shared by every process (the JWT signing key).
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- Appended in the same transaction as the change it records. ``owner`` is the owner of the
-- job or run acted on (NULL for server-wide entries: users and keys, read by admins only).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    owner       TEXT,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
-- One index per way the log is read, each in paging order (newest first by (at, id)).
CREATE INDEX audit_at ON audit_log (at, id);
CREATE INDEX audit_owner ON audit_log (owner, at, id);
CREATE INDEX audit_target ON audit_log (target_kind, target_id, at, id);

-- A job's definition as it was before each change of it: ``version`` is the version that
-- was replaced, ``definition`` its name, schedule, action, payload, policy and paused flag.
CREATE TABLE job_versions (
    job_id     TEXT NOT NULL REFERENCES jobs (id),
    version    INTEGER NOT NULL,
    definition TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    changed_by TEXT,
    PRIMARY KEY (job_id, version)
);
