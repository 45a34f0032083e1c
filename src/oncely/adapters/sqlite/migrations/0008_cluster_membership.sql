-- Cluster mode: who is running (members), since when a shard's holder holds it, and the
-- takeovers of leases whose holder let them expire.

-- One row per running oncely process, refreshed by its heartbeat; a stopping process
-- deletes its own. ``roles``: comma-separated among scheduler, worker, api.
CREATE TABLE members (
    id           TEXT PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    roles        TEXT NOT NULL,
    version      TEXT NOT NULL
);
CREATE INDEX members_heartbeat ON members (heartbeat_at);

-- When the current token was granted: a holder has held the lease since then.
ALTER TABLE leases ADD COLUMN acquired_at INTEGER;

CREATE TABLE lease_takeovers (
    at         INTEGER NOT NULL,
    expired_at INTEGER NOT NULL,
    old_token  INTEGER NOT NULL,
    new_token  INTEGER NOT NULL,
    name       TEXT NOT NULL,
    old_holder TEXT NOT NULL,
    new_holder TEXT NOT NULL
);
CREATE INDEX lease_takeovers_at ON lease_takeovers (at);
