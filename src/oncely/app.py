"""``oncely.App``: the Python API, and the process that runs scheduler, worker and HTTP.

A script that registers tasks and jobs and calls ``app.run()`` is a complete single-machine
deployment; ``oncely up`` is this with the settings taken from flags and environment. The App
sits above the runtime: it assembles the store, clock, executors and HTTP server through
``oncely.compose`` and hands them to the ``Engine``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from oncely import compose
from oncely.config import Settings, load_settings
from oncely.domain.actions import (
    Action,
    PythonAction,
    action_from_dict,
    validate_action,
)
from oncely.domain.errors import InvalidInput, NotFound
from oncely.domain.ids import new_id
from oncely.domain.jobs import Job, shard_of, validate_job_parts
from oncely.domain.policy import Misfire, Overlap, Policy
from oncely.domain.runs import Attempt, Run, RunState
from oncely.domain.schedule import AtSchedule, initial_fire, make_schedule, next_fire
from oncely.ports.clock import Clock
from oncely.ports.store import Store
from oncely.runtime.engine import ComponentStarter, Engine
from oncely.runtime.scheduler import Scheduler
from oncely.runtime.tasks import TaskRegistry
from oncely.runtime.worker import Worker

log = logging.getLogger("oncely")

F = TypeVar("F", bound=Callable[..., Any])


def build_action(
    *,
    task: str | None = None,
    http: str | Mapping[str, Any] | None = None,
    shell: Sequence[str] | Mapping[str, Any] | None = None,
    sql: Mapping[str, Any] | None = None,
) -> Action:
    given = [k for k, v in {"task": task, "http": http, "shell": shell, "sql": sql}.items() if v]
    if len(given) != 1:
        raise InvalidInput("give exactly one of task=, http=, shell= or sql=", field="action")
    if task is not None:
        return validate_action(PythonAction(task=task))
    if http is not None:
        spec = {"url": http} if isinstance(http, str) else dict(http)
        return action_from_dict({"kind": "http", **spec})
    if shell is not None:
        if isinstance(shell, str):
            raise InvalidInput(
                "shell= takes an argv list such as ['pg_dump', 'mydb'], never a shell string",
                field="shell",
            )
        spec = {"argv": list(shell)} if not isinstance(shell, Mapping) else dict(shell)
        return action_from_dict({"kind": "shell", **spec})
    assert sql is not None
    return action_from_dict({"kind": "sql", **dict(sql)})


def _job_args(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``add_job``'s arguments from a spec: its defaults, overridden by the spec's keys."""
    if "name" not in spec:
        raise InvalidInput("a job spec needs a name", field="name")
    unknown = set(spec) - set(_ADD_JOB_DEFAULTS) - {"name"}
    if unknown:
        raise InvalidInput(f"unknown job fields: {', '.join(sorted(unknown))}", field="spec")
    return {**_ADD_JOB_DEFAULTS, **spec}


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
        self._engine: Engine | None = None

    # -- setup ----------------------------------------------------------------------------

    def configure(self, settings: Settings, store: str | Store | None = None) -> None:
        """Replace settings (and the store) before first use; used by the CLI's --app."""
        if self._store is not None:
            raise RuntimeError("configure() must be called before the store is used")
        self.settings = settings
        self._store_arg = store if store is not None else settings.store

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = compose.open_store(self._store_arg)
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

    # -- jobs -----------------------------------------------------------------------------

    def add_job(
        self,
        name: str,
        *,
        cron: str | None = None,
        at: datetime | str | None = None,
        every: timedelta | float | str | None = None,
        task: str | Callable[..., Any] | None = None,
        http: str | Mapping[str, Any] | None = None,
        shell: Sequence[str] | Mapping[str, Any] | None = None,
        sql: Mapping[str, Any] | None = None,
        payload: Any = None,
        retries: int = 3,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        timeout: float | None = None,
        overlap: Overlap = "allow",
        misfire: Misfire = "run_once",
        misfire_grace: float = 60.0,
        queue: str = "default",
        priority: int = 0,
        timezone: str = "UTC",
        dst_gap: str = "shift",
        dst_fold: str = "first",
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        jitter: timedelta | float | str | None = None,
        anchor: datetime | str | None = None,
        paused: bool = False,
        replace: bool = False,
        owner: str | None = None,
    ) -> Job:
        """Create a job (or, with ``replace=True``, redefine the job of that name)."""
        args = dict(locals())
        del args["self"], args["replace"]
        now = self.clock.now()
        job = self._build_job(args, now)
        stored = self.store.job_create(job, replace=replace, now=now)
        if self._engine is not None:
            self._engine.wake_scheduler()
        return stored

    def add_jobs(self, specs: Iterable[Mapping[str, Any]]) -> int:
        """Create many jobs in one transaction, all or none: each spec holds ``add_job``'s
        arguments (``name`` included, ``replace`` not). Every spec is validated first; a bad
        one (``InvalidInput``) or a taken name (``Conflict``) stores nothing. Returns the
        number stored. Far faster than ``add_job`` in a loop for imports of thousands."""
        now = self.clock.now()
        jobs = []
        for i, spec in enumerate(specs):
            if "replace" in spec:
                raise InvalidInput(
                    f"job {i}: add_jobs does not replace; use add_job", field="replace"
                )
            try:
                jobs.append(self._build_job(_job_args(spec), now))
            except InvalidInput as exc:
                raise InvalidInput(
                    f"job {i} ({spec.get('name')!r}): {exc}", field=exc.field
                ) from None
        stored = self.store.jobs_create(jobs, now=now)
        if self._engine is not None:
            self._engine.wake_scheduler()
        return stored

    def _build_job(self, a: Mapping[str, Any], now: datetime) -> Job:
        task = a["task"]
        task_name = (
            (getattr(task, "__oncely_task__", None) or task.__name__) if callable(task) else task
        )
        schedule = make_schedule(
            cron=a["cron"],
            at=a["at"],
            every=a["every"],
            timezone=a["timezone"],
            dst_gap=a["dst_gap"],
            dst_fold=a["dst_fold"],
            start=a["start"],
            end=a["end"],
            jitter=a["jitter"],
            anchor=a["anchor"],
            now=now,
        )
        action = build_action(task=task_name, http=a["http"], shell=a["shell"], sql=a["sql"])
        compose.check_action_allowed(action, self.settings.action_settings())
        policy = Policy(
            max_retries=a["retries"],
            base_delay=a["base_delay"],
            max_delay=a["max_delay"],
            timeout=a["timeout"],
            overlap=a["overlap"],
            misfire=a["misfire"],
            misfire_grace=a["misfire_grace"],
            queue=a["queue"],
            priority=a["priority"],
        )
        owner = a["owner"] or self.owner
        name = a["name"]
        validate_job_parts(owner, name, action, a["payload"], policy)
        job_id = new_id(int(now.timestamp() * 1000))
        return Job(
            id=job_id,
            owner=owner,
            name=name,
            schedule=schedule,
            action=action,
            payload=a["payload"],
            policy=policy,
            paused=a["paused"],
            next_fire_at=initial_fire(schedule, now),
            shard=shard_of(job_id),
            version=1,
            created_at=now,
            updated_at=now,
        )

    def get_job(self, name_or_id: str, *, owner: str | None = None) -> Job:
        owner = owner or self.owner
        job = self.store.job_get_by_name(owner, name_or_id) or _by_id(
            self.store.job_get, owner, name_or_id
        )
        if job is None:
            raise NotFound(f"no job named {name_or_id!r}")
        return job

    def list_jobs(self, *, limit: int = 100, after_name: str | None = None) -> list[Job]:
        return self.store.job_list(self.owner, limit=limit, after_name=after_name)

    def pause(self, name_or_id: str) -> Job:
        job = self.get_job(name_or_id)
        now = self.clock.now()
        updated = self.store.job_set_paused(
            self.owner, job.id, paused=True, next_fire_at=job.next_fire_at, now=now
        )
        if updated is None:
            raise NotFound(f"no job named {name_or_id!r}")
        return updated

    def resume(self, name_or_id: str) -> Job:
        job = self.get_job(name_or_id)
        now = self.clock.now()
        # The paused stretch is not backfilled: the next fire is the next one from now. A
        # one-shot job keeps its instant (it fires now if that passed while paused).
        if isinstance(job.schedule, AtSchedule):
            next_at = job.next_fire_at
        else:
            next_at = next_fire(job.schedule, now)
        updated = self.store.job_set_paused(
            self.owner, job.id, paused=False, next_fire_at=next_at, now=now
        )
        if updated is None:
            raise NotFound(f"no job named {name_or_id!r}")
        if self._engine is not None:
            self._engine.wake_scheduler()
        return updated

    def trigger(self, name_or_id: str) -> Run:
        """Run the job now, once, outside its schedule."""
        job = self.get_job(name_or_id)
        now = self.clock.now()
        run = self.store.job_trigger(
            self.owner, job.id, run_id=new_id(int(now.timestamp() * 1000)), now=now
        )
        if self._engine is not None:
            self._engine.wake_worker(run.queue)
        return run

    def delete(self, name_or_id: str) -> None:
        job = self.get_job(name_or_id)
        if not self.store.job_delete(self.owner, job.id, now=self.clock.now()):
            raise NotFound(f"no job named {name_or_id!r}")

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
        wanted = None if states is None else [RunState(s) for s in states]
        return self.store.run_list(
            self.owner, job_id=job_id, states=wanted, limit=limit, before=before
        )

    def get_run(self, run_id: str) -> Run:
        run: Run | None = _by_id(self.store.run_get, self.owner, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        return run

    def attempts(self, run_id: str) -> list[Attempt]:
        self.get_run(run_id)
        return self.store.attempt_list(self.owner, run_id)

    def requeue(self, run_id: str) -> Run:
        run = self.store.run_requeue(self.owner, run_id, now=self.clock.now())
        if run is None:
            raise NotFound(f"no run {run_id}")
        if self._engine is not None:
            self._engine.wake_worker(run.queue)
        return run

    def cancel(self, run_id: str) -> Run:
        run = self.store.run_cancel(self.owner, run_id, now=self.clock.now())
        if run is None:
            raise NotFound(f"no run {run_id}")
        return run

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
        asyncio.run(self.run_async(scheduler=scheduler, worker=worker, serve_http=serve_http))

    async def run_async(
        self,
        *,
        scheduler: bool = True,
        worker: bool = True,
        serve_http: bool = False,
        stop: asyncio.Event | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        store = await asyncio.to_thread(lambda: self.store)
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
        )
        components: list[ComponentStarter] = []
        if serve_http:
            from oncely.api.server import create_http_app

            components.append(
                compose.http_server(
                    lambda: create_http_app(engine.readiness),
                    self.settings.host,
                    self.settings.port,
                )
            )
        self._engine = engine
        try:
            await engine.run(
                scheduler=scheduler,
                worker=worker,
                stop=stop,
                on_ready=on_ready,
                components=components,
            )
        finally:
            self._engine = None
            for executor in executors.values():
                with contextlib.suppress(Exception):
                    await executor.aclose()
            task_threads.shutdown(wait=False, cancel_futures=True)

    def status(self) -> dict[str, Any]:
        """What /readyz reports."""
        if self._engine is not None:
            return self._engine.status()
        return {"store": self.store.dialect}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _by_id(getter: Callable[[str | None, str], Any], owner: str | None, value: str) -> Any:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return None
    return getter(owner, value)


# add_job's keyword defaults, the one source for add_jobs' specs.
_ADD_JOB_DEFAULTS: dict[str, Any] = {
    name: param.default
    for name, param in inspect.signature(App.add_job).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY and name != "replace"
}
