"""Cluster status: who runs, who holds which shards since when, what waits, what was taken over.

One function, ``cluster_status(store, now)``, for every caller (``oncely cluster status``, the
REST API, the dashboard). It only reads, with index-backed queries: the member table (by id),
the shard leases (primary key range), the waiting-runs index per queue, the takeovers (by time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from oncely.domain.jobs import SHARD_COUNT
from oncely.domain.shares import quotas
from oncely.ports.store import Store
from oncely.runtime.membership import is_live


@dataclass(frozen=True)
class NodeStatus:
    id: str
    host: str
    pid: int
    roles: list[str]
    version: str
    started_at: datetime
    heartbeat_age: float
    """Seconds since its last heartbeat."""
    live: bool
    shards: list[int]
    """Shards whose lease it holds (live leases only)."""
    quota: int | None
    """Its fair share when it is a live scheduler."""


@dataclass(frozen=True)
class ShardStatus:
    shard: int
    holder: str | None
    token: int | None
    since: datetime | None
    """When the holder was granted this lease (it has held the shard since then)."""
    expires_in: float | None
    """Seconds until the lease expires unless renewed (negative: expired)."""


@dataclass(frozen=True)
class QueueStatus:
    queue: str
    waiting: int
    due: int
    oldest_due_age: float | None
    """Seconds since the oldest due waiting run was due (None: nothing due)."""


@dataclass(frozen=True)
class TakeoverStatus:
    shard: str
    at: datetime
    old_holder: str
    new_holder: str
    old_token: int
    new_token: int
    expired_at: datetime


@dataclass(frozen=True)
class ClusterStatus:
    now: datetime
    nodes: list[NodeStatus]
    shards: list[ShardStatus]
    queues: list[QueueStatus]
    oldest_due_age: float | None
    """Across all queues: how long the oldest due waiting run has waited."""
    takeovers: list[TakeoverStatus]
    unheld_shards: list[int] = field(default_factory=list)
    """Shards with no live lease: nobody materializes their fires right now."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (datetimes as ISO 8601 strings)."""
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


def cluster_status(
    store: Store, now: datetime, *, member_ttl: float = 2.5, takeovers: int = 20
) -> ClusterStatus:
    """Read the cluster's state as of ``now`` (on the store's clock). A member is live while its
    heartbeat is younger than ``member_ttl`` seconds."""
    ttl = timedelta(seconds=member_ttl)
    members = store.member_list()
    leases = {
        int(lease.name.rsplit(":", 1)[1]): lease
        for lease in store.lease_list("shard:")
        if lease.name.rsplit(":", 1)[1].isdigit()
    }
    held: dict[str, list[int]] = {}
    shards: list[ShardStatus] = []
    for shard in range(SHARD_COUNT):
        lease = leases.get(shard)
        if lease is None:
            shards.append(ShardStatus(shard, None, None, None, None))
            continue
        live = lease.expires_at > now
        if live:
            held.setdefault(lease.holder, []).append(shard)
        shards.append(
            ShardStatus(
                shard,
                lease.holder,
                lease.token,
                lease.acquired_at,
                round((lease.expires_at - now).total_seconds(), 3),
            )
        )
    live_schedulers = [m.id for m in members if is_live(m, now, ttl) and "scheduler" in m.roles]
    shares = quotas(live_schedulers)
    nodes = [
        NodeStatus(
            id=m.id,
            host=m.host,
            pid=m.pid,
            roles=list(m.roles),
            version=m.version,
            started_at=m.started_at,
            heartbeat_age=round((now - m.heartbeat_at).total_seconds(), 3),
            live=is_live(m, now, ttl),
            shards=held.get(m.id, []),
            quota=shares.get(m.id),
        )
        for m in members
    ]
    queues = [
        QueueStatus(
            d.queue,
            d.waiting,
            d.due,
            None if d.oldest_due_at is None else round((now - d.oldest_due_at).total_seconds(), 3),
        )
        for d in store.queue_depths(now=now)
    ]
    ages = [q.oldest_due_age for q in queues if q.oldest_due_age is not None]
    return ClusterStatus(
        now=now,
        nodes=nodes,
        shards=shards,
        queues=queues,
        oldest_due_age=max(ages) if ages else None,
        takeovers=[
            TakeoverStatus(
                t.name, t.at, t.old_holder, t.new_holder, t.old_token, t.new_token, t.expired_at
            )
            for t in store.takeover_list(limit=takeovers)
        ],
        unheld_shards=[s.shard for s in shards if s.expires_in is None or s.expires_in <= 0],
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
