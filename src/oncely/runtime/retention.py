"""Retention: bounded history. Finished runs and their attempts older than their age are
deleted; deleted jobs go once their runs are gone.

- **One pruner in the cluster**: the service works only while it holds the lease
  ``maintenance:retention`` (``Store.lease_acquire``), renewed before every batch. Every
  scheduler process runs one; the others wait for the lease to be free or to expire. Its
  deletes are not fenced: deleting a finished run past its age is the same act whoever does
  it, and two pruners at once (a stalled holder waking up) only compete for rows
  (``SKIP LOCKED``), never delete a run that should stay.
- **Bounded batches, short statements**: each ``Store.runs_prune`` call deletes at most
  ``batch`` runs (and their attempts) in one statement, skipping rows other transactions
  hold. A *pass* walks the old runs once in (scheduled_for, id) order with a cursor, so runs
  it keeps (dead, waiting, or younger than their job's retention) are read once per pass,
  not once per batch. Between batches it yields (``pause``); after a pass it purges deleted
  jobs without runs and sleeps ``interval``.
- Ages per end state come from the settings (``RetentionAges``); a job's own
  ``Policy.retention`` replaces them for its runs. ``dead`` runs are never pruned: they are
  kept until handled (requeued).
- What it deleted is emitted as ``RetentionPruned`` events (metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from oncely.ports.clock import Clock
from oncely.ports.store import Lease, RetentionAges, Store
from oncely.runtime.blocking import BlockingCaller
from oncely.runtime.events import NULL_BUS, EventBus, RetentionPruned

log = logging.getLogger("oncely.retention")

LEASE_NAME = "maintenance:retention"


@dataclass(frozen=True)
class RetentionConfig:
    ages: RetentionAges = field(default_factory=RetentionAges)
    batch: int = 1000
    """Runs deleted per statement at most."""
    pause: float = 0.05
    """Seconds between two batches of one pass (lets other writers in)."""
    interval: float = 60.0
    """Seconds between passes."""
    lease_ttl: float = 30.0


@dataclass
class RetentionStats:
    runs: int = 0
    attempts: int = 0
    jobs: int = 0
    passes: int = 0
    holding: bool = False


class RetentionService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        holder: str,
        config: RetentionConfig | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.holder = holder
        self.config = config or RetentionConfig()
        self.events = events or NULL_BUS
        self.stats = RetentionStats()
        self._lease: Lease | None = None
        self._after: tuple[datetime, str] | None = None
        self._call = BlockingCaller(1, "oncely-retention")

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                more = False
                try:
                    more = await self._call(self.step)
                except Exception:
                    log.exception("retention: a batch failed; trying again")
                wait = self.config.pause if more else self.config.interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            if self._lease is not None:
                with contextlib.suppress(Exception):
                    await self._call(self.store.lease_release, [self._lease])
                self._lease = None
            self.stats.holding = False
            await asyncio.to_thread(self._call.shutdown)

    # Synchronous: runs on the service's own thread (tests drive it with a frozen clock).

    def hold(self, now: datetime) -> bool:
        """Renew or take the retention lease; whether it is held."""
        ttl = timedelta(seconds=self.config.lease_ttl)
        if self._lease is not None:
            renewed = self.store.lease_renew([self._lease], now=now, ttl=ttl)
            self._lease = renewed[0] if renewed else None
            if self._lease is None:
                log.warning("retention: lost the %s lease", LEASE_NAME)
        if self._lease is None:
            got = self.store.lease_acquire([LEASE_NAME], self.holder, now=now, ttl=ttl)
            self._lease = got[0] if got else None
        self.stats.holding = self._lease is not None
        return self.stats.holding

    def step(self) -> bool:
        """One batch (and, at the end of a pass, the purge of deleted jobs); True if the
        pass goes on."""
        now = self.clock.now()
        if not self.hold(now):
            self._after = None
            return False
        batch = self.store.runs_prune(
            self.config.ages, now=now, after=self._after, limit=self.config.batch
        )
        self._after = batch.next_after
        jobs = 0
        if batch.next_after is None:
            jobs = self.store.jobs_purge(before=now, limit=self.config.batch)
            self.stats.passes += 1
        self.stats.runs += batch.runs
        self.stats.attempts += batch.attempts
        self.stats.jobs += jobs
        if batch.runs or jobs:
            self.events.emit(RetentionPruned(self.holder, batch.runs, batch.attempts, jobs, now))
        return batch.next_after is not None
