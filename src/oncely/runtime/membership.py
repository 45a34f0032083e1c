"""Cluster membership: every oncely process (scheduler, worker, API) keeps a heartbeat row.

States of one process's membership::

    joining ──first heartbeat──▶ member (row refreshed every ``interval``) ──stop──▶ left
                                     │                                         (row deleted)
                                     └──crash: the row stops moving; peers count it dead
                                        after ``ttl``, the store forgets it after an hour

Invariants:

- Liveness is judged by the reader: a member is live while ``now - heartbeat_at < ttl``, on
  the one clock (the database's on PostgreSQL), so nodes agree on who is live.
- Each heartbeat also reads the member list: ``peers`` is at most ``interval`` old. The
  scheduler shares the shards among the live members with the ``scheduler`` role
  (``oncely.domain.shares``); everything else (status, dashboards) only reads.
- A stopping process deletes its row (it announces it is down), so its peers need not wait
  for the TTL to rebalance.
- Membership gives no ownership: nothing is written under it. A wrong member list can only
  make shards move sooner or later than they should; leases and fencing keep writes safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib import metadata

from oncely.ports.clock import Clock
from oncely.ports.store import Member, Store
from oncely.runtime.blocking import BlockingCaller

log = logging.getLogger("oncely.membership")

ROLES = ("scheduler", "worker", "api")


@dataclass(frozen=True)
class MembershipConfig:
    ttl: float = 2.5
    """A member whose heartbeat is older than this is counted dead."""
    interval: float | None = None
    """Seconds between heartbeats; a third of ``ttl`` when not given."""

    @property
    def every(self) -> float:
        return self.interval if self.interval is not None else self.ttl / 3


def new_member_id() -> str:
    """Unique per process start: host, pid and a random part (a restarted pid is a new id)."""
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(24):06x}"


def _version() -> str:
    try:
        return metadata.version("oncely")
    except metadata.PackageNotFoundError:
        return "unknown"


def is_live(member: Member, now: datetime, ttl: timedelta) -> bool:
    return now - member.heartbeat_at < ttl


class Membership:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        roles: Sequence[str],
        member_id: str | None = None,
        config: MembershipConfig | None = None,
        caller: BlockingCaller | None = None,
    ) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles: {sorted(unknown)}")
        self.store = store
        self.clock = clock
        self.config = config or MembershipConfig()
        self._call = caller or BlockingCaller(1, "oncely-membership")
        now = clock.now()
        self.me = Member(
            id=member_id or new_member_id(),
            host=socket.gethostname(),
            pid=os.getpid(),
            roles=tuple(r for r in ROLES if r in roles),
            version=_version(),
            started_at=now,
            heartbeat_at=now,
        )
        self.peers: list[Member] = []
        """Every member row as of the last heartbeat (this one included)."""
        self.last_beat_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.me.id

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.config.ttl)

    def live(self, role: str | None = None, now: datetime | None = None) -> list[Member]:
        """Live members as of the last heartbeat, optionally only those with ``role``."""
        now = now or self.clock.now()
        return [
            m for m in self.peers if is_live(m, now, self.ttl) and (role is None or role in m.roles)
        ]

    # Synchronous steps: they run on the store's thread pool (or directly, in tests).

    def beat(self) -> list[Member]:
        """Refresh our row and read everyone's."""
        now = self.clock.now()
        self.store.member_heartbeat(replace(self.me, heartbeat_at=now), now=now)
        self.peers = self.store.member_list()
        self.last_beat_at = now
        return self.peers

    def leave(self) -> None:
        self.store.member_leave(self.me.id)
        self.peers = [m for m in self.peers if m.id != self.me.id]

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat until ``stop``, then leave. A failed heartbeat is retried: the store may
        be briefly unreachable, and peers only count us dead after ``ttl``."""
        try:
            while not stop.is_set():
                try:
                    await self._call(self.beat)
                except Exception:
                    log.warning("membership heartbeat failed; retrying", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.every)
        finally:
            try:
                await self._call(self.leave)
            except Exception:
                log.warning("could not delete our member row; it will time out", exc_info=True)

    def status(self, now: datetime) -> dict[str, object]:
        age = None if self.last_beat_at is None else (now - self.last_beat_at).total_seconds()
        return {
            "id": self.me.id,
            "roles": list(self.me.roles),
            "last_beat_age": age,
            "live_members": len(self.live(now=now)),
        }
