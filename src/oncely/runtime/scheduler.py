"""The scheduler: holds its fair share of the shard leases, materializes fires ahead of time,
reaps lost attempts.

States of one scheduler process::

    joining ──registered (membership)──▶ balancing: holds its quota of the 64 shards
       ▲            under quota: take free shards ◀─┤├─▶ over quota: hand the excess over
       │                                            │     right after a commit
       └──────────── stop (SIGTERM): release all ◀──┘

Fair share. Every scheduler is a member (``runtime.membership``); with N live schedulers each
holds its quota, 64 = q*N + r (``domain.shares``). Every ``acquire_interval`` a scheduler
reads the shard leases and decides: under its quota it takes free shards (released, or
expired) at once; over it, it releases the excess, but only once the excess has lasted
``settle`` (a crashed member's row takes that long to drop out of the list; until then
shards would bounce) and only right after a materialize pass (a commit boundary: every fire
of the shard up to ``now + lookahead`` is already a run, so the next holder, which takes the
shard within ``acquire_interval``, has the whole lookahead before any fire is late). A free
shard nobody under quota takes within ``orphan_after`` is taken by anyone: no fire waits on
the member list being right. A member whose shard leases have all expired is not counted:
the survivors' quotas grow at once and they take its shards as soon as the leases expire.

Takeover: acquiring a shard whose lease another holder let expire (it did not release it) is
recorded in the store (``takeover_list``) and emitted as a ``Takeover`` event, which the
process log writes at WARNING with the shard, both holders and both tokens.

Invariants:

- It writes runs and advances jobs only for shards whose lease it holds, and each write is
  conditional on the lease's fencing token (``Store.fires_commit``). A scheduler that stalls
  past its lease and wakes up cannot write: the store refuses, and it drops the shard.
- The unique (job_id, scheduled_for) key under every run is the second safeguard: even two
  schedulers that both believed they held a shard could not make a fire run twice.
- Missed fires are found from ``next_fire_at`` alone, so a restart after any downtime picks
  up exactly where the last commit left off; the misfire policy decides what runs.
- Any scheduler, leader of a shard or not, reaps expired worker leases: the reaper's writes
  are conditional on the expired token, so two reapers cannot both record a loss.

Every tick: renew leases (every ``lease_ttl/3``), balance (every ``acquire_interval``), plan
and commit due jobs' fires in one store transaction per batch, hand excess shards over, reap.
Each step is a synchronous method on the clock it is given, so tests drive them one by one
on a frozen clock (``tests/integration/test_scheduler_steps.py``); the plan itself is pure
(``domain.firing``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from oncely.domain.firing import FirePlan, plan_fires
from oncely.domain.jobs import SHARD_COUNT
from oncely.domain.runs import AttemptOutcome, decide_after_attempt
from oncely.domain.shares import (
    ShardHolding,
    active_schedulers,
    decide_shares,
    quotas,
    should_hand_over,
)
from oncely.ports.clock import Clock
from oncely.ports.store import AttemptResult, Lease, Store
from oncely.runtime.blocking import BlockingCaller
from oncely.runtime.events import (
    NULL_BUS,
    EventBus,
    FiresMaterialized,
    LeasesGained,
    LeasesLost,
    Takeover,
    emit_outcomes,
    missed_fires,
)
from oncely.runtime.membership import Membership

log = logging.getLogger("oncely.scheduler")


@dataclass(frozen=True)
class SchedulerConfig:
    lookahead: float = 5.0
    """Fires due within this many seconds are materialized as pending runs."""
    refill_step: float = 2.0
    """A job is planned again only once its next fire is within ``lookahead - refill_step``
    (at least half the lookahead), and then up to the full lookahead: a per-second job's
    row is advanced once per two or three fires instead of every fire (at the peak, each advance
    is a new row version and an entry in every index of jobs). Fires up to ``now + lookahead
    - refill_step`` are always committed: longer than a failover takes."""
    tick: float = 0.5
    lease_ttl: float = 2.5
    """Shard leases last this long unrenewed. Renewed every third of it; the leases are read
    every ``acquire_interval``, so a dead holder's shards move within about
    ``lease_ttl + acquire_interval`` (under the lookahead: no fire is late for it)."""
    acquire_interval: float = 0.2
    """How often the shard leases are read and shares decided."""
    settle: float | None = None
    """An excess must last this long before it is handed over (default: ``lease_ttl``)."""
    orphan_after: float | None = None
    """A free shard nobody took in this long is taken even over quota (default:
    ``lease_ttl``)."""
    batch: int = 2000
    reap_interval: float = 1.0
    reap_batch: int = 500
    reap_grace: float = 3.0
    """After the store was unreachable, wait this long before reaping: workers first renew
    the leases they still trust and record the outcomes they kept in their outbox (leases
    lapsed for everyone during an outage; those attempts are healthy, not lost)."""
    retry_min: float = 0.05
    retry_max: float = 0.5
    """A failed tick is retried after a capped, doubling delay in this range: the store is
    noticed back within ``retry_max`` of accepting connections."""


@dataclass
class SchedulerStats:
    ticks: int = 0
    runs_created: int = 0
    jobs_advanced: int = 0
    runs_reaped: int = 0
    shards_taken_over: int = 0
    shards_handed_over: int = 0
    last_tick_at: datetime | None = None


def shard_lease_name(shard: int) -> str:
    return f"shard:{shard}"


class Scheduler:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        node_id: str | None = None,
        config: SchedulerConfig | None = None,
        caller: BlockingCaller | None = None,
        on_runs_created: Callable[[], None] | None = None,
        events: EventBus | None = None,
        membership: Membership | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.membership = membership
        self.node_id = (
            node_id
            or (membership.id if membership is not None else None)
            or f"scheduler:{socket.gethostname()}:{random.getrandbits(32):08x}"
        )
        self.config = config or SchedulerConfig()
        ttl = self.config.lease_ttl
        self._settle = timedelta(seconds=ttl if self.config.settle is None else self.config.settle)
        self._orphan_after = timedelta(
            seconds=ttl if self.config.orphan_after is None else self.config.orphan_after
        )
        self._free_since: dict[int, datetime] = {}
        self._over_since: datetime | None = None
        self._excess: tuple[int, ...] = ()
        self.quota: int | None = None
        self._call = caller or BlockingCaller(2, "oncely-scheduler")
        self._on_runs_created = on_runs_created
        self.events = events or NULL_BUS
        self.events = events or NULL_BUS
        self._leases: dict[int, Lease] = {}
        self._wake = asyncio.Event()
        self.stats = SchedulerStats()

    @property
    def shards(self) -> list[int]:
        return sorted(self._leases)

    def wake(self) -> None:
        """Plan now (a job was added or changed in this process)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        next_lease = next_balance = next_reap = reap_after = 0.0
        retry = cfg.retry_min
        loop = asyncio.get_running_loop()
        try:
            for warning in await self._call(self.store.setup_warnings):
                log.warning("%s", warning)
        except Exception:
            log.warning("could not check the database's setup", exc_info=True)
        try:
            while not stop.is_set():
                mono = loop.time()
                more = False
                try:
                    if mono >= next_lease:
                        await self._call(self.refresh_leases)
                        next_lease = mono + cfg.lease_ttl / 3
                        next_balance = mono + cfg.acquire_interval
                    elif mono >= next_balance:
                        await self._call(self.balance)
                        next_balance = mono + cfg.acquire_interval
                    if self._leases:
                        more = await self._call(self.materialize_and_hand_over)
                    if mono >= next_reap and mono >= reap_after:
                        await self._call(self.reap)
                        next_reap = mono + cfg.reap_interval
                except Exception:
                    # The store is unreachable or refused: keep going. Leases we cannot renew
                    # expire and another scheduler takes over; nothing is written meanwhile.
                    log.exception("scheduler tick failed; retrying")
                    next_lease = 0.0
                    await asyncio.sleep(retry)
                    retry = min(retry * 2, cfg.retry_max)
                    reap_after = loop.time() + cfg.reap_grace
                    continue
                retry = cfg.retry_min
                self.stats.ticks += 1
                self.stats.last_tick_at = self.clock.now()
                if more:
                    continue
                self._wake.clear()
                stop_wait = asyncio.ensure_future(stop.wait())
                wake_wait = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait(
                        {stop_wait, wake_wait},
                        timeout=min(cfg.tick, cfg.acquire_interval),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    stop_wait.cancel()
                    wake_wait.cancel()
        finally:
            # Stopping (SIGTERM): give every shard back at once; whoever is under quota takes
            # them within its acquire interval, well within the lookahead already committed.
            if self._leases:
                try:
                    await self._call(self.release_all)
                except Exception:
                    log.exception("could not release shard leases; they will expire")

    # The methods below are synchronous: they run on the store's thread pool (or directly, in
    # tests, on a frozen clock).

    def refresh_leases(self) -> None:
        """Renew the leases held; drop those lost; then balance."""
        now = self.clock.now()
        ttl = timedelta(seconds=self.config.lease_ttl)
        held = list(self._leases.values())
        renewed = self.store.lease_renew(held, now=now, ttl=ttl) if held else []
        self._leases = {_shard(lease): lease for lease in renewed}
        lost = tuple(x.name for x in held if _shard(x) not in self._leases)
        for name in lost:
            log.warning("lost the lease of %s", name)
        if lost:
            self.events.emit(LeasesLost(self.node_id, lost, "not renewed in time", now))
        self.balance()

    def balance(self) -> None:
        """Read the shard leases and decide our share: take free shards up to our quota (or
        orphans beyond it), and mark the excess to hand over after the next commit."""
        if self.membership is not None and self.membership.last_beat_at is None:
            return  # not registered yet: peers would not count us, nor we them
        now = self.clock.now()
        holdings = {
            _shard(lease): ShardHolding(_shard(lease), lease.holder, lease.expires_at)
            for lease in self.store.lease_list("shard:")
        }
        # Since when each free shard is free: an expired lease says so; a missing row we
        # date from when we first saw it missing.
        free_since: dict[int, datetime] = {}
        for shard in range(SHARD_COUNT):
            holding = holdings.get(shard)
            if holding is None:
                free_since[shard] = self._free_since.get(shard, now)
            elif holding.free_at(now) and holding.expires_at is not None:
                free_since[shard] = holding.expires_at
        self._free_since = free_since
        live = (
            [m.id for m in self.membership.live("scheduler", now)]
            if self.membership is not None
            else []
        )
        members = active_schedulers(self.node_id, live, holdings.values(), now)
        self.quota = quotas(members)[self.node_id]
        decision = decide_shares(
            me=self.node_id,
            quota=self.quota,
            held=set(self._leases),
            holdings=holdings,
            free_since=free_since,
            now=now,
            orphan_after=self._orphan_after,
        )
        if decision.take:
            self._acquire([shard_lease_name(s) for s in decision.take], now)
        if len(self._leases) > self.quota:
            self._over_since = self._over_since or now
            if should_hand_over(self._over_since, now, self._settle):
                self._excess = tuple(
                    sorted(self._leases, reverse=True)[: len(self._leases) - self.quota]
                )
        else:
            self._over_since = None
            self._excess = ()

    def _acquire(self, names: list[str], now: datetime) -> None:
        ttl = timedelta(seconds=self.config.lease_ttl)
        gained = [
            lease
            for lease in self.store.lease_acquire(names, self.node_id, now=now, ttl=ttl)
            if _shard(lease) not in self._leases
        ]
        if gained:
            got, tokens = tuple(x.name for x in gained), tuple(x.token for x in gained)
            self.events.emit(LeasesGained(self.node_id, got, tokens, now))
        for lease in gained:
            self._leases[_shard(lease)] = lease
            if lease.taken_from is not None:
                self.stats.shards_taken_over += 1
                self.events.emit(
                    Takeover(
                        self.node_id,
                        lease.name,
                        lease.taken_from,
                        lease.taken_from_token or 0,
                        lease.token,
                        now,
                    )
                )

    def materialize_and_hand_over(self) -> bool:
        """One materialize pass, then, at that commit boundary, hand the excess over."""
        more = self.materialize()
        if not more:
            self.hand_over()
        return more

    def hand_over(self) -> list[int]:
        """Release the shards marked as excess (call right after a materialize pass: their
        fires up to the lookahead are committed, so the next holder is never late)."""
        if not self._excess:
            return []
        leases = [self._leases.pop(s) for s in self._excess if s in self._leases]
        self._excess = ()
        self._over_since = None
        if not leases:
            return []
        self.store.lease_release(leases)
        self.stats.shards_handed_over += len(leases)
        shards = sorted(_shard(lease) for lease in leases)
        log.info(
            "handed over %d shards (%s) to peers; holding %d, quota %s",
            len(shards),
            ",".join(map(str, shards)),
            len(self._leases),
            self.quota,
        )
        return shards

    def release_all(self) -> None:
        leases = list(self._leases.values())
        self._leases.clear()
        self._excess = ()
        if leases:
            self.store.lease_release(leases)

    def materialize(self) -> bool:
        """Plan and commit one batch of due jobs; True if more are due right away."""
        now = self.clock.now()
        cfg = self.config
        horizon = now + timedelta(seconds=cfg.lookahead)
        due_by = now + timedelta(
            seconds=max(cfg.lookahead - cfg.refill_step, cfg.lookahead / 2)
        )
        jobs = self.store.jobs_due(self.shards, due_by, cfg.batch)
        if not jobs:
            return False
        plans: list[tuple[int, FirePlan]] = []
        for job in jobs:
            plan = plan_fires(job, now, horizon)
            if plan is not None:
                plans.append((job.shard, plan))
        result = self.store.fires_commit(list(self._leases.values()), plans, now=now)
        for shard in result.lost_shards:
            lease = self._leases.pop(shard, None)
            if lease is not None:
                log.warning("lease of %s was taken over; dropping the shard", lease.name)
                self.events.emit(LeasesLost(self.node_id, (lease.name,), "taken over", now))
        if result.runs_created:
            self.events.emit(
                FiresMaterialized(self.node_id, result.runs_created, result.jobs_advanced, now)
            )
            for event in missed_fires(self.node_id, plans, result.lost_shards, now):
                self.events.emit(event)
        self.stats.runs_created += result.runs_created
        self.stats.jobs_advanced += result.jobs_advanced
        if result.runs_created and self._on_runs_created is not None:
            self._on_runs_created()
        # A full batch means more jobs may be due; so does a plan cut short by its limits.
        return len(jobs) == cfg.batch or any(
            p.next_fire_at is not None and p.next_fire_at <= due_by for _, p in plans
        )

    def reap(self) -> int:
        now = self.clock.now()
        expired = self.store.runs_expired(now=now, limit=self.config.reap_batch)
        if not expired:
            return 0
        results = [
            AttemptResult(
                run_id=e.run_id,
                token=e.token,
                attempt=e.attempt,
                worker_id=e.worker_id,
                outcome=AttemptOutcome.LOST,
                decision=decide_after_attempt(AttemptOutcome.LOST, e.failures, e.policy, now),
                started_at=e.started_at,
                finished_at=now,
                error=f"lease expired: worker {e.worker_id} stopped heartbeating",
                expired_before=now,
                job_id=e.job_id,
                job_name=e.job_name,
                queue=e.queue,
            )
            for e in expired
        ]
        accepted = self.store.run_complete(results)
        emit_outcomes(self.events, self.node_id, results, accepted, now)
        recorded = sum(accepted)
        self.stats.runs_reaped += recorded
        if recorded:
            log.warning("reaped %d runs whose worker lease expired", recorded)
            if self._on_runs_created is not None:
                self._on_runs_created()
        return recorded


def _shard(lease: Lease) -> int:
    return int(lease.name.rsplit(":", 1)[1])
