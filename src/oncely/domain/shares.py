"""Fair shares of the shards among schedulers: who should hold how many, and what to do now.

Pure decisions; the scheduler loop reads the store, calls these, and carries them out.

- ``quotas``: with N schedulers sorted by id, ``SHARD_COUNT = q*N + r``; the first ``r`` get
  ``q + 1`` shards and the others ``q`` (3 schedulers: 22/21/21). Every scheduler that sees
  the same member list computes the same quotas, so the shares add up to exactly 64.
- ``active_schedulers``: the members that count. A member whose heartbeat is recent counts,
  unless every shard lease it holds has expired: a lease that lapsed is a stronger sign of
  death than a heartbeat row that has not timed out yet, and acting on it at once keeps
  failover as fast as the lease TTL.
- ``decide_shares``: a scheduler under its quota takes free shards (absent or expired leases)
  at once, up to its quota. A scheduler at or over its quota still takes a shard that has been
  free for ``orphan_after``: a fire must not wait on the member list being right. One over
  its quota hands the excess back; the caller does that at a commit boundary, after the
  excess has stayed for a while (``should_hand_over``), so a member list that is briefly
  wrong (a crashed node whose row has not timed out) does not make shards bounce.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from oncely.domain.jobs import SHARD_COUNT


def quotas(members: Collection[str], shard_count: int = SHARD_COUNT) -> dict[str, int]:
    """Each member's exact share of ``shard_count`` shards (first ``r`` by id get one more)."""
    ordered = sorted(set(members))
    if not ordered:
        return {}
    q, r = divmod(shard_count, len(ordered))
    return {member: q + (1 if i < r else 0) for i, member in enumerate(ordered)}


@dataclass(frozen=True)
class ShardHolding:
    """One shard's lease as read from the store; ``holder`` None means no lease row."""

    shard: int
    holder: str | None = None
    expires_at: datetime | None = None

    def free_at(self, now: datetime) -> bool:
        return self.holder is None or (self.expires_at is not None and self.expires_at <= now)


def active_schedulers(
    me: str,
    live_members: Collection[str],
    holdings: Collection[ShardHolding],
    now: datetime,
) -> list[str]:
    """The schedulers the shards are shared among: ``me``, and every live member except those
    whose shard leases (one or more) have all expired."""
    held: dict[str, bool] = {}
    for h in holdings:
        if h.holder is not None:
            held[h.holder] = held.get(h.holder, False) or not h.free_at(now)
    return sorted({me, *(m for m in live_members if held.get(m, True))})


@dataclass(frozen=True)
class ShareDecision:
    quota: int
    take: tuple[int, ...]
    """Free shards to try to acquire now."""
    excess: tuple[int, ...]
    """Held shards beyond the quota: to hand over at a commit boundary."""


def decide_shares(
    *,
    me: str,
    quota: int,
    held: Collection[int],
    holdings: Mapping[int, ShardHolding],
    free_since: Mapping[int, datetime],
    now: datetime,
    orphan_after: timedelta,
    shard_count: int = SHARD_COUNT,
) -> ShareDecision:
    """What ``me`` should take and give up.

    ``holdings`` has the store's lease row per shard (missing: no row); ``free_since`` says
    since when each free shard is known to be free (an expired lease: its expiry; a missing
    row: when the caller first saw it missing). ``held`` are the shards whose lease ``me``
    holds. Among free shards, each scheduler starts at its own offset (from its id) so that
    several takers rarely reach for the same shard first.
    """
    mine = set(held)
    free = [
        s
        for s in range(shard_count)
        if s not in mine and holdings.get(s, ShardHolding(s)).free_at(now)
    ]
    start = _offset(me, shard_count)
    free.sort(key=lambda s: (s - start) % shard_count)
    deficit = quota - len(mine)
    take = free[:deficit] if deficit > 0 else []
    # Orphans: free long enough that whoever should have taken them evidently has not.
    orphans = [s for s in free if s not in take and now - free_since.get(s, now) >= orphan_after]
    excess = sorted(mine, reverse=True)[: max(0, len(mine) - quota)] if deficit < 0 else []
    return ShareDecision(quota=quota, take=tuple(take + orphans), excess=tuple(excess))


def should_hand_over(over_since: datetime | None, now: datetime, settle: timedelta) -> bool:
    """Hand the excess over only once it has lasted ``settle``: long enough for a member
    list that counted a dead node to have dropped it."""
    return over_since is not None and now - over_since >= settle


def _offset(member: str, shard_count: int) -> int:
    digest = hashlib.blake2b(member.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % shard_count


def shard_counts(holdings: Sequence[ShardHolding], now: datetime) -> dict[str, int]:
    """Live shard leases per holder."""
    counts: dict[str, int] = {}
    for h in holdings:
        if h.holder is not None and not h.free_at(now):
            counts[h.holder] = counts.get(h.holder, 0) + 1
    return counts
