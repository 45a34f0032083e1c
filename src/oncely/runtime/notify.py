"""The notification service: delivers the outbox and runs the dead-man's switch.

Design note:

- One deliverer in the cluster at a time: the service works only while it holds the lease
  ``maintenance:notify`` (``Store.lease_acquire``), renewed every turn. Every scheduler
  process runs one; the others wait for the lease to be free or to expire.
- Each turn: sweep the dead-man's deadlines (every ``deadman_every`` seconds), then take up
  to ``batch`` due notifications and deliver them concurrently (``concurrency`` at once),
  recording each try (``notification_record``). A failed try is retried after
  ``delivery_backoff`` (exponential with jitter) until ``max_attempts``, then given up.
- It never blocks workers: its own asyncio task, its own threads for store calls (Apprise
  runs in threads of its own), and no lock a worker waits on.
- At-least-once on the wire: a deliverer killed after a receiver got a message and before the
  try was recorded leaves the notification pending; the next holder sends it again with the
  same id, and the receiver dedupes on it. A lease lost in the middle of a batch lets the
  batch finish (the tries are recorded conditionally, so nothing is counted twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from oncely.domain.limits import cap_text
from oncely.domain.notify import MAX_DELIVERY_ATTEMPTS, DueNotification, delivery_backoff, render
from oncely.ports.clock import Clock
from oncely.ports.notify import NotificationSender
from oncely.ports.store import Lease, Store

log = logging.getLogger("oncely.notify")

LEASE_NAME = "maintenance:notify"
T = TypeVar("T")


@dataclass(frozen=True)
class NotifyConfig:
    lease_ttl: float = 15.0
    poll: float = 1.0
    """Seconds between turns when there is nothing to send."""
    batch: int = 100
    concurrency: int = 8
    deadman_every: float = 15.0
    max_attempts: int = MAX_DELIVERY_ATTEMPTS
    backoff_base: float = 5.0
    backoff_cap: float = 3600.0


@dataclass
class NotifyStats:
    delivered: int = 0
    failed_tries: int = 0
    given_up: int = 0
    deadman_lapses: int = 0
    holding: bool = False


class NotifyService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        sender: NotificationSender,
        *,
        holder: str,
        config: NotifyConfig | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sender = sender
        self.holder = holder
        self.config = config or NotifyConfig()
        self.stats = NotifyStats()
        self._lease: Lease | None = None
        self._next_sweep: datetime | None = None
        self._threads = ThreadPoolExecutor(2, thread_name_prefix="oncely-notify")
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, lambda: fn(*args, **kwargs))

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                busy = False
                try:
                    if await self._hold():
                        busy = await self.turn()
                except Exception:
                    log.exception("notification service: a turn failed; trying again")
                if busy:
                    continue
                self._wake.clear()
                waits = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED),
                        self.config.poll,
                    )
                for task in waits:
                    task.cancel()
        finally:
            if self._lease is not None:
                with contextlib.suppress(Exception):
                    await self._call(self.store.lease_release, [self._lease])
                self._lease = None
            self.stats.holding = False
            self._threads.shutdown(wait=False)

    async def _hold(self) -> bool:
        now = await self._call(self.clock.now)
        ttl = timedelta(seconds=self.config.lease_ttl)
        if self._lease is not None:
            renewed = await self._call(self.store.lease_renew, [self._lease], now=now, ttl=ttl)
            self._lease = renewed[0] if renewed else None
            if self._lease is None:
                log.warning("notification service: lost the %s lease", LEASE_NAME)
        if self._lease is None:
            got = await self._call(
                self.store.lease_acquire, [LEASE_NAME], self.holder, now=now, ttl=ttl
            )
            self._lease = got[0] if got else None
            if self._lease is not None:
                log.info("notification service: holding %s", LEASE_NAME)
        self.stats.holding = self._lease is not None
        return self._lease is not None

    async def turn(self) -> bool:
        """One round of work; True if a full batch was found (more may be waiting)."""
        now: datetime = await self._call(self.clock.now)
        if self._next_sweep is None or now >= self._next_sweep:
            sweep = await self._call(self.store.deadman_sweep, now=now)
            self.stats.deadman_lapses += sweep.lapsed
            if sweep.lapsed:
                log.warning("dead-man's switch: %d job(s) missed their deadline", sweep.lapsed)
            self._next_sweep = now + timedelta(seconds=self.config.deadman_every)
        due: list[DueNotification] = await self._call(
            self.store.notification_due, now=now, limit=self.config.batch
        )
        if not due:
            return False
        slots = asyncio.Semaphore(self.config.concurrency)

        async def one(item: DueNotification) -> None:
            async with slots:
                await self._deliver(item)

        await asyncio.gather(*(one(item) for item in due))
        return len(due) >= self.config.batch

    async def _deliver(self, due: DueNotification) -> None:
        n = due.notification
        attempt = n.attempts + 1
        started = time.monotonic()
        error: str | None = None
        if due.channel_kind is None:
            error = "the channel was deleted"
        else:
            try:
                await self.sender.send(due, render(n))
            except Exception as exc:  # a channel's failure is recorded, never raised
                error = cap_text(str(exc) or type(exc).__name__, 1000)
        duration_ms = int((time.monotonic() - started) * 1000)
        now: datetime = await self._call(self.clock.now)
        retry_at: datetime | None = None
        if (
            error is not None
            and due.channel_kind is not None
            and attempt < self.config.max_attempts
        ):
            retry_at = now + delivery_backoff(
                attempt,
                random.random(),  # noqa: S311 - jitter, not crypto
                base=self.config.backoff_base,
                cap=self.config.backoff_cap,
            )
        await self._call(
            self.store.notification_record,
            n.id,
            attempt=attempt,
            ok=error is None,
            error=error,
            duration_ms=duration_ms,
            now=now,
            retry_at=retry_at,
        )
        if error is None:
            self.stats.delivered += 1
        elif retry_at is None:
            self.stats.given_up += 1
            log.warning(
                "notification %s (%s of job %s) given up after %d tries: %s",
                n.id,
                n.event.value,
                n.job_name,
                attempt,
                error,
            )
        else:
            self.stats.failed_tries += 1
            log.warning(
                "notification %s (%s of job %s) try %d failed, next at %s: %s",
                n.id,
                n.event.value,
                n.job_name,
                attempt,
                retry_at.isoformat(),
                error,
            )
