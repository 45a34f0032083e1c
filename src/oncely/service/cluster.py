"""The cluster as an admin sees it: members, shard leases, queue depths and lag (read-only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from oncely.domain.principal import Permission, Principal
from oncely.ports.store import Lease, Member, QueueDepth, Takeover
from oncely.service.deps import ServiceDeps, require


@dataclass(frozen=True)
class ClusterStatus:
    now: datetime
    members: list[Member]
    member_ttl: timedelta
    shards: list[Lease]
    queues: list[QueueDepth]
    takeovers: list[Takeover] = field(default_factory=list)
    """The most recent leases taken after their holder let them expire, newest first."""

    def live(self, member: Member) -> bool:
        return self.now - member.heartbeat_at < self.member_ttl

    def lag(self, queue: QueueDepth) -> timedelta | None:
        """How long the oldest due run of the queue has waited."""
        return None if queue.oldest_due_at is None else self.now - queue.oldest_due_at


class ClusterService:
    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps

    def status(self, who: Principal) -> ClusterStatus:
        """Every member's heartbeat, every shard lease (holder, fencing token, expiry), and
        the waiting runs per queue. Admins only: it spans every owner."""
        require(who, Permission.ADMIN)
        store = self.deps.store()
        now = self.deps.clock().now()
        return ClusterStatus(
            now=now,
            members=store.member_list(),
            member_ttl=timedelta(seconds=self.deps.member_ttl),
            shards=sorted(store.lease_list("shard:"), key=_shard_number),
            queues=store.queue_depths(now=now),
            takeovers=store.takeover_list(limit=20),
        )


def _shard_number(lease: Lease) -> int:
    return int(lease.name.split(":")[1])
