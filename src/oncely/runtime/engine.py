"""The engine: runs the scheduler and worker loops of one process until told to stop.

The engine is handed everything it works with (a store, a clock, action executors, the task
registry) through the ports; it never opens a store, builds an executor or serves HTTP. The
composition root (``oncely.compose``) assembles those and may hand the engine extra
``components`` (the HTTP server) to start once the loops run and to stop before they end.

Stopping: ``stop`` is set by SIGTERM/SIGINT (installed here when the loop allows it) or by the
caller. The worker then stops claiming and finishes or releases its runs (``shutdown_grace``);
components are stopped first, so a stopping process answers no more requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from oncely.ports.actions import ActionExecutor
from oncely.ports.clock import Clock
from oncely.ports.store import Store
from oncely.runtime.blocking import BlockingCaller
from oncely.runtime.events import EventBus
from oncely.runtime.scheduler import Scheduler, SchedulerConfig
from oncely.runtime.tasks import TaskRegistry
from oncely.runtime.worker import Worker, WorkerConfig

log = logging.getLogger("oncely")

STALE_LOOP = timedelta(seconds=30)
"""A loop that has not turned for this long makes the process not ready."""


class Component(Protocol):
    """Something the engine stops when it stops (the HTTP server)."""

    async def stop(self) -> None: ...


ComponentStarter = Callable[[], Awaitable[Component]]


@dataclass(frozen=True)
class EngineConfig:
    queues: Mapping[str, int] = field(default_factory=lambda: {"default": 10})
    lookahead: float = 5.0
    scheduler_lease_ttl: float = 2.5
    worker_lease_ttl: float = 30.0
    worker_prefetch: float = 0.5
    shutdown_grace: float = 30.0


class Engine:
    """Scheduler and/or worker loops over one store. ``scheduler`` and ``worker`` are set
    while ``run`` runs (the in-process service wakes them when it changes jobs or runs)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        config: EngineConfig,
        registry: TaskRegistry,
        executors: Mapping[str, ActionExecutor],
        events: EventBus | None = None,
    ) -> None:
        self.events = events or EventBus()
        """What the loops emit (``oncely.runtime.events``): subscribe before ``run``."""
        self.store = store
        self.clock = clock
        self.config = config
        self.registry = registry
        self.executors = executors
        self.scheduler: Scheduler | None = None
        self.worker: Worker | None = None

    # -- wake-ups (called by the service after a change; harmless when a loop is absent) --

    def wake_scheduler(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()

    def wake_worker(self, queue: str | None = None) -> None:
        if self.worker is not None:
            self.worker.wake(queue)

    # -- running --------------------------------------------------------------------------

    async def run(
        self,
        *,
        scheduler: bool = True,
        worker: bool = True,
        stop: asyncio.Event | None = None,
        on_ready: Callable[[], None] | None = None,
        components: Sequence[ComponentStarter] = (),
    ) -> None:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        # The scheduler's store calls get threads of their own; the worker makes its own for
        # its hot path and for transactional tasks: none can starve another's leases.
        scheduler_calls = BlockingCaller(2, "oncely-scheduler")
        cfg = self.config
        if worker:
            self.worker = Worker(
                self.store,
                self.clock,
                self.executors,
                registry=self.registry,
                config=WorkerConfig(
                    queues=dict(cfg.queues),
                    lease_ttl=cfg.worker_lease_ttl,
                    prefetch=cfg.worker_prefetch,
                    shutdown_grace=cfg.shutdown_grace,
                ),
                events=self.events,
            )
        if scheduler:
            self.scheduler = Scheduler(
                self.store,
                self.clock,
                config=SchedulerConfig(
                    lookahead=cfg.lookahead,
                    lease_ttl=cfg.scheduler_lease_ttl,
                ),
                caller=scheduler_calls,
                on_runs_created=self.worker.wake if self.worker is not None else None,
                events=self.events,
            )
        tasks: list[asyncio.Task[None]] = []
        started: list[Component] = []
        try:
            if self.worker is not None:
                tasks.append(asyncio.create_task(self.worker.run(stop)))
            if self.scheduler is not None:
                tasks.append(asyncio.create_task(self.scheduler.run(stop)))
            for start in components:
                started.append(await start())
            log.info(
                "oncely running: store=%s scheduler=%s worker=%s",
                self.store.dialect,
                scheduler,
                worker,
            )
            if on_ready is not None:
                on_ready()
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    log.error("a component failed", exc_info=task.exception())
            stop.set()
            for component in reversed(started):
                with contextlib.suppress(Exception):
                    await component.stop()
            started.clear()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            stop.set()
            for component in reversed(started):
                with contextlib.suppress(Exception):
                    await component.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            scheduler_calls.shutdown(wait=False)
            for sig in installed:
                loop.remove_signal_handler(sig)
            self.worker = None
            self.scheduler = None

    # -- health ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The loops' counters, as /readyz reports them."""
        info: dict[str, Any] = {"store": self.store.dialect}
        if self.scheduler is not None:
            info["scheduler"] = {
                "shards": len(self.scheduler.shards),
                "last_tick_at": _iso(self.scheduler.stats.last_tick_at),
                "runs_created": self.scheduler.stats.runs_created,
            }
        if self.worker is not None:
            # Per-queue loop ages and the heartbeat's age (seconds), with the counters.
            info["worker"] = {
                **self.worker.status(),
                "last_loop_at": _iso(self.worker.last_loop_at),
            }
        return info

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Blocking (reads the store): ready when the store answers with its schema and every
        loop of this process turned recently. The body never carries exception text."""
        problems: list[str] = []
        body: dict[str, Any] = {}
        try:
            body["schema_version"] = self.store.schema_version()
            body.update(self.status())
            now: datetime | None = self.clock.now()
        except Exception as exc:
            log.warning("readiness: store unreachable", exc_info=exc)
            problems.append(f"store unreachable ({type(exc).__name__})")
            now = None
        if now is not None:
            if self.scheduler is not None:
                last = self.scheduler.stats.last_tick_at
                if last is None or now - last > STALE_LOOP:
                    problems.append("scheduler loop is not turning")
            if self.worker is not None:
                last_loop = self.worker.last_loop_at
                if last_loop is None or now - last_loop > STALE_LOOP:
                    problems.append("worker loop is not turning")
        body["status"] = "ready" if not problems else "not ready"
        if problems:
            body["problems"] = problems
        return not problems, body


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
