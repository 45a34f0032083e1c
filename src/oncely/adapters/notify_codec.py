"""Rows of the notification tables to domain objects, for both stores (timestamps converted by
the caller's ``ts``, as in ``oncely.adapters.codec``)."""

from __future__ import annotations

import json
from typing import Any

from oncely.adapters.codec import Row, ToDatetime
from oncely.domain.notify import (
    Channel,
    ChannelKind,
    Delivery,
    DueNotification,
    MissingJob,
    Notification,
    NotificationState,
    NotifyEvent,
    Rule,
)

EVENT_COLUMNS = {
    NotifyEvent.DEAD: "on_dead",
    NotifyEvent.FAILURE: "on_failure",
    NotifyEvent.RECOVERY: "on_recovery",
    NotifyEvent.MISSED: "on_missed",
    NotifyEvent.DEADMAN: "on_deadman",
}


def _opt(value: Any, ts: ToDatetime) -> Any:
    return None if value is None else ts(value)


def channel_from_row(row: Row, ts: ToDatetime) -> Channel:
    return Channel(
        id=str(row["id"]),
        owner=row["owner"],
        name=row["name"],
        kind=ChannelKind(row["kind"]),
        url=row["url"],
        secret=row["secret"],
        created_at=ts(row["created_at"]),
        created_by=row["created_by"],
    )


def rule_from_row(row: Row, ts: ToDatetime) -> Rule:
    return Rule(
        id=str(row["id"]),
        owner=row["owner"],
        channel_id=str(row["channel_id"]),
        events=frozenset(e for e, col in EVENT_COLUMNS.items() if row[col]),
        job_id=None if row["job_id"] is None else str(row["job_id"]),
        is_global=bool(row["is_global"]),
        created_at=ts(row["created_at"]),
        created_by=row["created_by"],
    )


def rule_params(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "owner": rule.owner,
        "job_id": rule.job_id,
        "is_global": rule.is_global,
        "channel_id": rule.channel_id,
        **{col: event in rule.events for event, col in EVENT_COLUMNS.items()},
        "created_by": rule.created_by,
    }


def notification_from_row(row: Row, ts: ToDatetime) -> Notification:
    detail = row["detail"]
    return Notification(
        id=str(row["id"]),
        rule_id=str(row["rule_id"]),
        channel_id=str(row["channel_id"]),
        owner=row["owner"],
        job_id=str(row["job_id"]),
        job_name=row["job_name"],
        run_id=None if row["run_id"] is None else str(row["run_id"]),
        event=NotifyEvent(row["event"]),
        detail=json.loads(detail) if isinstance(detail, str) else dict(detail),
        created_at=ts(row["created_at"]),
        state=NotificationState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=_opt(row["next_attempt_at"], ts),
        delivered_at=_opt(row["delivered_at"], ts),
        last_error=row["last_error"],
    )


def due_from_row(row: Row, ts: ToDatetime) -> DueNotification:
    gone = row["channel_kind"] is None or row["channel_deleted_at"] is not None
    return DueNotification(
        notification=notification_from_row(row, ts),
        channel_kind=None if gone else ChannelKind(row["channel_kind"]),
        channel_url=None if gone else row["channel_url"],
        channel_secret=None if gone else row["channel_secret"],
    )


def delivery_from_row(row: Row, ts: ToDatetime) -> Delivery:
    return Delivery(
        notification_id=str(row["notification_id"]),
        attempt=row["attempt"],
        at=ts(row["at"]),
        ok=bool(row["ok"]),
        error=row["error"],
        duration_ms=row["duration_ms"],
    )


def missing_from_row(row: Row, ts: ToDatetime) -> MissingJob:
    return MissingJob(
        job_id=str(row["id"]),
        owner=row["owner"],
        name=row["name"],
        deadline=float(row["deadline"]),
        due_at=ts(row["due_at"]),
        paused=bool(row["paused"]),
    )
