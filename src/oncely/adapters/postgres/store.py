"""The PostgreSQL store.

Design notes:

- Pools of autocommit connections (``pool.Pool``: connect on demand, dead idle connections
  never handed out, short timeouts, so the store is usable again the moment the server is)
  whose ``search_path`` names only the store's schema (so every statement in ``queries.sql``
  is unqualified and several stores, e.g. one per test, share a database) and whose
  ``TimeZone`` is UTC. A method that is a single statement runs as its own transaction: one
  round trip. A method that needs several statements opens ``conn.transaction()``.
- Two pools: one for the runtime (scheduler, worker claims, heartbeats, completions, API
  reads), one for transactional tasks (``run_complete_with``), whose transactions last as long
  as user code runs. Slow tasks can exhaust only their own pool, never delay a heartbeat.
  A transactional task's transaction gets ``SET LOCAL statement_timeout`` from the job's
  timeout, and can be cancelled on the server from another thread (``TxControl``).
- Batches go to the server as arrays expanded with ``unnest``: the statement count of a method
  does not grow with its batch. Per method, in statements (plus BEGIN and COMMIT where a
  transaction is needed):

  ============================  ==============================================================
  run_claim                     candidates (FOR UPDATE SKIP LOCKED), start (tokens, RETURNING
                                the job's action); with overlap-guarded jobs also: lock those
                                jobs (SKIP LOCKED), read their live runs, skip, cancel
  run_heartbeat                 1 (autocommit)
  run_complete                  1 (autocommit; run updates and attempt rows in one statement),
                                +1 NOTIFY if a run was released back to its queue
  run_complete_with             the task's own, restore search_path, finish; then RESET
  lease_acquire / renew         1 (autocommit)
  fires_commit                  lock leases, advance jobs, insert runs, NOTIFY
  ============================  ==============================================================

- Fencing tokens come from the sequence ``fencing``; every granted lease and every claimed run
  takes ``nextval``. Writes under a lease compare the token in their WHERE clause.
- Runs that become claimable NOTIFY ``channel`` (derived from the schema, so stores in different
  schemas of one database do not wake each other) in the transaction that creates them: the
  notification is delivered on commit, when the run is visible.
- Ids are ``uuid`` columns. A string that is not a UUID (a user's URL) is parsed in Python and
  treated as an id that matches nothing, rather than sent to fail as a DataError.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow, dict_row

from oncely.adapters.codec import (
    apikey_from_row,
    attempt_from_row,
    audit_from_row,
    claimed_from_row,
    definition_changes,
    job_columns,
    job_from_row,
    job_version_from_row,
    policy_from_row,
    run_from_row,
    user_from_row,
)
from oncely.adapters.postgres.backfills import PostgresBackfills
from oncely.adapters.postgres.notify import PostgresNotifications, outbox_missed
from oncely.adapters.postgres.pool import Pool
from oncely.adapters.sqlfile import load_migrations, load_queries
from oncely.domain.errors import Conflict, InvalidInput, NotFound, StoreUnavailable
from oncely.domain.firing import FirePlan, PlannedRun
from oncely.domain.ids import new_uuids
from oncely.domain.jobs import Job, refuse_duplicate_names, refuse_taken_names
from oncely.domain.overlap import ClaimCandidate, overlap_settled, resolve_overlap
from oncely.domain.principal import Role
from oncely.domain.runs import CANCELLABLE_STATES, Attempt, Run, RunState
from oncely.domain.users import ApiKey, User
from oncely.ports.clock import TimeSample
from oncely.ports.store import (
    APIKEY_TOUCH_INTERVAL,
    MEMBER_RETENTION,
    TAKEOVER_RETENTION,
    AttemptResult,
    AuditEntry,
    Claimed,
    ClaimParams,
    CommitResult,
    ExpiredRun,
    JobQuery,
    JobVersion,
    Lease,
    Member,
    PayloadOverride,
    PruneBatch,
    QueueDepth,
    RetentionAges,
    RunQuery,
    Takeover,
    TransactionCancelled,
    TxControl,
)

T = TypeVar("T")
Q = load_queries("oncely.adapters.postgres", "queries.sql")
Conn = psycopg.Connection[TupleRow]
Row = dict[str, Any]

log = logging.getLogger(__name__)

MIN_SERVER_VERSION = 150000
"""PostgreSQL 15: the unique fire key is NULLS NOT DISTINCT (migration 0013)."""
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_CHANNEL_PREFIX = "oncely_due_"
_MAX_IDENTIFIER = 63  # NAMEDATALEN - 1: longer channel names are truncated by the server

# The listener's connection idles for long stretches: TCP keepalives detect a peer that
# vanished without closing (a failover, a dropped NAT entry) within about half a minute, and
# a bounded connect keeps a stop request from waiting on an unreachable server for minutes.
_LISTEN_PARAMS = {
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "connect_timeout": 2,
}


def notify_channel(schema: str) -> str:
    """The NOTIFY channel of a schema's store: readable when it fits, hashed when it does not."""
    channel = _CHANNEL_PREFIX + schema
    if len(channel.encode()) <= _MAX_IDENTIFIER:
        return channel
    return _CHANNEL_PREFIX + hashlib.blake2b(schema.encode(), digest_size=16).hexdigest()


def _uuid(value: str) -> UUID | None:
    """Parse an id; None for anything that is not a UUID (it can match no row)."""
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def _ts(value: datetime) -> datetime:
    return value


def _shard_of_lease(lease: Lease) -> int | None:
    prefix, _, number = lease.name.rpartition(":")
    return int(number) if prefix == "shard" and number.isdigit() else None


class PostgresStore(PostgresNotifications, PostgresBackfills):
    dialect = "postgresql"
    supports_listen = True

    def __init__(
        self,
        url: str,
        *,
        schema: str = "oncely",
        min_size: int = 0,
        max_size: int = 10,
        task_pool_size: int = 32,
        connect_timeout: float = 2.0,
        checkout_timeout: float = 5.0,
    ) -> None:
        del min_size  # connections are made on demand (kept for callers that pass it)
        if not _SCHEMA_NAME.match(schema):
            raise InvalidInput(
                "schema must be 1-63 letters, digits or '_', not starting with a digit",
                field="schema",
            )
        self.schema = schema
        self.channel = notify_channel(schema)
        # Keep whatever options the URL carries (statement_timeout...) and add ours.
        params = conninfo_to_dict(url)
        options = str(params.get("options") or "")
        self._search_path = f'"{schema}"'
        params["options"] = f"{options} -c search_path={self._search_path} -c TimeZone=UTC".strip()
        self._conninfo = make_conninfo("", **params)
        self._listen_conninfo = make_conninfo(self._conninfo, **_LISTEN_PARAMS)
        self._pool: Pool = Pool(
            self._conninfo,
            max_size=max_size,
            name=f"oncely-{schema}",
            connect_timeout=connect_timeout,
            checkout_timeout=checkout_timeout,
        )
        # Transactional tasks wait for a free connection as long as they must: they run on
        # their own threads, and the runtime bounds them with their timeout.
        self._task_pool = Pool(
            self._conninfo,
            max_size=task_pool_size,
            name=f"oncely-{schema}-tasks",
            connect_timeout=connect_timeout,
            checkout_timeout=3600.0,
        )

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Conn]:
        """A pooled connection inside one transaction: committed on exit, rolled back on error."""
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _read(self, query: str, params: dict[str, Any]) -> list[Row]:
        with self._pool.connection() as conn:
            return _fetch(conn, query, params)

    def close(self) -> None:
        self._pool.close()
        self._task_pool.close()

    # -- lifecycle ------------------------------------------------------------------------

    def migrate(self) -> int:
        try:
            return self._migrate()
        except psycopg.OperationalError as exc:
            if not _unreachable(exc):
                raise
            # The connection itself failed (refused, reset, the server starting or shutting
            # down): a starting process may wait for the database rather than exit.
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailable(f"PostgreSQL is unreachable: {message}") from exc

    def _migrate(self) -> int:
        key = int.from_bytes(
            hashlib.blake2b(f"oncely.migrate:{self.schema}".encode(), digest_size=8).digest(),
            "big",
            signed=True,
        )
        with self._tx() as conn:
            if conn.info.server_version < MIN_SERVER_VERSION:
                raise InvalidInput(
                    "oncely needs PostgreSQL 15 or newer (its unique fire key is NULLS NOT "
                    f"DISTINCT); this server is version {conn.info.server_version // 10000}"
                )
            # Concurrent migrators (several processes starting at once) queue here; the lock
            # goes with the transaction, so a crashed migrator cannot leave it behind.
            _fetch(conn, "migrate_lock", {"key": key})
            # Checked first: CREATE SCHEMA IF NOT EXISTS wants the CREATE privilege on the
            # database even when the schema exists, which an application role may lack.
            if not _fetch(conn, "schema_exists", {"schema": self.schema})[0]["present"]:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            conn.execute(Q["migrations_table"], prepare=False)
            applied = {r["version"] for r in _fetch(conn, "migrations_applied", {})}
            version = max(applied, default=0)
            for number, name, script in load_migrations("oncely.adapters.postgres"):
                if number in applied:
                    continue
                # Without parameters psycopg sends the script as a simple query: all of its
                # statements run, inside our transaction.
                conn.execute(script, prepare=False)
                conn.execute(Q["migration_record"], {"version": number, "name": name})
                version = number
        return version

    def schema_version(self) -> int:
        with self._pool.connection() as conn:
            if not _fetch(conn, "migrations_table_exists", {})[0]["present"]:
                return 0
            versions = [r["version"] for r in _fetch(conn, "migrations_applied", {})]
        return max(versions, default=0)

    def setup_warnings(self) -> list[str]:
        [row] = self._read("setup_checks", {})
        why = (
            "runs gains two dead row versions per fire and its claim index slows down with "
            "every one a vacuum has not removed (at 10,000 fires/s the workers fell minutes "
            "behind within a minute); see docs/postgresql.md"
        )
        warnings = []
        if not row["autovacuum"] or not row["track_counts"]:
            warnings.append(
                "PostgreSQL's autovacuum is off (autovacuum and track_counts must be on): " + why
            )
        elif not row["runs_autovacuum"]:
            warnings.append("autovacuum is disabled for the runs table: " + why)
        return warnings

    def db_now(self) -> datetime:
        now: datetime = self._read("db_now", {})[0]["now"]
        return now.astimezone(UTC)

    def db_time_sample(self) -> TimeSample:
        # The connection first, then the timed query: a wait for the pool (long while the
        # server is down) must not count as round trip (guarantee 5).
        with self._pool.connection() as conn:
            sent = time.monotonic()
            now: datetime = _fetch(conn, "db_now", {})[0]["now"]
            received = time.monotonic()
        return TimeSample(now.astimezone(UTC), sent, received)

    # -- jobs -----------------------------------------------------------------------------

    def job_create(
        self, job: Job, *, replace: bool = False, now: datetime, actor: str | None = None
    ) -> Job:
        params = {
            **job_columns(job),
            "id": UUID(job.id),
            "owner": job.owner,
            "name": job.name,
            "paused": job.paused,
            "next_fire_at": job.next_fire_at,
            "shard": job.shard,
            "version": job.version,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "now": now,
        }
        with self._tx() as conn:
            # Insert, or (replace) update the live job of that name. Twice at most: a job
            # deleted between our insert and our update frees its name for the second insert.
            for _ in range(2):
                if rows := _fetch(conn, "job_insert", params):
                    _audit_job(conn, actor, now, rows[0], "job.create")
                    return job_from_row(rows[0], _ts)
                if not replace:
                    raise Conflict(f"a job named {job.name!r} already exists")
                if not (locked := _fetch(conn, "job_lock_by_name", params)):
                    continue
                _exec(conn, "job_snapshot", {"id": locked[0]["id"], "now": now, "actor": actor})
                rows = _fetch(conn, "job_replace", params)
                _exec(
                    conn,
                    "runs_cancel_pending_of_job",
                    {"job_id": rows[0]["id"], "now": now, "due_after": None},
                )
                _audit_job(conn, actor, now, rows[0], "job.replace")
                return job_from_row(rows[0], _ts)
        raise Conflict(f"job {job.name!r} keeps changing concurrently; retry")

    def jobs_create(self, jobs: Sequence[Job], *, now: datetime, actor: str | None = None) -> int:
        refuse_duplicate_names(jobs)
        with self._tx() as conn:
            return self._jobs_create_in(conn, jobs, now, actor)

    def jobs_import(
        self,
        creates: Sequence[Job],
        updates: Sequence[tuple[Job, int]],
        *,
        now: datetime,
        actor: str | None = None,
    ) -> None:
        refuse_duplicate_names([*creates, *(job for job, _ in updates)])
        with self._tx() as conn:
            for job, version in updates:
                if self._job_update_in(conn, job.owner, job, version, now, actor) is None:
                    raise Conflict(f"job {job.name!r} was deleted meanwhile; import again")
            if creates:
                self._jobs_create_in(conn, creates, now, actor)

    def _jobs_create_in(
        self, conn: Conn, jobs: Sequence[Job], now: datetime, actor: str | None
    ) -> int:
        stored: set[tuple[str, str]] = set()
        # One transaction, statements of a bounded size (arrays of 1M rows would be
        # built in memory on both sides).
        for i in range(0, len(jobs), _BULK_CHUNK):
            chunk = jobs[i : i + _BULK_CHUNK]
            cols = [job_columns(j) for j in chunk]
            params = {
                "ids": [UUID(j.id) for j in chunk],
                "owners": [j.owner for j in chunk],
                "names": [j.name for j in chunk],
                "schedules": [c["schedule"] for c in cols],
                "actions": [c["action"] for c in cols],
                "payloads": [c["payload"] for c in cols],
                "policies": [c["policy"] for c in cols],
                "paused": [j.paused for j in chunk],
                "next_fire_ats": [j.next_fire_at for j in chunk],
                "shards": [j.shard for j in chunk],
                "now": now,
            }
            rows = _fetch(conn, "jobs_insert_many", params)
            stored.update((r["owner"], r["name"]) for r in rows)
            if len(rows) != len(chunk):
                refuse_taken_names(chunk, stored)
            if actor is not None:
                _exec(
                    conn,
                    "audit_insert_many",
                    {
                        "at": now,
                        "actor": actor,
                        "action": "job.create",
                        "target_kind": "job",
                        "owners": [j.owner for j in chunk],
                        "target_ids": [j.id for j in chunk],
                        "details": [
                            _json_text({"name": j.name, "version": j.version}) for j in chunk
                        ],
                    },
                )
        return len(stored)

    def job_get(self, owner: str | None, job_id: str) -> Job | None:
        uid = _uuid(job_id)
        rows = [] if uid is None else self._read("job_by_id", {"id": uid, "owner": owner})
        return job_from_row(rows[0], _ts) if rows else None

    def job_get_by_name(self, owner: str, name: str) -> Job | None:
        rows = self._read("job_by_name", {"owner": owner, "name": name})
        return job_from_row(rows[0], _ts) if rows else None

    def job_list(
        self, owner: str | None, *, limit: int = 100, after_name: str | None = None
    ) -> list[Job]:
        rows = self._read("job_list", {"owner": owner, "after_name": after_name, "limit": limit})
        return [job_from_row(r, _ts) for r in rows]

    def job_search(self, owner: str | None, query: JobQuery) -> list[Job]:
        after_uid = None if query.after is None else _uuid(query.after[1])
        if query.after is not None and after_uid is None:
            return []
        rows = self._read(
            "job_search_all" if owner is None else "job_search_owner",
            {
                "owner": owner,
                "limit": query.limit,
                "after_name": None if query.after is None else query.after[0],
                "after_id": after_uid,
                "name_contains": query.name_contains,
                "paused": query.paused,
                "queue": query.queue,
                "action_kind": query.action_kind,
                "last_outcome": None if query.last_outcome is None else str(query.last_outcome),
            },
        )
        return [job_from_row(r, _ts) for r in rows]

    def job_count(self, owner: str | None, query: JobQuery, *, cap: int = 10_000) -> int:
        rows = self._read(
            "job_count_all" if owner is None else "job_count_owner",
            {
                "owner": owner,
                "cap": cap,
                "name_contains": query.name_contains,
                "paused": query.paused,
                "queue": query.queue,
                "action_kind": query.action_kind,
                "last_outcome": None if query.last_outcome is None else str(query.last_outcome),
            },
        )
        return int(rows[0]["n"])

    def job_set_paused(
        self,
        owner: str | None,
        job_id: str,
        *,
        paused: bool,
        next_fire_at: datetime | None,
        now: datetime,
        actor: str | None = None,
    ) -> Job | None:
        uid = _uuid(job_id)
        if uid is None:
            return None
        with self._tx() as conn:
            rows = _fetch(
                conn,
                "job_set_paused",
                {
                    "id": uid,
                    "owner": owner,
                    "paused": paused,
                    "next_fire_at": next_fire_at,
                    "now": now,
                },
            )
            if not rows:
                return None
            if paused:
                _exec(
                    conn,
                    "runs_cancel_pending_of_job",
                    {"job_id": uid, "now": now, "due_after": now},
                )
            _audit_job(conn, actor, now, rows[0], "job.pause" if paused else "job.resume")
        return job_from_row(rows[0], _ts)

    def job_update(
        self,
        owner: str | None,
        job: Job,
        *,
        expected_version: int | None = None,
        now: datetime,
        actor: str | None = None,
    ) -> Job | None:
        if _uuid(job.id) is None:
            return None
        with self._tx() as conn:
            return self._job_update_in(conn, owner, job, expected_version, now, actor)

    def _job_update_in(
        self,
        conn: Conn,
        owner: str | None,
        job: Job,
        expected_version: int | None,
        now: datetime,
        actor: str | None,
    ) -> Job | None:
        uid = _uuid(job.id)
        if uid is None:
            return None
        rows = _fetch(conn, "job_lock_live", {"id": uid, "owner": owner})
        if not rows:
            return None
        current = job_from_row(rows[0], _ts)
        if expected_version is not None and current.version != expected_version:
            raise Conflict(
                f"job {current.name!r} is at version {current.version}, "
                f"not {expected_version}: it changed meanwhile; read it again",
            )
        changed = definition_changes(current, job)
        if not changed:
            return current
        _exec(conn, "job_snapshot", {"id": uid, "now": now, "actor": actor})
        try:
            with conn.transaction():
                rows = _fetch(
                    conn,
                    "job_update",
                    {
                        **job_columns(job),
                        "id": uid,
                        "name": job.name,
                        "next_fire_at": job.next_fire_at,
                        "now": now,
                    },
                )
        except psycopg.errors.UniqueViolation:
            raise Conflict(f"a job named {job.name!r} already exists") from None
        _exec(
            conn,
            "runs_cancel_pending_of_job",
            {"job_id": uid, "now": now, "due_after": None},
        )
        _audit_job(conn, actor, now, rows[0], "job.update", changed=changed)
        return job_from_row(rows[0], _ts)

    def job_versions_list(
        self,
        owner: str | None,
        job_id: str,
        *,
        limit: int = 100,
        before_version: int | None = None,
    ) -> list[JobVersion]:
        uid = _uuid(job_id)
        if uid is None:
            return []
        rows = self._read(
            "job_versions_list",
            {"job_id": uid, "owner": owner, "limit": limit, "before_version": before_version},
        )
        return [job_version_from_row(r, _ts) for r in rows]

    def job_delete(
        self, owner: str | None, job_id: str, *, now: datetime, actor: str | None = None
    ) -> bool:
        uid = _uuid(job_id)
        if uid is None:
            return False
        with self._tx() as conn:
            rows = _fetch(conn, "job_soft_delete", {"id": uid, "owner": owner, "now": now})
            if not rows:
                return False
            _exec(conn, "runs_cancel_waiting_of_job", {"job_id": uid, "now": now})
            _audit_job(conn, actor, now, rows[0], "job.delete")
        return True

    def job_trigger(
        self,
        owner: str | None,
        job_id: str,
        *,
        run_id: str,
        now: datetime,
        actor: str | None = None,
        payload: PayloadOverride | None = None,
    ) -> Run:
        uid = _uuid(job_id)
        if uid is None:
            raise NotFound(f"no job {job_id}")
        with self._tx() as conn:
            rows = _fetch(
                conn,
                "run_trigger",
                {
                    "id": UUID(run_id),
                    "job_id": uid,
                    "owner": owner,
                    "now": now,
                    "payload": None if payload is None else payload.text,
                },
            )
            if not rows:
                if not _fetch(conn, "job_by_id", {"id": uid, "owner": owner}):
                    raise NotFound(f"no job {job_id}")
                raise Conflict("a run of this job is already scheduled for this instant; retry")
            self._notify(conn, [rows[0]["queue"]])
            run = rows[0]
            _audit(
                conn,
                actor,
                now,
                owner=run["owner"],
                action="job.trigger",
                kind="job",
                target_id=str(run["job_id"]),
                details={"name": run["job_name"], "run_id": str(run["id"])},
            )
        return run_from_row(rows[0], _ts)

    # -- leases and scheduling ------------------------------------------------------------

    def lease_acquire(
        self, names: Sequence[str], holder: str, *, now: datetime, ttl: timedelta
    ) -> list[Lease]:
        if not names:
            return []
        # Sorted: concurrent acquirers lock rows in one order and cannot deadlock. Deduplicated:
        # an upsert may not touch one row twice.
        ordered = sorted(set(names))
        with self._tx() as conn:
            prior = {r["name"]: r for r in _fetch(conn, "leases_lock_prior", {"names": ordered})}
            rows = _fetch(
                conn,
                "lease_acquire",
                {"names": ordered, "holder": holder, "now": now, "expires_at": now + ttl},
            )
            # A takeover: the row was another holder's, it had expired, and we got a token.
            taken = [
                (r, prior[r["name"]])
                for r in rows
                if r["name"] in prior
                and prior[r["name"]]["holder"] != holder
                and prior[r["name"]]["token"] != r["token"]
            ]
            if taken:
                _exec(
                    conn,
                    "takeovers_insert",
                    {
                        "at": now,
                        "new_holder": holder,
                        "expired_ats": [p["expires_at"] for _, p in taken],
                        "old_tokens": [p["token"] for _, p in taken],
                        "new_tokens": [r["token"] for r, _ in taken],
                        "names": [r["name"] for r, _ in taken],
                        "old_holders": [p["holder"] for _, p in taken],
                    },
                )
                _exec(conn, "takeovers_forget", {"before": now - TAKEOVER_RETENTION})
        from_whom = {r["name"]: p for r, p in taken}
        by_name = {r["name"]: _lease(r) for r in rows}
        for name, p in from_whom.items():
            by_name[name] = replace(
                by_name[name], taken_from=p["holder"], taken_from_token=p["token"]
            )
        return [by_name[name] for name in dict.fromkeys(names) if name in by_name]

    def lease_renew(self, leases: Sequence[Lease], *, now: datetime, ttl: timedelta) -> list[Lease]:
        if not leases:
            return []
        rows = self._read(
            "lease_renew",
            {
                "names": [lease.name for lease in leases],
                "tokens": [lease.token for lease in leases],
                "holders": [lease.holder for lease in leases],
                "now": now,
                "expires_at": now + ttl,
            },
        )
        by_name = {r["name"]: _lease(r) for r in rows}
        return [by_name[lease.name] for lease in leases if lease.name in by_name]

    def lease_release(self, leases: Sequence[Lease]) -> None:
        if not leases:
            return
        with self._pool.connection() as conn:
            _exec(
                conn,
                "lease_release",
                {"names": [lease.name for lease in leases], "tokens": [x.token for x in leases]},
            )

    def lease_list(self, prefix: str) -> list[Lease]:
        return [_lease(r) for r in self._read("lease_list", {"prefix": prefix})]

    def takeover_list(self, *, limit: int = 20) -> list[Takeover]:
        return [Takeover(**r) for r in self._read("takeover_list", {"limit": limit})]

    # -- cluster membership ---------------------------------------------------------------

    def member_heartbeat(self, member: Member, *, now: datetime) -> None:
        with self._tx() as conn:
            _exec(
                conn,
                "member_upsert",
                {
                    "id": member.id,
                    "now": now,
                    "started_at": member.started_at,
                    "pid": member.pid,
                    "host": member.host,
                    "roles": ",".join(member.roles),
                    "version": member.version,
                },
            )
            _exec(conn, "members_forget", {"before": now - MEMBER_RETENTION})

    def member_leave(self, member_id: str) -> None:
        with self._pool.connection() as conn:
            _exec(conn, "member_delete", {"id": member_id})

    def member_list(self) -> list[Member]:
        return [
            Member(
                id=r["id"],
                host=r["host"],
                pid=r["pid"],
                roles=tuple(filter(None, r["roles"].split(","))),
                version=r["version"],
                started_at=r["started_at"],
                heartbeat_at=r["heartbeat_at"],
            )
            for r in self._read("member_list", {})
        ]

    def queue_depths(self, *, now: datetime) -> list[QueueDepth]:
        return [QueueDepth(**r) for r in self._read("queue_depths", {"now": now})]

    def jobs_due(self, shards: Sequence[int], horizon: datetime, limit: int) -> list[Job]:
        rows = self._read("jobs_due", {"shards": list(shards), "horizon": horizon, "limit": limit})
        return [job_from_row(r, _ts) for r in rows]

    def fires_commit(
        self, leases: Sequence[Lease], plans: Sequence[tuple[int, FirePlan]], *, now: datetime
    ) -> CommitResult:
        if not plans:
            return CommitResult(0, 0, frozenset())
        planned_shards = {shard for shard, _ in plans}
        mine = [x for x in leases if _shard_of_lease(x) in planned_shards]
        with self._tx() as conn:
            held = (
                _fetch(
                    conn,
                    "leases_lock_valid",
                    {
                        "names": [x.name for x in mine],
                        "tokens": [x.token for x in mine],
                        "now": now,
                    },
                )
                if mine
                else []
            )
            held_names = {r["name"] for r in held}
            valid = {_shard_of_lease(x) for x in mine if x.name in held_names}
            # Sorted by job id: one row-lock order for every writer of jobs.
            kept = sorted(
                (plan for shard, plan in plans if shard in valid), key=lambda p: UUID(p.job_id)
            )
            advanced: set[UUID] = set()
            if kept:
                advanced = {
                    r["id"]
                    for r in _fetch(
                        conn,
                        "jobs_advance",
                        {
                            "ids": [UUID(p.job_id) for p in kept],
                            "versions": [p.job_version for p in kept],
                            "old_next_fire_ats": [p.old_next_fire_at for p in kept],
                            "next_fire_ats": [p.next_fire_at for p in kept],
                        },
                    )
                }
            created = self._insert_planned(
                conn, [p for p in kept if UUID(p.job_id) in advanced], now
            )
        return CommitResult(created, len(advanced), frozenset(planned_shards - valid))

    def _insert_planned(self, conn: Conn, plans: Sequence[FirePlan], now: datetime) -> int:
        job_ids: list[UUID] = []
        runs: list[PlannedRun] = []
        for plan in plans:
            job_id = UUID(plan.job_id)  # once per job: a plan holds one or more fires
            job_ids += [job_id] * len(plan.runs)
            runs += plan.runs
        if not runs:
            return 0
        ids = new_uuids(int(now.timestamp() * 1000), len(runs))
        [row] = _fetch(
            conn,
            "runs_insert_planned",
            {
                "ids": ids,
                "job_ids": job_ids,
                "scheduled_fors": [run.scheduled_for for run in runs],
                "due_ats": [run.due_at for run in runs],
                "states": [run.state.value for run in runs],
                "fires": [run.fires for run in runs],
                "first_fires": [run.first_fire for run in runs],
                "finished_ats": [now if run.state is RunState.MISSED else None for run in runs],
                "now": now,
            },
        )
        self._notify(conn, row["queues"] or [])
        # Missed fires' notifications commit with them (only runs this insert created match).
        outbox_missed(
            conn,
            [i for i, run in zip(ids, runs, strict=True) if run.state is RunState.MISSED],
            now,
        )
        return int(row["created"])

    def _notify(self, conn: Conn, queues: Sequence[str]) -> None:
        if queues:
            _exec(conn, "notify_due", {"channel": self.channel, "queues": sorted(set(queues))})

    # -- runs: the worker side ------------------------------------------------------------

    def run_claim(self, params: ClaimParams) -> Claimed:
        now = params.now
        with self._tx() as conn:
            candidates = _fetch(
                conn,
                "claim_candidates",
                {
                    "queue": params.queue,
                    "now": now,
                    "horizon": max(now, params.prefetch_until or now),
                    "limit": params.limit,
                },
            )
            if not candidates:
                return Claimed()
            ids: list[UUID] = [r["id"] for r in candidates]
            settled: dict[str, list[tuple[str, str]]] = {}
            if any(r["overlap"] != "allow" for r in candidates):
                ids, settled = _apply_overlap(conn, candidates, now)
                if not ids:
                    return Claimed((), **settled)
            rows = _fetch(
                conn,
                "runs_start",
                {
                    "ids": ids,
                    "worker_id": params.worker_id,
                    "lease_expires_at": now + params.lease_ttl,
                    "now": now,
                },
            )
        rows.sort(key=lambda r: r["ord"])
        return Claimed([claimed_from_row(r, _ts) for r in rows], **settled)

    def run_heartbeat(
        self, worker_id: str, held: Sequence[tuple[str, int]], *, now: datetime, ttl: timedelta
    ) -> set[str]:
        # Sorted by run id, like every batch that locks runs: one lock order, no deadlocks.
        parsed = ((_uuid(run_id), token) for run_id, token in held)
        pairs = sorted(((u, t) for u, t in parsed if u is not None), key=lambda p: p[0].int)
        if not pairs:
            return set()
        rows = self._read(
            "runs_heartbeat",
            {
                "ids": [uid for uid, _ in pairs],
                "tokens": [token for _, token in pairs],
                "worker_id": worker_id,
                "lease_expires_at": now + ttl,
            },
        )
        return {str(r["id"]) for r in rows}

    def run_complete(self, results: Sequence[AttemptResult]) -> list[bool]:
        if not results:
            return []
        with self._pool.connection() as conn:
            return self._finish(conn, results)

    def run_complete_with(
        self,
        result: Callable[[T], AttemptResult],
        effect: Callable[[Any], T],
        *,
        timeout: float | None = None,
        control: TxControl | None = None,
    ) -> tuple[bool, T | None]:
        with self._task_pool.connection() as conn:
            try:
                with conn.transaction():
                    if timeout is not None:
                        # Every statement of the task is bounded by the job's timeout.
                        _exec(
                            conn,
                            "statement_timeout_local",
                            {"ms": str(max(1, int(timeout * 1000)))},
                        )
                    if control is not None:
                        control.bind(conn.cancel_safe)
                    try:
                        value = effect(conn)
                    finally:
                        if control is not None:
                            control.bind(None)
                    if control is not None and control.cancelled:
                        raise TransactionCancelled("the attempt was cancelled")
                    # The task may have moved search_path (a tenant schema...): our statements
                    # must find our tables again, until the transaction ends.
                    _exec(conn, "search_path_restore", {"search_path": self._search_path})
                    if self._finish(conn, [result(value)])[0]:
                        return True, value
                    # Refused: the effect's writes go with the rollback.
                    raise psycopg.Rollback
                return False, None
            finally:
                _reset_session(conn)

    def _finish(self, conn: Conn, results: Sequence[AttemptResult]) -> list[bool]:
        """Record results in one statement; per result, whether it was accepted."""
        # Sorted by run id: concurrent batches (a worker's and the reaper's) lock in one order.
        parsed = ((_uuid(r.run_id), i) for i, r in enumerate(results))
        order = sorted(((u, i) for u, i in parsed if u is not None), key=lambda p: p[0].int)
        accepted = [False] * len(results)
        if not order:
            return accepted
        batch = [results[i] for _, i in order]
        rows = _fetch(
            conn,
            "runs_finish",
            {
                "ids": [uid for uid, _ in order],
                "tokens": [r.token for r in batch],
                "states": [r.decision.state.value for r in batch],
                "failures": [r.decision.failures for r in batch],
                "due_ats": [r.decision.due_at for r in batch],
                "run_finished_ats": [
                    None if r.decision.due_at is not None else r.finished_at for r in batch
                ],
                "expired_befores": [r.expired_before for r in batch],
                "numbers": [r.attempt for r in batch],
                "worker_ids": [r.worker_id for r in batch],
                "started_ats": [r.started_at for r in batch],
                "finished_ats": [r.finished_at for r in batch],
                "outcomes": [r.outcome.value for r in batch],
                "errors": [r.error for r in batch],
                "outputs": [r.output for r in batch],
            },
        )
        for row in rows:
            accepted[order[row["ord"] - 1][1]] = True
        # A run given back (released) is claimable at once: wake the workers of its queue.
        self._notify(conn, [r["queue"] for r in rows if r["state"] == RunState.QUEUED.value])
        return accepted

    def runs_expired(self, *, now: datetime, limit: int) -> list[ExpiredRun]:
        return [
            ExpiredRun(
                run_id=str(r["id"]),
                token=r["token"],
                attempt=r["attempt"],
                failures=r["failures"],
                worker_id=r["worker_id"],
                started_at=r["started_at"],
                policy=policy_from_row(r["policy"]),
                job_id=str(r["job_id"]),
                job_name=r["job_name"],
                queue=r["queue"],
            )
            for r in self._read("runs_expired", {"now": now, "limit": limit})
        ]

    def runs_next_due(self, queues: Sequence[str]) -> datetime | None:
        if not queues:
            return None
        due: datetime | None = self._read("runs_next_due", {"queues": list(queues)})[0]["due"]
        return due

    def listen(self, on_due: Callable[[], None], stop: threading.Event) -> None:
        """Wake ``on_due`` per notification on our channel until ``stop``; reconnect on loss.

        A dedicated connection (a pooled one would be taken from the workers for good). After a
        reconnection ``on_due`` is called once: notifications sent while we were away are lost.
        """
        delay = 0.1
        connected_before = False
        while not stop.is_set():
            try:
                with psycopg.connect(self._listen_conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    delay = 0.1
                    if connected_before:
                        _call(on_due)
                    connected_before = True
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            _call(on_due)
                            if stop.is_set():
                                break
            except Exception:
                if stop.is_set():
                    break
                log.warning("listen connection lost; reconnecting in %.1f s", delay, exc_info=True)
                stop.wait(delay)
                # Capped low: a restarted server is listened to again within half a second.
                delay = min(delay * 2, 0.5)

    # -- runs: the reading and admin side -------------------------------------------------

    def run_get(self, owner: str | None, run_id: str) -> Run | None:
        uid = _uuid(run_id)
        rows = [] if uid is None else self._read("run_by_id", {"id": uid, "owner": owner})
        return run_from_row(rows[0], _ts) if rows else None

    def run_list(
        self,
        owner: str | None,
        *,
        job_id: str | None = None,
        states: Sequence[RunState] | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        job_uid = None if job_id is None else _uuid(job_id)
        before_uid = None if before is None else _uuid(before[1])
        if (job_id is not None and job_uid is None) or (before is not None and before_uid is None):
            return []
        rows = self._read(
            "run_list",
            {
                "owner": owner,
                "job_id": job_uid,
                "states": None if states is None else [str(s) for s in states],
                "before_at": None if before is None else before[0],
                "before_id": before_uid,
                "limit": limit,
            },
        )
        return [run_from_row(r, _ts) for r in rows]

    def run_search(self, owner: str | None, query: RunQuery) -> list[Run]:
        job_uid = None if query.job_id is None else _uuid(query.job_id)
        before_uid = None if query.before is None else _uuid(query.before[1])
        if (query.job_id is not None and job_uid is None) or (
            query.before is not None and before_uid is None
        ):
            return []
        if job_uid is not None:
            name = "run_search_job"
        else:
            name = "run_search_all" if owner is None else "run_search_owner"
        rows = self._read(
            name,
            {
                "owner": owner,
                "job_id": job_uid,
                "states": None if query.states is None else [str(s) for s in query.states],
                "since": query.since,
                "until": query.until,
                "worker": query.worker or None,
                "before_at": None if query.before is None else query.before[0],
                "before_id": before_uid,
                "limit": query.limit,
            },
        )
        return [run_from_row(r, _ts) for r in rows]

    def attempt_list(self, owner: str | None, run_id: str) -> list[Attempt]:
        uid = _uuid(run_id)
        if uid is None:
            return []
        rows = self._read("attempt_list", {"run_id": uid, "owner": owner})
        return [attempt_from_row(r, _ts) for r in rows]

    def run_cancel(
        self, owner: str | None, run_id: str, *, now: datetime, actor: str | None = None
    ) -> Run | None:
        uid = _uuid(run_id)
        if uid is None:
            return None
        with self._tx() as conn:
            rows = _fetch(conn, "run_by_id", {"id": uid, "owner": owner})
            if not rows:
                return None
            state = RunState(rows[0]["state"])
            cancelled = state in CANCELLABLE_STATES and _fetch(
                conn,
                "runs_cancel",
                {"ids": [uid], "now": now, "reason": "cancelled by a user"},
            )
            if not cancelled:
                # Ended before we got to it (possibly between our read and the locked update).
                raise Conflict(f"run {run_id} has already ended ({state})")
            rows = _fetch(conn, "run_by_id", {"id": uid, "owner": None})
            _audit_run(conn, actor, now, rows[0], "run.cancel")
        return run_from_row(rows[0], _ts)

    def run_requeue(
        self, owner: str | None, run_id: str, *, now: datetime, actor: str | None = None
    ) -> Run | None:
        uid = _uuid(run_id)
        if uid is None:
            return None
        with self._tx() as conn:
            rows = _fetch(conn, "run_requeue", {"id": uid, "owner": owner, "now": now})
            if not rows:
                current = _fetch(conn, "run_by_id", {"id": uid, "owner": owner})
                if not current:
                    return None
                raise Conflict(
                    f"only dead runs can be requeued; run {run_id} is {current[0]['state']}"
                )
            self._notify(conn, [rows[0]["queue"]])
            _audit_run(conn, actor, now, rows[0], "run.requeue")
        return run_from_row(rows[0], _ts)

    def run_counts(self, owner: str | None) -> dict[str, int]:
        rows = self._read("run_counts", {"owner": owner})
        return {r["state"]: r["n"] for r in rows if r["n"]}

    # -- retention ------------------------------------------------------------------------

    def runs_prune(
        self,
        ages: RetentionAges,
        *,
        now: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> PruneBatch:
        cutoffs = ages.cutoffs(now)
        shortest = self._read("retention_shortest_job_age", {})[0]["shortest"]
        horizon = ages.horizon(now, shortest)
        if horizon is None:
            return PruneBatch(0, 0, None)
        after_at, after_id = after if after is not None else (_EPOCH, _NIL_ID)
        with self._tx() as conn:
            [row] = _fetch(
                conn,
                "runs_prune",
                {
                    "after_at": after_at,
                    "after_id": _uuid(after_id) or UUID(int=0),
                    "horizon": horizon,
                    "now": now,
                    **cutoffs,
                    "limit": limit,
                },
            )
        more = row["picked"] >= limit and row["last_at"] is not None
        next_after = (row["last_at"], str(row["last_id"])) if more else None
        return PruneBatch(row["runs"], row["attempts"], next_after)

    def jobs_purge(self, *, before: datetime, limit: int) -> int:
        with self._tx() as conn:
            return len(_fetch(conn, "jobs_purge", {"before": before, "limit": limit}))

    # -- users, API keys, secrets ---------------------------------------------------------

    def user_create(self, user: User, *, now: datetime, actor: str | None = None) -> User:
        with self._tx() as conn:
            if not _fetch(conn, "user_insert", _user_params(user)):
                raise Conflict(f"a user named {user.name!r} already exists")
            _audit_user(conn, actor, now, user, "user.create", {"role": user.role.value})
        return user

    def user_create_first(self, user: User, *, now: datetime) -> bool:
        key = _lock_key(f"oncely.first_user:{self.schema}")
        with self._tx() as conn:
            _fetch(conn, "users_lock", {"key": key})
            if _fetch(conn, "user_any", {})[0]["present"]:
                return False
            if not _fetch(conn, "user_insert", _user_params(user)):
                return False
            _audit_user(conn, "system", now, user, "user.create", {"role": user.role.value})
        return True

    def user_get(self, user_id: str) -> User | None:
        uid = _uuid(user_id)
        rows = [] if uid is None else self._read("user_by_id", {"id": uid})
        return user_from_row(rows[0], _ts) if rows else None

    def user_get_by_name(self, name: str) -> User | None:
        rows = self._read("user_by_name", {"name": name})
        return user_from_row(rows[0], _ts) if rows else None

    def user_list(self, *, limit: int = 100, after_name: str | None = None) -> list[User]:
        rows = self._read("user_list", {"after_name": after_name, "limit": limit})
        return [user_from_row(r, _ts) for r in rows]

    def user_set_password(
        self,
        user_id: str,
        password_hash: str,
        *,
        now: datetime,
        actor: str | None = None,
        end_sessions: bool = True,
    ) -> bool:
        uid = _uuid(user_id)
        if uid is None:
            return False
        with self._tx() as conn:
            rows = _fetch(
                conn,
                "user_set_password",
                {
                    "id": uid,
                    "password_hash": password_hash,
                    "now": now,
                    "end_sessions": int(end_sessions),
                },
            )
            if not rows:
                return False
            _audit_user(conn, actor, now, user_from_row(rows[0], _ts), "user.password", {})
        return True

    def user_set_role(
        self, user_id: str, role: Role, *, now: datetime, actor: str | None = None
    ) -> User | None:
        uid = _uuid(user_id)
        if uid is None:
            return None
        with self._tx() as conn:
            rows = _fetch(conn, "user_set_role", {"id": uid, "role": role.value, "now": now})
            if not rows:
                return None
            user = user_from_row(rows[0], _ts)
            _audit_user(conn, actor, now, user, "user.role", {"role": role.value})
        return user

    def user_disable(
        self, user_id: str, *, disabled: bool = True, now: datetime, actor: str | None = None
    ) -> User | None:
        uid = _uuid(user_id)
        if uid is None:
            return None
        with self._tx() as conn:
            rows = _fetch(conn, "user_set_disabled", {"id": uid, "disabled": disabled, "now": now})
            if not rows:
                return None
            user = user_from_row(rows[0], _ts)
            _audit_user(conn, actor, now, user, "user.disable" if disabled else "user.enable", {})
        return user

    def apikey_create(self, key: ApiKey, *, now: datetime, actor: str | None = None) -> ApiKey:
        user_uid = _uuid(key.user_id)
        if user_uid is None:
            raise NotFound(f"no user {key.user_id}")
        with self._tx() as conn:
            try:
                with conn.transaction():
                    inserted = _fetch(conn, "apikey_insert", _apikey_params(key, user_uid))
            except psycopg.errors.ForeignKeyViolation:
                raise NotFound(f"no user {key.user_id}") from None
            if not inserted:
                raise Conflict("an API key with this prefix exists; create it again")
            _audit_key(conn, actor, now, key, "apikey.create")
        return key

    def apikey_get_by_prefix(self, prefix: str) -> ApiKey | None:
        rows = self._read("apikey_by_prefix", {"prefix": prefix})
        return apikey_from_row(rows[0], _ts) if rows else None

    def apikey_list(self, user_id: str | None, *, limit: int = 100) -> list[ApiKey]:
        uid = None if user_id is None else _uuid(user_id)
        if user_id is not None and uid is None:
            return []
        rows = self._read("apikey_list", {"user_id": uid, "limit": limit})
        return [apikey_from_row(r, _ts) for r in rows]

    def apikey_revoke(
        self,
        key_id: str,
        *,
        user_id: str | None = None,
        now: datetime,
        actor: str | None = None,
    ) -> ApiKey | None:
        kid = _uuid(key_id)
        user_uid = None if user_id is None else _uuid(user_id)
        if kid is None or (user_id is not None and user_uid is None):
            return None
        with self._tx() as conn:
            rows = _fetch(conn, "apikey_revoke", {"id": kid, "user_id": user_uid, "now": now})
            if not rows:
                return None
            key = apikey_from_row(rows[0], _ts)
            _audit_key(conn, actor, now, key, "apikey.revoke")
        return key

    def apikey_touch(self, key_id: str, *, now: datetime) -> None:
        kid = _uuid(key_id)
        if kid is None:
            return
        with self._pool.connection() as conn:
            _exec(
                conn,
                "apikey_touch",
                {"id": kid, "now": now, "stale_before": now - APIKEY_TOUCH_INTERVAL},
            )

    def secret_get_or_create(self, name: str, candidate: bytes, *, now: datetime) -> bytes:
        with self._pool.connection() as conn:
            _exec(conn, "secret_insert", {"name": name, "value": candidate, "now": now})
            rows = _fetch(conn, "secret_get", {"name": name})
        return bytes(rows[0]["value"])

    def secret_replace(self, name: str, value: bytes, *, now: datetime) -> None:
        with self._pool.connection() as conn:
            _exec(conn, "secret_replace", {"name": name, "value": value, "now": now})

    # -- audit ----------------------------------------------------------------------------

    def audit_record(
        self,
        actor: str,
        action: str,
        *,
        target_kind: str,
        target_id: str | None = None,
        owner: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime,
    ) -> None:
        with self._pool.connection() as conn:
            _audit(
                conn,
                actor,
                now,
                owner=owner,
                action=action,
                kind=target_kind,
                target_id=target_id,
                details=details or {},
            )

    def audit_list(
        self,
        owner: str | None,
        *,
        target_kind: str | None = None,
        target_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before: tuple[datetime, int] | None = None,
    ) -> list[AuditEntry]:
        params: dict[str, Any] = {
            "owner": owner,
            "target_kind": target_kind,
            "target_id": target_id,
            "since": _TIME_MIN if since is None else since,
            "until": _TIME_MAX if until is None else until,
            "before_at": _TIME_MAX if before is None else before[0],
            "before_id": _ID_MAX if before is None else before[1],
            "limit": limit,
        }
        if target_kind is not None and target_id is not None:
            query = "audit_list_target"
        elif owner is not None:
            query = "audit_list_owner"
        else:
            query = "audit_list_all"
        return [audit_from_row(r, _ts) for r in self._read(query, params)]


# -- helpers ------------------------------------------------------------------------------


_TIME_MIN = datetime(1, 1, 2, tzinfo=UTC)
_TIME_MAX = datetime(9999, 12, 30, tzinfo=UTC)
_ID_MAX = 2**63 - 1


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NIL_ID = "00000000-0000-0000-0000-000000000000"


def _lock_key(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _json_text(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _audit(
    conn: Conn,
    actor: str | None,
    now: datetime,
    *,
    owner: str | None,
    action: str,
    kind: str,
    target_id: str | None,
    details: dict[str, Any],
) -> None:
    """Append an audit entry in the caller's transaction; nothing without an actor."""
    if actor is None:
        return
    _exec(
        conn,
        "audit_insert",
        {
            "at": now,
            "actor": actor,
            "owner": owner,
            "action": action,
            "target_kind": kind,
            "target_id": target_id,
            "details": _json_text(details),
        },
    )


def _audit_job(
    conn: Conn,
    actor: str | None,
    now: datetime,
    row: Row,
    action: str,
    *,
    changed: list[str] | None = None,
) -> None:
    details: dict[str, Any] = {"name": row["name"]}
    if "version" in row:
        details["version"] = row["version"]
    if changed is not None:
        details["changed"] = changed
    _audit(
        conn,
        actor,
        now,
        owner=row["owner"],
        action=action,
        kind="job",
        target_id=str(row["id"]),
        details=details,
    )


def _audit_run(conn: Conn, actor: str | None, now: datetime, row: Row, action: str) -> None:
    _audit(
        conn,
        actor,
        now,
        owner=row["owner"],
        action=action,
        kind="run",
        target_id=str(row["id"]),
        details={"job_id": str(row["job_id"]), "job": row["job_name"]},
    )


def _audit_user(
    conn: Conn,
    actor: str | None,
    now: datetime,
    user: User,
    action: str,
    details: dict[str, Any],
) -> None:
    _audit(
        conn,
        actor,
        now,
        owner=None,
        action=action,
        kind="user",
        target_id=user.id,
        details={"name": user.name, **details},
    )


def _audit_key(conn: Conn, actor: str | None, now: datetime, key: ApiKey, action: str) -> None:
    _audit(
        conn,
        actor,
        now,
        owner=None,
        action=action,
        kind="apikey",
        target_id=key.id,
        details={"name": key.name, "prefix": key.prefix, "user_id": key.user_id},
    )


def _user_params(user: User) -> dict[str, Any]:
    uid = _uuid(user.id)
    if uid is None:
        raise InvalidInput("user id must be a UUID", field="id")
    return {
        "id": uid,
        "name": user.name,
        "password_hash": user.password_hash,
        "role": user.role.value,
        "owner": user.owner,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "disabled_at": user.disabled_at,
    }


def _apikey_params(key: ApiKey, user_uid: UUID) -> dict[str, Any]:
    kid = _uuid(key.id)
    if kid is None:
        raise InvalidInput("key id must be a UUID", field="id")
    return {
        "id": kid,
        "prefix": key.prefix,
        "secret_hash": key.secret_hash,
        "user_id": user_uid,
        "name": key.name,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }


_BULK_CHUNK = 5000


# Batch statements that join an array of ids to runs: planned for each call's own arrays,
# never prepared. A prepared statement switches to a generic plan after a few calls, and the
# generic plan cannot see an array's length: it took a 500-run batch for one row and
# rescanned the whole array for each run it updated (250,000 comparisons; runs_finish went
# from ~5 ms to 100-250 ms a batch at 10,000 fires/s). Planning these costs well under a
# millisecond a batch.
_PLANNED_PER_CALL = frozenset({"runs_finish", "runs_start", "runs_heartbeat"})


def _fetch(conn: Conn, query: str, params: dict[str, Any]) -> list[Row]:
    # Binary results: uuids and timestamps decode without parsing text.
    with conn.cursor(row_factory=dict_row, binary=True) as cur:
        cur.execute(Q[query], params, prepare=False if query in _PLANNED_PER_CALL else None)
        return cur.fetchall()


def _exec(conn: Conn, query: str, params: dict[str, Any]) -> None:
    conn.execute(Q[query], params)


def _reset_session(conn: Conn) -> None:
    """Undo session state a transactional task may have left on a pooled connection (a
    ``SET search_path`` would break every later statement on it). If that fails, close the
    connection: the pool replaces it rather than hand it out as it is."""
    if conn.closed or conn.broken:
        return
    try:
        conn.execute(Q["session_reset"], prepare=False)
    except psycopg.Error:
        log.warning("could not reset a connection after a transactional task", exc_info=True)
        conn.close()


def _call(on_due: Callable[[], None]) -> None:
    """A failing callback must not end the listener."""
    try:
        on_due()
    except Exception:
        log.exception("listen callback failed")


def _lease(row: Row) -> Lease:
    return Lease(
        row["name"], row["holder"], row["token"], row["expires_at"], row.get("acquired_at")
    )


def _apply_overlap(
    conn: Conn, candidates: list[Row], now: datetime
) -> tuple[list[UUID], dict[str, list[tuple[str, str]]]]:
    """Decide overlap for the candidates of guarded jobs; return the run ids to claim, in
    candidate (claim) order, and the (run id, job id) pairs skipped and cancelled (written
    here)."""
    guarded = {r["job_id"] for r in candidates if r["overlap"] != "allow"}
    locked = {r["id"] for r in _fetch(conn, "jobs_lock", {"ids": sorted(guarded)})}
    # Candidates of a guarded job another claimer holds stay as they are, for a later claim.
    deciding = [r for r in candidates if r["job_id"] in locked or r["overlap"] == "allow"]
    picked = {r["id"] for r in deciding}
    live: dict[str, list[str]] = {}
    if locked:
        for row in _fetch(conn, "runs_live_of_jobs", {"job_ids": sorted(locked)}):
            if row["id"] not in picked:
                live.setdefault(str(row["job_id"]), []).append(str(row["id"]))
    deciding_candidates = [
        ClaimCandidate(str(r["id"]), str(r["job_id"]), r["overlap"], r["scheduled_for"])
        for r in deciding
    ]
    decision = resolve_overlap(deciding_candidates, live)
    if decision.skip:
        _exec(
            conn,
            "runs_skip",
            {
                "ids": [UUID(i) for i in decision.skip],
                "now": now,
                "reason": "skipped: a run of this job was live",
            },
        )
    if decision.cancel:
        _exec(
            conn,
            "runs_cancel",
            {
                "ids": [UUID(i) for i in decision.cancel],
                "now": now,
                "reason": "cancelled: replaced by a newer run",
            },
        )
    chosen = set(decision.claim)
    settled = overlap_settled(decision, deciding_candidates, live)
    return [r["id"] for r in deciding if str(r["id"]) in chosen], settled


__all__ = ["PostgresStore", "notify_channel"]


def _unreachable(exc: psycopg.OperationalError) -> bool:
    """A failure to reach the server, worth waiting out (refused, timed out, reset, the
    server starting or shutting down), unlike a wrong password, role or database: waiting
    would not fix those. libpq reports connection failures without a SQLSTATE, so those
    are told apart by the server's message (an unknown, e.g. localized, one is waited on:
    the wait is bounded)."""
    state = exc.sqlstate
    if state is not None:
        return state.startswith(("08", "57P"))
    text = str(exc)
    return not any(marker in text for marker in _PERMANENT_CONNECT_ERRORS)


_PERMANENT_CONNECT_ERRORS = (
    "does not exist",  # database or role
    "authentication failed",
    "pg_hba.conf",
    "permission denied",
    "invalid connection option",
)
