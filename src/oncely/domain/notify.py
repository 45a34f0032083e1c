"""Notifications: channels (where a message goes), rules (which outcomes send one) and the
outbox rows the store writes when an outcome matches a rule.

Design note (the subsystem: domain here, SQL in the stores, delivery in
``oncely.runtime.notify``, channels in ``oncely.adapters.notify``):

- A notification is written by the store in the transaction that records the outcome that
  causes it (the run going dead, an attempt failing, the first success after failures, a
  missed fire, a dead-man's deadline passing). There is no moment at which the outcome is
  stored and its notification is not: a crash loses neither or both.
- A rule matches one job, every job of its owner, or (``is_global``, admins only) every job.
  Each (rule, cause) pair is written once: a unique ``dedupe_key`` per rule turns a repeated
  write (a retried transaction, two checkers) into nothing.
- Delivery is at-least-once on the wire (a deliverer killed after sending and before
  recording sends again); every message carries the notification's id, which receivers
  dedupe on, so each receiver acts once per id.
- Channel URLs hold credentials (webhook tokens, SMTP passwords): they are stored, used by the
  deliverer, and shown only masked (``mask_url``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from oncely.domain.actions import is_email_address
from oncely.domain.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$")


class NotifyEvent(enum.StrEnum):
    DEAD = "dead"
    """A run went dead: it used up its retries."""
    FAILURE = "failure"
    """An attempt failed, timed out or was lost (every one, retried or not)."""
    RECOVERY = "recovery"
    """The first success of a job after a failure."""
    MISSED = "missed"
    """A fire was recorded as missed (misfire policy ``skip``)."""
    DEADMAN = "deadman"
    """The job's dead-man's deadline passed without a success."""


class ChannelKind(enum.StrEnum):
    APPRISE = "apprise"
    """Any URL Apprise understands: mailto://, slack://, msteams://, discord://, pagerduty://..."""
    WEBHOOK = "webhook"
    """oncely's own signed webhook: a JSON POST with an HMAC-SHA256 signature."""
    EMAIL = "email"
    """Mail through the server's own SMTP relay (``smtp_url``, ``smtp_from``, as the
    ``email`` action): the channel's ``url`` is only the recipients, comma-separated (not a
    secret, shown as is)."""


@dataclass(frozen=True)
class Channel:
    id: str
    owner: str
    name: str
    kind: ChannelKind
    url: str
    """A secret: never shown unmasked."""
    secret: str | None
    """The webhook signing key (a secret); None for Apprise channels."""
    created_at: datetime
    created_by: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    owner: str
    channel_id: str
    events: frozenset[NotifyEvent]
    job_id: str | None = None
    """One job; None for every job of ``owner`` (or of every owner if ``is_global``)."""
    is_global: bool = False
    created_at: datetime | None = None
    created_by: str | None = None


class NotificationState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """Given up after ``MAX_DELIVERY_ATTEMPTS`` (or its channel was deleted)."""


@dataclass(frozen=True)
class Notification:
    """One outbox row: what happened, to which job, for which rule and channel."""

    id: str
    rule_id: str
    channel_id: str
    owner: str
    job_id: str
    job_name: str
    run_id: str | None
    event: NotifyEvent
    detail: dict[str, Any]
    created_at: datetime
    state: NotificationState
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class Delivery:
    """One try at delivering a notification."""

    notification_id: str
    attempt: int
    at: datetime
    ok: bool
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class DueNotification:
    """A pending notification with what the deliverer needs (its channel, secrets included)."""

    notification: Notification
    channel_kind: ChannelKind | None
    """None when the channel was deleted: the notification is given up."""
    channel_url: str | None
    channel_secret: str | None


@dataclass(frozen=True)
class MissingJob:
    """A job with a dead-man's deadline that passed without a success."""

    job_id: str
    owner: str
    name: str
    deadline: float
    due_at: datetime
    """When the deadline passed (or passes: an armed deadline already in the past)."""
    paused: bool


@dataclass(frozen=True)
class DeadmanSweep:
    armed: int = 0
    lapsed: int = 0


MAX_DELIVERY_ATTEMPTS = 12
"""With ``delivery_backoff`` that is about two days of trying before giving up."""


def delivery_backoff(
    attempts: int, rand: float, *, base: float = 5.0, cap: float = 3600.0
) -> timedelta:
    """The wait after ``attempts`` failed deliveries: exponential, capped, with jitter drawn
    from ``rand`` in [0, 1) over the upper half of the window (never zero: a receiver that is
    down is not hammered, and a thousand notifications that failed together spread out)."""
    ceiling = min(cap, base * (2 ** min(max(attempts - 1, 0), 30)))
    return timedelta(seconds=ceiling / 2 + ceiling / 2 * rand)


def validate_channel_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            "channel name must be 1-100 letters, digits or _ . : - (starting with a letter "
            "or digit)",
            field="name",
        )
    return name


def validate_channel_url(kind: ChannelKind, url: str) -> str:
    """Shape only: Apprise checks its own schemes when the channel is made (the service asks
    it), webhooks go through the network guard."""
    if not isinstance(url, str) or not url or len(url) > 4096:
        raise InvalidInput("url must be 1-4096 characters", field="url")
    if kind is ChannelKind.EMAIL:
        return ",".join(email_recipients(url))
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise InvalidInput("url must have a scheme (https://, mailto://, slack://...)", field="url")
    if kind is ChannelKind.WEBHOOK and scheme not in ("http", "https"):
        raise InvalidInput("a webhook url must be http:// or https://", field="url")
    return url


def email_recipients(url: str) -> tuple[str, ...]:
    """The addresses of an ``email`` channel (its ``url``: ``a@example.com,b@example.com``)."""
    addresses = tuple(a.strip() for a in url.split(",") if a.strip())
    if not addresses or len(addresses) > 50:
        raise InvalidInput("an email channel needs 1-50 addresses, comma-separated", field="url")
    for address in addresses:
        if not is_email_address(address):
            raise InvalidInput(f"{address!r} is not an email address", field="url")
    return addresses


def parse_events(values: Any) -> frozenset[NotifyEvent]:
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    try:
        events = frozenset(NotifyEvent(str(v).strip()) for v in values)
    except ValueError:
        known = ", ".join(e.value for e in NotifyEvent)
        raise InvalidInput(f"events must be among: {known}", field="events") from None
    if not events:
        raise InvalidInput("a rule needs at least one event", field="events")
    return events


def mask_url(url: str) -> str:
    """Show where a channel points without its credentials. Web and mail URLs keep their
    scheme and host; the path, query and user part are starred (tokens sit there: Slack,
    Discord, Teams webhooks). Other schemes keep only the scheme: their "host" is often a
    token itself (``slack://TokenA/TokenB/TokenC``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "***"
    scheme = parts.scheme.lower()
    if scheme in ("http", "https", "mailto", "mailtos") and host:
        return f"{scheme}://{host}/***"
    return f"{scheme}://***" if scheme else "***"


@dataclass(frozen=True)
class Message:
    """What a notification says, in the words every channel shares."""

    title: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)
    """The machine-readable form (the webhook's JSON body)."""


_VERBS = {
    NotifyEvent.DEAD: "is dead",
    NotifyEvent.FAILURE: "failed",
    NotifyEvent.RECOVERY: "recovered",
    NotifyEvent.MISSED: "missed a fire",
    NotifyEvent.DEADMAN: "has not succeeded in time",
}


def render(n: Notification) -> Message:
    """The message for a notification; the same every time it is tried (retries resend the
    same words and the same JSON, with the same id)."""
    d = n.detail
    title = f"[oncely] {n.job_name} {_VERBS[n.event]}"
    lines = [f"job: {n.job_name} ({n.job_id})", f"event: {n.event.value}"]
    if n.run_id:
        lines.append(f"run: {n.run_id}")
    for key in ("scheduled_for", "attempt", "state", "error", "deadline", "due_at"):
        if d.get(key) not in (None, ""):
            lines.append(f"{key}: {d[key]}")
    lines.append(f"notification: {n.id}")
    payload = {
        "id": n.id,
        "event": n.event.value,
        "owner": n.owner,
        "job": {"id": n.job_id, "name": n.job_name},
        "run_id": n.run_id,
        "detail": d,
        "created_at": n.created_at.isoformat(),
    }
    return Message(title=title, body="\n".join(lines), payload=payload)
