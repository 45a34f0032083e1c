-- Accounts, API keys, server secrets, the audit log and job versions (who did what, and what
-- a job was before). Same tables and meanings as the SQLite store, in native types.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    disabled_at   timestamptz,
    name          text COLLATE "C" NOT NULL UNIQUE,
    role          text COLLATE "C" NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    owner         text COLLATE "C" NOT NULL,
    password_hash text NOT NULL
);

-- Only a hash of a key's secret is stored; ``prefix`` (public, random) finds the row.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    prefix       text COLLATE "C" NOT NULL UNIQUE,
    secret_hash  text NOT NULL,
    name         text NOT NULL
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at, id);

-- Values generated once per store and shared by every process (the JWT signing key).
CREATE TABLE server_secrets (
    name       text COLLATE "C" PRIMARY KEY,
    created_at timestamptz NOT NULL,
    value      bytea NOT NULL
);

-- Appended in the same transaction as the change it records. ``owner`` is the owner of the
-- job or run acted on (NULL for server-wide entries: users and keys, read by admins only).
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    owner       text COLLATE "C",
    action      text COLLATE "C" NOT NULL,
    target_kind text COLLATE "C" NOT NULL,
    target_id   text COLLATE "C",
    details     jsonb NOT NULL DEFAULT '{}'
);
-- One index per way the log is read, each in paging order (newest first by (at, id)).
CREATE INDEX audit_at ON audit_log (at, id);
CREATE INDEX audit_owner ON audit_log (owner, at, id);
CREATE INDEX audit_target ON audit_log (target_kind, target_id, at, id);

-- A job's definition as it was before each change of it: ``version`` is the version that
-- was replaced, ``definition`` its name, schedule, action, payload, policy and paused flag.
CREATE TABLE job_versions (
    job_id     uuid NOT NULL REFERENCES jobs (id),
    version    integer NOT NULL,
    changed_at timestamptz NOT NULL,
    changed_by text,
    definition jsonb NOT NULL,
    PRIMARY KEY (job_id, version)
);
