"""The engine: runs the scheduler and worker loops of one process until told to stop.

The engine is handed everything it works with (a store, a clock, action executors, the task
registry) through the ports; it never opens a store, builds an executor or serves HTTP. The
composition root (``oncely.compose``) assembles those and may hand the engine extra
``components`` (the HTTP server) to start once the loops run and to stop before they end.

Every process is a cluster member (``runtime.membership``: a heartbeat row with its roles);
the scheduler shares the shards among the members with the scheduler role.

Supervision: the loops (scheduler, worker, membership heartbeat) retry what they can survive
(a store that is briefly away). A loop that ends anyway, by an exception or by returning
while the process is not stopping, is a dead component: the engine logs it, stops the rest
in order (leases released, runs given back, the member row deleted) and raises
``ComponentFailed``, so the process exits non-zero and its supervisor (systemd, Kubernetes)
restarts it rather than leave a process up with a part missing.

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
from oncely.runtime.membership import Membership, MembershipConfig
from oncely.runtime.scheduler import Scheduler, SchedulerConfig
from oncely.runtime.tasks import TaskRegistry
from oncely.runtime.worker import Worker, WorkerConfig

log = logging.getLogger("oncely")

STALE_LOOP = timedelta(seconds=30)
"""A loop that has not turned for this long makes the process not ready."""


class ComponentFailed(RuntimeError):
    """A component of the process died; the process must exit non-zero."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(f"component(s) died: {', '.join(names)}")
        self.names = tuple(names)


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
    member_ttl: float = 2.5
    """A member whose heartbeat is older than this counts as dead (heartbeats every third)."""


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
        self.membership: Membership | None = None
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- wake-ups (called by the service after a change; harmless when a loop is absent) --

    def wake_scheduler(self) -> None:
        """Safe from any thread (the API's handlers run on a thread pool): the scheduler's
        wake-up is an asyncio event, set on the engine's loop."""
        scheduler, loop = self.scheduler, self._loop
        if scheduler is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            scheduler.wake()
        else:
            loop.call_soon_threadsafe(scheduler.wake)

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
        roles: Sequence[str] = (),
    ) -> None:
        """Run until ``stop``. ``roles`` adds roles the member row announces (``api`` when
        the caller serves HTTP). Raises ``ComponentFailed`` if a loop died."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        self._loop = loop
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        # The scheduler's store calls get threads of their own; the worker makes its own for
        # its hot path and for transactional tasks: none can starve another's leases.
        scheduler_calls = BlockingCaller(2, "oncely-scheduler")
        membership_calls = BlockingCaller(1, "oncely-membership")
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
        self.membership = Membership(
            self.store,
            self.clock,
            roles=[*(["scheduler"] if scheduler else []), *(["worker"] if worker else []), *roles],
            config=MembershipConfig(ttl=cfg.member_ttl),
            # A thread of its own: a busy loop elsewhere never delays the heartbeat.
            caller=membership_calls,
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
                membership=self.membership,
            )
        loops = self._loops = {"membership": asyncio.create_task(self.membership.run(stop))}
        tasks = [loops["membership"]]
        started: list[Component] = []
        died: list[str] = []
        try:
            if self.worker is not None:
                loops["worker"] = asyncio.create_task(self.worker.run(stop))
                tasks.append(loops["worker"])
            if self.scheduler is not None:
                loops["scheduler"] = asyncio.create_task(self.scheduler.run(stop))
                tasks.append(loops["scheduler"])
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
            stopper.cancel()
            stopping = stopper in done
            for name, task in loops.items():
                if task not in done:
                    continue
                failed = task.cancelled() or task.exception() is not None
                if failed or not stopping:
                    # Raised, or ended while the process was not stopping: dead.
                    died.append(name)
                    log.critical(
                        "component %s died; stopping the process (exit non-zero)",
                        name,
                        exc_info=task.exception(),
                    )
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
            membership_calls.shutdown(wait=False)
            for sig in installed:
                loop.remove_signal_handler(sig)
            self.worker = None
            self.scheduler = None
            self.membership = None
            self._loops = {}
        if died:
            raise ComponentFailed(died)

    # -- health ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The loops' counters, as /readyz reports them."""
        info: dict[str, Any] = {"store": self.store.dialect}
        if self.membership is not None:
            info["member"] = {"id": self.membership.id, "roles": list(self.membership.me.roles)}
        if self.scheduler is not None:
            stats = self.scheduler.stats
            info["scheduler"] = {
                "shards": len(self.scheduler.shards),
                "quota": self.scheduler.quota,
                "last_tick_at": _iso(stats.last_tick_at),
                "runs_created": stats.runs_created,
                "shards_taken_over": stats.shards_taken_over,
                "shards_handed_over": stats.shards_handed_over,
            }
        if self.worker is not None:
            # Per-queue loop ages and the heartbeat's age (seconds), with the counters.
            info["worker"] = {
                **self.worker.status(),
                "last_loop_at": _iso(self.worker.last_loop_at),
            }
        return info

    def components(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Each loop of this process: ``alive`` (its task has not ended), ``last_turn_age``
        in seconds (None before its first turn), the age it may reach (``stale_after``), and
        ``ok`` when alive and not stale."""
        turns: dict[str, tuple[datetime | None, timedelta]] = {}
        if self.membership is not None:
            # Past this, peers start counting us dead.
            turns["membership"] = (
                self.membership.last_beat_at,
                max(self.membership.ttl * 4, timedelta(seconds=10)),
            )
        if self.scheduler is not None:
            turns["scheduler"] = (self.scheduler.stats.last_tick_at, STALE_LOOP)
        if self.worker is not None:
            turns["worker"] = (self.worker.last_loop_at, STALE_LOOP)
        report: dict[str, dict[str, Any]] = {}
        for name, task in list(self._loops.items()):
            last, limit = turns.get(name, (None, STALE_LOOP))
            age = None if last is None else round((now - last).total_seconds(), 3)
            alive = not task.done()
            report[name] = {
                "alive": alive,
                "last_turn_age": age,
                "stale_after": limit.total_seconds(),
                "ok": alive and age is not None and age <= limit.total_seconds(),
            }
        return report

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Blocking (reads the store): ready when the store answers with its schema and every
        loop of this process is alive and turned recently. The body never carries exception
        text."""
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
            components = self.components(now)
            body["components"] = components
            for name, health in components.items():
                if not health["alive"]:
                    problems.append(f"{name} is dead")
                elif health["last_turn_age"] is None:
                    problems.append(f"{name} has not turned yet")
                elif not health["ok"]:
                    problems.append(f"{name} loop is not turning")
        body["status"] = "ready" if not problems else "not ready"
        if problems:
            body["problems"] = problems
        return not problems, body


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
