-- Cluster mode: who is running (members), since when a shard's holder holds it, and the
-- takeovers of leases whose holder let them expire.

-- One row per running oncely process, refreshed by its heartbeat; a stopping process
-- deletes its own. ``roles``: comma-separated among scheduler, worker, api.
CREATE TABLE members (
    id           text COLLATE "C" PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL,
    started_at   timestamptz NOT NULL,
    pid          integer NOT NULL,
    host         text NOT NULL,
    roles        text NOT NULL,
    version      text NOT NULL
);
-- Forgetting processes that died without leaving.
CREATE INDEX members_heartbeat ON members (heartbeat_at);

-- When the current token was granted: a holder has held the lease since then.
ALTER TABLE leases ADD COLUMN acquired_at timestamptz;

CREATE TABLE lease_takeovers (
    at         timestamptz NOT NULL,
    expired_at timestamptz NOT NULL,
    old_token  bigint NOT NULL,
    new_token  bigint NOT NULL,
    name       text COLLATE "C" NOT NULL,
    old_holder text NOT NULL,
    new_holder text NOT NULL
);
-- The most recent first, and forgetting old ones.
CREATE INDEX lease_takeovers_at ON lease_takeovers (at);
