"""Notification channels, rules, the outbox and the dead-man's switch, as a caller may see
and change them.

- Channels and rules belong to the caller's owner. Another owner's channel, rule or
  notification is ``NotFound``, as a missing one. Admins see every owner's.
- A rule names one job (id or name, in the caller's scope), or every job of the caller's
  owner; ``is_global`` (every owner's jobs) is for admins only.
- A channel's URL is checked when it is made (Apprise must understand it; a webhook's host
  passes the network guard of HTTP actions) and is never returned unmasked. A webhook's
  signing secret is returned once, by ``channel_create``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from oncely.domain.errors import InvalidInput, NotFound, PermissionDenied
from oncely.domain.ids import looks_like_id, new_id
from oncely.domain.notify import (
    Channel,
    ChannelKind,
    Delivery,
    MissingJob,
    Notification,
    NotificationState,
    Rule,
    parse_events,
    validate_channel_name,
    validate_channel_url,
)
from oncely.domain.principal import Permission, Principal
from oncely.ports.actions import ActionSettings
from oncely.service.deps import ServiceDeps, actor, require

ChannelCheck = Callable[[ChannelKind, str, ActionSettings], None]


def shape_only(kind: ChannelKind, url: str, settings: ActionSettings) -> None:
    validate_channel_url(kind, url)


@dataclass(frozen=True)
class CreatedChannel:
    channel: Channel
    secret: str | None
    """The webhook signing secret, to show once."""


class NotificationService:
    def __init__(self, deps: ServiceDeps, check_channel: ChannelCheck = shape_only) -> None:
        self.deps = deps
        self.check_channel = check_channel

    def _now(self) -> datetime:
        return self.deps.clock().now()

    # -- channels -------------------------------------------------------------------------

    def channel_create(
        self, who: Principal, name: str, kind: str, url: str, secret: str | None = None
    ) -> CreatedChannel:
        require(who, Permission.WRITE)
        validate_channel_name(name)
        try:
            channel_kind = ChannelKind(kind)
        except ValueError:
            raise InvalidInput("kind must be apprise, webhook or email", field="kind") from None
        self.check_channel(channel_kind, url, self.deps.actions)
        if channel_kind is ChannelKind.EMAIL:
            url = validate_channel_url(channel_kind, url)  # the addresses, normalised
        if channel_kind is ChannelKind.WEBHOOK:
            secret = secret or secrets.token_urlsafe(32)
            if len(secret) < 16:
                raise InvalidInput("a webhook secret needs at least 16 characters", field="secret")
        elif secret is not None:
            raise InvalidInput("only webhook channels have a secret", field="secret")
        now = self._now()
        channel = Channel(
            id=new_id(int(now.timestamp() * 1000)),
            owner=who.owner,
            name=name,
            kind=channel_kind,
            url=url,
            secret=secret,
            created_at=now,
            created_by=actor(who),
        )
        stored = self.deps.store().channel_create(channel, now=now, actor=actor(who))
        return CreatedChannel(stored, secret)

    def channel_list(self, who: Principal) -> list[Channel]:
        require(who, Permission.READ)
        return self.deps.store().channel_list(who.scope)

    def channel_get(self, who: Principal, ref: str) -> Channel:
        """By id, or by name among the caller's own channels."""
        require(who, Permission.READ)
        store = self.deps.store()
        if looks_like_id(ref):
            found = store.channel_get(who.scope, ref)
        else:
            found = next((c for c in store.channel_list(who.owner) if c.name == ref), None)
        if found is None:
            raise NotFound(f"no channel {ref!r}")
        return found

    def channel_delete(self, who: Principal, ref: str) -> None:
        """Delete a channel and its rules; its pending notifications are given up."""
        require(who, Permission.WRITE)
        channel = self.channel_get(who, ref)
        if not self.deps.store().channel_delete(
            who.scope, channel.id, now=self._now(), actor=actor(who)
        ):
            raise NotFound(f"no channel {ref!r}")

    # -- rules ----------------------------------------------------------------------------

    def rule_create(
        self,
        who: Principal,
        channel: str,
        events: list[str] | str,
        *,
        job: str | None = None,
        is_global: bool = False,
    ) -> Rule:
        require(who, Permission.WRITE)
        wanted = parse_events(events)
        if is_global:
            if not who.is_admin:
                raise PermissionDenied("only admins make global rules (every owner's jobs)")
            if job is not None:
                raise InvalidInput("a global rule covers every job; give no job", field="job")
        target = self._job_id(who, job) if job is not None else None
        ch = self.channel_get(who, channel)
        now = self._now()
        rule = Rule(
            id=new_id(int(now.timestamp() * 1000)),
            owner=who.owner,
            channel_id=ch.id,
            events=wanted,
            job_id=target,
            is_global=is_global,
            created_by=actor(who),
        )
        return self.deps.store().rule_create(rule, now=now, actor=actor(who))

    def _job_id(self, who: Principal, ref: str) -> str:
        store = self.deps.store()
        found = (
            store.job_get(who.scope, ref)
            if looks_like_id(ref)
            else store.job_get_by_name(who.owner, ref)
        )
        if found is None:
            raise NotFound(f"no job {ref!r}")
        return found.id

    def rule_list(self, who: Principal, *, job: str | None = None) -> list[Rule]:
        require(who, Permission.READ)
        job_id = self._job_id(who, job) if job is not None else None
        return self.deps.store().rule_list(who.scope, job_id=job_id)

    def rule_delete(self, who: Principal, rule_id: str) -> None:
        require(who, Permission.WRITE)
        if not looks_like_id(rule_id) or not self.deps.store().rule_delete(
            who.scope, rule_id, now=self._now(), actor=actor(who)
        ):
            raise NotFound(f"no rule {rule_id!r}")

    # -- the outbox -----------------------------------------------------------------------

    def notifications(
        self,
        who: Principal,
        *,
        state: str | None = None,
        job: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[Notification]:
        """Notifications sent through the caller's rules (every owner's for admins), newest
        first; ``before`` is the id of the last one of the previous page."""
        require(who, Permission.READ)
        try:
            wanted = None if state is None else NotificationState(state)
        except ValueError:
            raise InvalidInput(
                "state must be pending, delivered or failed", field="state"
            ) from None
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000", field="limit")
        cursor = None
        if before is not None:
            last = self.get(who, before)
            cursor = (last.created_at, last.id)
        job_id = self._job_id(who, job) if job is not None else None
        return self.deps.store().notification_list(
            who.scope, state=wanted, job_id=job_id, limit=limit, before=cursor
        )

    def get(self, who: Principal, notification_id: str) -> Notification:
        require(who, Permission.READ)
        found = (
            self.deps.store().notification_get(who.scope, notification_id)
            if looks_like_id(notification_id)
            else None
        )
        if found is None:
            raise NotFound(f"no notification {notification_id!r}")
        return found

    def deliveries(self, who: Principal, notification_id: str) -> list[Delivery]:
        self.get(who, notification_id)
        return self.deps.store().delivery_list(who.scope, notification_id)

    # -- the dead-man's switch ------------------------------------------------------------

    def missing(self, who: Principal, *, limit: int = 100) -> list[MissingJob]:
        """Jobs expected to have succeeded by now that have not (their deadline passed)."""
        require(who, Permission.READ)
        return self.deps.store().deadman_missing(who.scope, now=self._now(), limit=limit)
