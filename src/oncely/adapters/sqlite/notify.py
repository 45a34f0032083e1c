"""The SQLite store's notification tables: channels, rules, the outbox and the dead-man's
switch. ``SqliteStore`` inherits these methods; ``outbox_after_attempt`` and
``outbox_missed`` run inside the store's own transactions (``_finish``, ``fires_commit``),
which is what makes a notification commit with the outcome that causes it.

Cost on the hot path: a success reads its job's row once (in process, by primary key) and
writes nothing unless the job was failing or has a dead-man's deadline; a failure marks the
job failing and inserts the matching rules' notifications (an indexed join on the rules).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from oncely.adapters.codec import from_micros, to_micros
from oncely.adapters.notify_codec import (
    channel_from_row,
    delivery_from_row,
    due_from_row,
    missing_from_row,
    notification_from_row,
    rule_from_row,
    rule_params,
)
from oncely.adapters.sqlfile import load_queries
from oncely.domain.errors import Conflict
from oncely.domain.notify import (
    Channel,
    DeadmanSweep,
    Delivery,
    DueNotification,
    MissingJob,
    Notification,
    NotificationState,
    Rule,
)
from oncely.domain.runs import COUNTS_AS_FAILURE, AttemptOutcome, RunState
from oncely.ports.store import AttemptResult

N = load_queries("oncely.adapters.sqlite", "notify.sql")
_AUDIT = load_queries("oncely.adapters.sqlite", "queries.sql")["audit_insert"]


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def outbox_after_attempt(conn: sqlite3.Connection, result: AttemptResult) -> None:
    """In the transaction that recorded ``result``: keep the job's failing flag and dead-man
    deadline, and write the notifications the outcome causes."""
    now = to_micros(result.finished_at)
    if result.outcome in COUNTS_AS_FAILURE:
        conn.execute(N["job_mark_failing"], {"run_id": result.run_id})
        _run_event(
            conn,
            result.run_id,
            "failure",
            f"failure:{result.run_id}:{result.attempt}",
            result.attempt,
            now,
        )
        if result.decision.state is RunState.DEAD:
            _run_event(conn, result.run_id, "dead", f"dead:{result.run_id}", result.attempt, now)
    elif result.outcome is AttemptOutcome.SUCCEEDED:
        job = conn.execute(N["job_success_state"], {"run_id": result.run_id}).fetchone()
        if job is None or (not job["failing"] and job["deadline"] is None):
            return  # the common case: nothing to write
        conn.execute(
            N["job_mark_succeeded"],
            {"id": job["id"], "deadline": job["deadline"], "finished_at": now},
        )
        if job["failing"]:
            _run_event(
                conn, result.run_id, "recovery", f"recovery:{result.run_id}", result.attempt, now
            )


def outbox_missed(conn: sqlite3.Connection, run_ids: list[str], now: datetime) -> None:
    for run_id in run_ids:
        _run_event(conn, run_id, "missed", f"missed:{run_id}", 0, to_micros(now))


def _run_event(
    conn: sqlite3.Connection, run_id: str, event: str, key: str, attempt: int, now: int
) -> None:
    conn.execute(
        N["outbox_run_event"],
        {"run_id": run_id, "event": event, "dedupe_key": key, "attempt": attempt, "now": now},
    )


def _audit(
    conn: sqlite3.Connection,
    actor: str | None,
    now: datetime,
    action: str,
    *,
    owner: str | None,
    kind: str,
    target_id: str,
    details: dict[str, Any],
) -> None:
    if actor is None:
        return
    conn.execute(
        _AUDIT,
        {
            "at": to_micros(now),
            "actor": actor,
            "owner": owner,
            "action": action,
            "target_kind": kind,
            "target_id": target_id,
            "details": json.dumps(details, separators=(",", ":"), default=str),
        },
    )


class SqliteNotifications:
    if TYPE_CHECKING:

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _conn(self) -> sqlite3.Connection: ...

    def _nread(self, query: str, params: dict[str, Any]) -> list[sqlite3.Row]:
        return self._conn().execute(N[query], params).fetchall()

    # -- channels -------------------------------------------------------------------------

    def channel_create(
        self, channel: Channel, *, now: datetime, actor: str | None = None
    ) -> Channel:
        with self._write() as conn:
            cur = conn.execute(
                N["channel_insert"],
                {
                    "id": channel.id,
                    "owner": channel.owner,
                    "name": channel.name,
                    "kind": channel.kind.value,
                    "url": channel.url,
                    "secret": channel.secret,
                    "created_at": to_micros(now),
                    "created_by": channel.created_by,
                },
            )
            if cur.rowcount == 0:
                raise Conflict(f"a channel named {channel.name!r} already exists")
            _audit(
                conn,
                actor,
                now,
                "channel.create",
                owner=channel.owner,
                kind="channel",
                target_id=channel.id,
                details={"name": channel.name, "kind": channel.kind},
            )
            row = conn.execute(N["channel_by_id"], {"id": channel.id, "owner": None}).fetchone()
        return channel_from_row(row, from_micros)

    def channel_get(self, owner: str | None, channel_id: str) -> Channel | None:
        rows = self._nread("channel_by_id", {"id": channel_id, "owner": owner})
        return channel_from_row(rows[0], from_micros) if rows else None

    def channel_list(self, owner: str | None) -> list[Channel]:
        return [
            channel_from_row(r, from_micros) for r in self._nread("channel_list", {"owner": owner})
        ]

    def channel_delete(
        self, owner: str | None, channel_id: str, *, now: datetime, actor: str | None = None
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(
                N["channel_soft_delete"], {"id": channel_id, "owner": owner, "now": to_micros(now)}
            ).fetchone()
            if row is None:
                return False
            conn.execute(N["rules_delete_of_channel"], {"id": channel_id})
            conn.execute(N["notifications_fail_of_channel"], {"id": channel_id})
            _audit(
                conn,
                actor,
                now,
                "channel.delete",
                owner=row["owner"],
                kind="channel",
                target_id=channel_id,
                details={"name": row["name"]},
            )
        return True

    # -- rules ----------------------------------------------------------------------------

    def rule_create(self, rule: Rule, *, now: datetime, actor: str | None = None) -> Rule:
        with self._write() as conn:
            params = rule_params(rule)
            conn.execute(
                N["rule_insert"],
                {
                    **{k: int(v) if isinstance(v, bool) else v for k, v in params.items()},
                    "created_at": to_micros(now),
                },
            )
            _audit(
                conn,
                actor,
                now,
                "rule.create",
                owner=rule.owner,
                kind="rule",
                target_id=rule.id,
                details={
                    "job_id": rule.job_id,
                    "events": sorted(rule.events),
                    "global": rule.is_global,
                    "channel_id": rule.channel_id,
                },
            )
            row = conn.execute(N["rule_by_id"], {"id": rule.id, "owner": None}).fetchone()
        return rule_from_row(row, from_micros)

    def rule_list(self, owner: str | None, *, job_id: str | None = None) -> list[Rule]:
        rows = self._nread("rule_list", {"owner": owner, "job_id": job_id})
        return [rule_from_row(r, from_micros) for r in rows]

    def rule_delete(
        self, owner: str | None, rule_id: str, *, now: datetime, actor: str | None = None
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(N["rule_delete"], {"id": rule_id, "owner": owner}).fetchone()
            if row is None:
                return False
            _audit(
                conn,
                actor,
                now,
                "rule.delete",
                owner=row["owner"],
                kind="rule",
                target_id=rule_id,
                details={},
            )
        return True

    # -- the outbox -----------------------------------------------------------------------

    def notification_due(self, *, now: datetime, limit: int) -> list[DueNotification]:
        rows = self._nread("notification_due", {"now": to_micros(now), "limit": limit})
        return [due_from_row(r, from_micros) for r in rows]

    def notification_record(
        self,
        notification_id: str,
        *,
        attempt: int,
        ok: bool,
        error: str | None,
        duration_ms: int,
        now: datetime,
        retry_at: datetime | None,
    ) -> bool:
        if ok:
            state = NotificationState.DELIVERED
        elif retry_at is None:
            state = NotificationState.FAILED
        else:
            state = NotificationState.PENDING
        with self._write() as conn:
            cur = conn.execute(
                N["notification_update"],
                {
                    "id": notification_id,
                    "attempt": attempt,
                    "state": state.value,
                    "next_attempt_at": None if ok else _us(retry_at),
                    "delivered_at": to_micros(now) if ok else None,
                    "error": error,
                },
            )
            if cur.rowcount == 0:
                return False
            conn.execute(
                N["delivery_insert"],
                {
                    "id": notification_id,
                    "attempt": attempt,
                    "now": to_micros(now),
                    "ok": int(ok),
                    "error": error,
                    "duration_ms": duration_ms,
                },
            )
        return True

    def notification_get(self, owner: str | None, notification_id: str) -> Notification | None:
        rows = self._nread("notification_by_id", {"id": notification_id, "owner": owner})
        return notification_from_row(rows[0], from_micros) if rows else None

    def notification_list(
        self,
        owner: str | None,
        *,
        state: NotificationState | None = None,
        job_id: str | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[Notification]:
        rows = self._nread(
            "notification_list",
            {
                "owner": owner,
                "state": None if state is None else state.value,
                "job_id": job_id,
                "before_at": None if before is None else to_micros(before[0]),
                "before_id": None if before is None else before[1],
                "limit": limit,
            },
        )
        return [notification_from_row(r, from_micros) for r in rows]

    def delivery_list(self, owner: str | None, notification_id: str) -> list[Delivery]:
        rows = self._nread("delivery_list", {"id": notification_id, "owner": owner})
        return [delivery_from_row(r, from_micros) for r in rows]

    # -- the dead-man's switch ------------------------------------------------------------

    def deadman_sweep(self, *, now: datetime, limit: int = 500) -> DeadmanSweep:
        at = to_micros(now)
        with self._write() as conn:
            armed = conn.execute(N["deadman_arm"], {"now": at, "limit": limit}).rowcount
            lapsed = 0
            for job in conn.execute(N["deadman_due"], {"now": at, "limit": limit}).fetchall():
                key = {"id": job["id"], "due_at": job["deadman_due_at"]}
                if job["deadline"] is None:
                    conn.execute(N["deadman_disarm"], key)
                    continue
                if conn.execute(N["deadman_lapse"], key).rowcount == 0:
                    continue
                lapsed += 1
                conn.execute(
                    N["outbox_deadman"],
                    {
                        "job_id": job["id"],
                        "dedupe_key": f"deadman:{job['id']}:{job['deadman_due_at']}",
                        "deadline": job["deadline"],
                        "due_at": job["deadman_due_at"],
                        "now": at,
                    },
                )
        return DeadmanSweep(armed=max(armed, 0), lapsed=lapsed)

    def deadman_missing(
        self, owner: str | None, *, now: datetime, limit: int = 100
    ) -> list[MissingJob]:
        params = {"owner": owner, "now": to_micros(now), "limit": limit}
        rows = self._nread("deadman_missing_lapsed", params) + self._nread(
            "deadman_missing_due", params
        )
        jobs = sorted((missing_from_row(r, from_micros) for r in rows), key=lambda m: m.due_at)
        return jobs[:limit]
