"""``oncely.App``: the Python API, and the process that runs scheduler, worker and HTTP.

A script that registers tasks and jobs and calls ``app.run()`` is a complete single-machine
deployment; ``oncely up`` is this with the settings taken from flags and environment. The App
sits above the runtime: it assembles the store, clock, executors and HTTP server through
``oncely.compose`` and hands them to the ``Engine``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError

from oncely import compose
from oncely.config import Settings, load_settings
from oncely.domain.errors import InvalidInput, StoreUnavailable
from oncely.domain.ids import looks_like_id
from oncely.domain.jobs import Job
from oncely.domain.principal import Principal, system_principal
from oncely.domain.runs import Attempt, Run, RunState
from oncely.ports.clock import Clock
from oncely.ports.store import JobQuery, RunQuery, Store
from oncely.runtime.engine import ComponentStarter, Engine
from oncely.runtime.events import EventBus
from oncely.runtime.scheduler import Scheduler
from oncely.runtime.tasks import TaskRegistry
from oncely.runtime.worker import Worker
from oncely.service import Service, ServiceDeps
from oncely.wire import JobCreate, JobFields, Misfire, Overlap, invalid_from

log = logging.getLogger("oncely")

F = TypeVar("F", bound=Callable[..., Any])

_D = JobFields()
"""The job defaults, written once (in ``oncely.wire.JobFields``)."""
_LAST_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"


def _python_args(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``add_job``'s Python-friendly values (a callable task, timedeltas, tuples) as wire
    values."""
    out = dict(spec)
    task = out.get("task")
    if callable(task):
        out["task"] = getattr(task, "__oncely_task__", None) or task.__name__
    for key in ("every", "jitter"):
        if isinstance(out.get(key), timedelta):
            out[key] = out[key].total_seconds()
    shell = out.get("shell")
    if isinstance(shell, str):
        raise InvalidInput(
            "shell= takes an argv list such as ['pg_dump', 'mydb'], never a shell string",
            field="shell",
        )
    if isinstance(shell, Sequence):
        out["shell"] = list(shell)
    for key in ("http", "shell", "sql"):
        if isinstance(out.get(key), Mapping):
            out[key] = dict(out[key])
    return out


def job_create(args: Mapping[str, Any]) -> JobCreate:
    """A validated ``JobCreate`` from ``add_job``-style arguments."""
    try:
        return JobCreate.model_validate(_python_args(args))
    except ValidationError as exc:
        raise invalid_from(exc) from None


def run_states(states: Sequence[str] | None) -> list[RunState] | None:
    if states is None:
        return None
    try:
        return [RunState(s) for s in states]
    except ValueError:
        known = ", ".join(s.value for s in RunState)
        raise InvalidInput(
            f"unknown run state in {list(states)}; one of {known}", field="state"
        ) from None


class App:
    """The oncely application.

    ``store`` is a URL (``sqlite:///oncely.db``, ``postgresql://...``) or a ``Store``; it is
    opened and migrated on first use, so a module can create an ``App`` at import time.
    """

    def __init__(
        self,
        store: str | Store | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        owner: str = "default",
    ) -> None:
        self.settings = settings or load_settings()
        self._store_arg: str | Store = store if store is not None else self.settings.store
        self._store: Store | None = None
        self._clock = clock
        self.owner = owner
        self.registry = TaskRegistry()
        self.events = EventBus()
        """The runtime's events (``oncely.runtime.events``): subscribe to observe runs, leases
        and store calls of this process; metrics and logs are subscribers too."""
        self._engine: Engine | None = None
        self._service: Service | None = None

    # -- setup ----------------------------------------------------------------------------

    def configure(self, settings: Settings, store: str | Store | None = None) -> None:
        """Replace settings (and the store) before first use; used by the CLI's --app."""
        if self._store is not None:
            raise RuntimeError("configure() must be called before the store is used")
        self.settings = settings
        self._store_arg = store if store is not None else settings.store
        self._service = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = compose.observed(compose.open_store(self._store_arg), self.events)
        return self._store

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            self._clock = compose.pick_clock(self.store)
        return self._clock

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def task(self, name: str | None = None, *, transactional: bool = False) -> Callable[[F], F]:
        """Register a function as a task: ``@app.task("send-report")``."""

        def register(fn: F) -> F:
            self.registry.register(name or fn.__name__, fn, transactional=transactional)
            return fn

        return register

    # -- the service ----------------------------------------------------------------------

    @property
    def service(self) -> Service:
        """The service every call goes through (the REST API and CLI use the same one)."""
        if self._service is None:
            self._service = Service(
                ServiceDeps(
                    store=lambda: self.store,
                    clock=lambda: self.clock,
                    actions=self.settings.action_settings(),
                    check_action=compose.check_action_allowed,
                    member_ttl=self.settings.scheduler_lease_ttl,
                    wake_scheduler=self._wake_scheduler,
                    wake_worker=self._wake_worker,
                ),
                check_channel=compose.check_channel,
            )
        return self._service

    def _wake_scheduler(self) -> None:
        if self._engine is not None:
            self._engine.wake_scheduler()

    def _wake_worker(self, queue: str | None) -> None:
        if self._engine is not None:
            self._engine.wake_worker(queue)

    @property
    def principal(self) -> Principal:
        """Who this App acts as: the process's own authority, as ``self.owner``."""
        return self._who()

    def _who(self, owner: str | None = None) -> Principal:
        """The App acts with the process's own authority, as ``owner`` (``self.owner``)."""
        return system_principal(owner or self.owner)

    # -- jobs -----------------------------------------------------------------------------

    def add_job(
        self,
        name: str,
        *,
        cron: str | None = _D.cron,
        at: datetime | str | None = None,
        every: timedelta | float | str | None = _D.every,
        task: str | Callable[..., Any] | None = _D.task,
        http: str | Mapping[str, Any] | None = None,
        shell: Sequence[str] | Mapping[str, Any] | None = None,
        sql: Mapping[str, Any] | None = None,
        email: Mapping[str, Any] | None = None,
        payload: Any = _D.payload,
        retries: int = _D.retries,
        base_delay: float = _D.base_delay,
        max_delay: float = _D.max_delay,
        timeout: float | None = _D.timeout,
        overlap: Overlap = _D.overlap,
        misfire: Misfire = _D.misfire,
        misfire_grace: float = _D.misfire_grace,
        queue: str = _D.queue,
        priority: int = _D.priority,
        timezone: str = _D.timezone,
        dst_gap: str = _D.dst_gap,
        dst_fold: str = _D.dst_fold,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        jitter: timedelta | float | str | None = _D.jitter,
        anchor: datetime | str | None = None,
        paused: bool = _D.paused,
        deadline: float | str | None = _D.deadline,
        retention: float | None = _D.retention,
        replace: bool = False,
        owner: str | None = None,
    ) -> Job:
        """Create a job (or, with ``replace=True``, redefine the job of that name).
        Defaults are ``oncely.wire.JobFields``'s, shared with the REST API and the CLI."""
        args = dict(locals())
        for key in ("self", "replace", "owner"):
            del args[key]
        spec = job_create(args)
        return self.service.jobs.create(self._who(owner), spec, replace=replace)

    def add_jobs(self, specs: Iterable[Mapping[str, Any]]) -> int:
        """Create many jobs in one transaction, all or none: each spec holds ``add_job``'s
        arguments (``name`` included, ``replace`` not). Every spec is validated first; a bad
        one (``InvalidInput``) or a taken name (``Conflict``) stores nothing. Returns the
        number stored. Far faster than ``add_job`` in a loop for imports of thousands."""
        return self.service.jobs.create_many(self._who(), (_python_args(s) for s in specs))

    def get_job(self, name_or_id: str, *, owner: str | None = None) -> Job:
        """A job by id (text shaped like a UUID) or else by name: never ambiguous, since
        names may not look like ids."""
        who = self._who(owner)
        if looks_like_id(name_or_id):
            return self.service.jobs.get(who, name_or_id)
        return self.service.jobs.by_name(who, name_or_id, owner=who.owner)

    def list_jobs(self, *, limit: int = 100, after_name: str | None = None) -> list[Job]:
        """This App owner's jobs by name; ``after_name`` pages."""
        after = None if after_name is None else (after_name, _LAST_ID)
        return self.service.jobs.search(
            self._who(), JobQuery(limit=limit, after=after), owner=self.owner
        )

    def pause(self, name_or_id: str) -> Job:
        job = self.get_job(name_or_id)
        return self.service.jobs.set_paused(self._who(), job.id, paused=True)

    def resume(self, name_or_id: str) -> Job:
        job = self.get_job(name_or_id)
        return self.service.jobs.set_paused(self._who(), job.id, paused=False)

    def trigger(self, name_or_id: str) -> Run:
        """Run the job now, once, outside its schedule."""
        job = self.get_job(name_or_id)
        return self.service.jobs.trigger(self._who(), job.id)

    def delete(self, name_or_id: str) -> None:
        job = self.get_job(name_or_id)
        self.service.jobs.delete(self._who(), job.id)

    # -- runs -----------------------------------------------------------------------------

    def list_runs(
        self,
        job: str | None = None,
        *,
        states: Sequence[str] | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        job_id = self.get_job(job).id if job else None
        query = RunQuery(limit=limit, before=before, job_id=job_id, states=run_states(states))
        if job_id is None:
            return self.service.runs.search(self._who(), query, owner=self.owner)
        return self.service.runs.search(self._who(), query)

    def get_run(self, run_id: str) -> Run:
        return self.service.runs.get(self._who(), run_id)

    def attempts(self, run_id: str) -> list[Attempt]:
        return self.service.runs.attempts(self._who(), run_id)

    def requeue(self, run_id: str) -> Run:
        return self.service.runs.requeue(self._who(), run_id)

    def cancel(self, run_id: str) -> Run:
        return self.service.runs.cancel(self._who(), run_id)

    # -- running --------------------------------------------------------------------------

    @property
    def scheduler(self) -> Scheduler | None:
        """The in-process scheduler while ``run`` runs."""
        return self._engine.scheduler if self._engine is not None else None

    @property
    def worker(self) -> Worker | None:
        """The in-process worker while ``run`` runs."""
        return self._engine.worker if self._engine is not None else None

    def run(self, *, scheduler: bool = True, worker: bool = True, serve_http: bool = False) -> None:
        """Run until SIGTERM or SIGINT; then stop claiming, finish or release work, exit."""
        from oncely.runtime.heap import freeze_startup_heap

        # This call owns the process: once everything is up (the HTTP app too), what is
        # alive stays alive, and the collector stops walking it (runtime/heap.py).
        asyncio.run(
            self.run_async(
                scheduler=scheduler,
                worker=worker,
                serve_http=serve_http,
                on_ready=freeze_startup_heap,
            )
        )

    async def run_async(
        self,
        *,
        scheduler: bool = True,
        worker: bool = True,
        serve_http: bool = False,
        stop: asyncio.Event | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        store = await self._open_store_patiently()
        total = sum(self.settings.queues.values())
        task_threads = ThreadPoolExecutor(max_workers=max(total, 4), thread_name_prefix="task")
        executors = (
            compose.build_executors(self.settings, self.registry, task_threads) if worker else {}
        )
        engine = Engine(
            store,
            self.clock,
            config=compose.engine_config(self.settings),
            registry=self.registry,
            executors=executors,
            events=self.events,
        )
        components: list[ComponentStarter] = []
        run_log = compose.runtime_log(engine)
        metrics = None
        if serve_http:
            from oncely.api.server import create_http_app

            metrics = compose.runtime_metrics(engine, self.settings)
            exposition = metrics.exposition

            components.append(
                compose.http_server(
                    lambda: create_http_app(
                        engine.readiness,
                        auth=compose.authenticator(store, self.clock, self.settings),
                        login_limits=compose.login_limits(self.settings),
                        metrics=exposition,
                        metrics_public=self.settings.metrics_public,
                        service=self.service,
                    ),
                    self.settings.host,
                    self.settings.port,
                )
            )
        if scheduler and self.settings.notify:
            components.append(compose.notify_service(store, self.clock, self.settings))
        if scheduler and self.settings.retention:
            components.append(
                compose.retention_service(store, self.clock, self.settings, self.events)
            )
        self._engine = engine
        try:
            await engine.run(
                scheduler=scheduler,
                worker=worker,
                stop=stop,
                on_ready=on_ready,
                components=components,
                roles=["api"] if serve_http else [],
            )
        finally:
            self._engine = None
            # Hand out what the loops emitted last (a dead run's log line) before closing.
            await asyncio.to_thread(self.events.flush, 2.0)
            run_log.close()
            if metrics is not None:
                metrics.close()
            for executor in executors.values():
                with contextlib.suppress(Exception):
                    await executor.aclose()
            task_threads.shutdown(wait=False, cancel_futures=True)

    async def _open_store_patiently(self) -> Store:
        """Open the store; while it is unreachable, retry on a capped backoff for up to
        ``startup_store_wait`` seconds (a process started with, or just before, its
        database: a reboot, a compose file, a failover) instead of exiting at once."""
        wait = self.settings.startup_store_wait
        deadline = time.monotonic() + wait
        delay = 0.25
        while True:
            try:
                return await asyncio.to_thread(lambda: self.store)
            except StoreUnavailable as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(
                        f"{exc} (waited {wait:g} s: startup_store_wait)"
                    ) from exc
                pause = min(delay, left)
                log.warning("%s; retrying in %.1f s", exc, pause)
                await asyncio.sleep(pause)
                delay = min(delay * 2, 5.0)

    def status(self) -> dict[str, Any]:
        """What /readyz reports."""
        if self._engine is not None:
            return self._engine.status()
        return {"store": self.store.dialect}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
