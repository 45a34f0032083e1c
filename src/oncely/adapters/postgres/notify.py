"""The PostgreSQL store's notification tables: channels, rules, the outbox and the dead-man's
switch. ``PostgresStore`` inherits these methods. Attempt outcomes write their notifications in
``runs_finish`` itself (queries.sql: one statement, no extra round trip); missed fires through
``outbox_missed`` inside ``fires_commit``'s transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow, dict_row

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

N = load_queries("oncely.adapters.postgres", "notify.sql")
_AUDIT = load_queries("oncely.adapters.postgres", "queries.sql")["audit_insert"]
Conn = psycopg.Connection[TupleRow]
Row = dict[str, Any]


def _uuid(value: str | None) -> UUID | None:
    try:
        return None if value is None else UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def _same(ts: Any) -> Any:
    return ts


def _fetch(conn: Conn, query: str, params: dict[str, Any]) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(N[query], params)
        return cur.fetchall() if cur.description else []


def outbox_missed(conn: Conn, run_ids: Sequence[UUID], now: datetime) -> None:
    """In fires_commit's transaction: notifications for the missed runs it created."""
    if run_ids:
        _fetch(conn, "outbox_missed", {"ids": list(run_ids), "now": now})


def _audit(
    conn: Conn,
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
            "at": now,
            "actor": actor,
            "owner": owner,
            "action": action,
            "target_kind": kind,
            "target_id": target_id,
            "details": json.dumps(details, separators=(",", ":"), default=str),
        },
    )


class PostgresNotifications:
    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[Conn]: ...

        @property
        def _pool(self) -> Any: ...

    def _nread(self, query: str, params: dict[str, Any]) -> list[Row]:
        with self._pool.connection() as conn:
            return _fetch(conn, query, params)

    # -- channels -------------------------------------------------------------------------

    def channel_create(
        self, channel: Channel, *, now: datetime, actor: str | None = None
    ) -> Channel:
        with self._tx() as conn:
            rows = _fetch(
                conn,
                "channel_insert",
                {
                    "id": UUID(channel.id),
                    "owner": channel.owner,
                    "name": channel.name,
                    "kind": channel.kind.value,
                    "url": channel.url,
                    "secret": channel.secret,
                    "created_at": now,
                    "created_by": channel.created_by,
                },
            )
            if not rows:
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
        return channel_from_row(rows[0], _same)

    def channel_get(self, owner: str | None, channel_id: str) -> Channel | None:
        uid = _uuid(channel_id)
        rows = [] if uid is None else self._nread("channel_by_id", {"id": uid, "owner": owner})
        return channel_from_row(rows[0], _same) if rows else None

    def channel_list(self, owner: str | None) -> list[Channel]:
        return [channel_from_row(r, _same) for r in self._nread("channel_list", {"owner": owner})]

    def channel_delete(
        self, owner: str | None, channel_id: str, *, now: datetime, actor: str | None = None
    ) -> bool:
        uid = _uuid(channel_id)
        if uid is None:
            return False
        with self._tx() as conn:
            rows = _fetch(conn, "channel_delete", {"id": uid, "owner": owner, "now": now})
            if not rows:
                return False
            _audit(
                conn,
                actor,
                now,
                "channel.delete",
                owner=rows[0]["owner"],
                kind="channel",
                target_id=channel_id,
                details={"name": rows[0]["name"]},
            )
        return True

    # -- rules ----------------------------------------------------------------------------

    def rule_create(self, rule: Rule, *, now: datetime, actor: str | None = None) -> Rule:
        params = rule_params(rule)
        params.update(
            id=UUID(rule.id),
            job_id=_uuid(rule.job_id),
            channel_id=UUID(rule.channel_id),
            created_at=now,
        )
        with self._tx() as conn:
            rows = _fetch(conn, "rule_insert", params)
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
        return rule_from_row(rows[0], _same)

    def rule_list(self, owner: str | None, *, job_id: str | None = None) -> list[Rule]:
        if job_id is not None and _uuid(job_id) is None:
            return []
        rows = self._nread("rule_list", {"owner": owner, "job_id": _uuid(job_id)})
        return [rule_from_row(r, _same) for r in rows]

    def rule_delete(
        self, owner: str | None, rule_id: str, *, now: datetime, actor: str | None = None
    ) -> bool:
        uid = _uuid(rule_id)
        if uid is None:
            return False
        with self._tx() as conn:
            rows = _fetch(conn, "rule_delete", {"id": uid, "owner": owner})
            if not rows:
                return False
            _audit(
                conn,
                actor,
                now,
                "rule.delete",
                owner=rows[0]["owner"],
                kind="rule",
                target_id=rule_id,
                details={},
            )
        return True

    # -- the outbox -----------------------------------------------------------------------

    def notification_due(self, *, now: datetime, limit: int) -> list[DueNotification]:
        rows = self._nread("notification_due", {"now": now, "limit": limit})
        return [due_from_row(r, _same) for r in rows]

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
        uid = _uuid(notification_id)
        if uid is None:
            return False
        if ok:
            state = NotificationState.DELIVERED
        elif retry_at is None:
            state = NotificationState.FAILED
        else:
            state = NotificationState.PENDING
        rows = self._nread(
            "notification_record",
            {
                "id": uid,
                "attempt": attempt,
                "state": state.value,
                "next_attempt_at": None if ok else retry_at,
                "delivered_at": now if ok else None,
                "error": error,
                "now": now,
                "ok": ok,
                "duration_ms": duration_ms,
            },
        )
        return bool(rows)

    def notification_get(self, owner: str | None, notification_id: str) -> Notification | None:
        uid = _uuid(notification_id)
        rows = [] if uid is None else self._nread("notification_by_id", {"id": uid, "owner": owner})
        return notification_from_row(rows[0], _same) if rows else None

    def notification_list(
        self,
        owner: str | None,
        *,
        state: NotificationState | None = None,
        job_id: str | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[Notification]:
        if job_id is not None and _uuid(job_id) is None:
            return []
        rows = self._nread(
            "notification_list",
            {
                "owner": owner,
                "state": None if state is None else state.value,
                "job_id": _uuid(job_id),
                "before_at": None if before is None else before[0],
                "before_id": None if before is None else _uuid(before[1]),
                "limit": limit,
            },
        )
        return [notification_from_row(r, _same) for r in rows]

    def delivery_list(self, owner: str | None, notification_id: str) -> list[Delivery]:
        uid = _uuid(notification_id)
        if uid is None:
            return []
        rows = self._nread("delivery_list", {"id": uid, "owner": owner})
        return [delivery_from_row(r, _same) for r in rows]

    # -- the dead-man's switch ------------------------------------------------------------

    def deadman_sweep(self, *, now: datetime, limit: int = 500) -> DeadmanSweep:
        with self._tx() as conn:
            with conn.cursor() as cur:
                cur.execute(N["deadman_arm"], {"now": now, "limit": limit})
                armed = max(cur.rowcount, 0)
            rows = _fetch(conn, "deadman_lapse", {"now": now, "limit": limit})
        return DeadmanSweep(armed=armed, lapsed=int(rows[0]["lapsed"]) if rows else 0)

    def deadman_missing(
        self, owner: str | None, *, now: datetime, limit: int = 100
    ) -> list[MissingJob]:
        params = {"owner": owner, "now": now, "limit": limit}
        rows = self._nread("deadman_missing_lapsed", params) + self._nread(
            "deadman_missing_due", params
        )
        jobs = sorted((missing_from_row(r, _same) for r in rows), key=lambda m: m.due_at)
        return jobs[:limit]
