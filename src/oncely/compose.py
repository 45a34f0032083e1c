"""The composition root: the one place that picks implementations and wires them together.

Everything below it sees the others only through ports: the runtime gets a ``Store``, a
``Clock`` and ``ActionExecutor``s and knows no HTTP; the HTTP API gets the service and a
readiness probe. Only this module (and ``oncely.App``, which uses it) imports the store
adapters, the action executors and the HTTP server, so a new store or a new entry point is a
change here, not in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from oncely.config import Settings
from oncely.domain.actions import Action, EmailAction, HttpAction, ShellAction, SqlAction
from oncely.domain.errors import InvalidInput
from oncely.domain.notify import ChannelKind
from oncely.ports.actions import ActionExecutor, ActionSettings
from oncely.ports.clock import Clock
from oncely.ports.store import Store
from oncely.runtime.clock import DatabaseClock, SystemClock
from oncely.runtime.engine import Component, ComponentStarter, Engine, EngineConfig
from oncely.runtime.events import EventBus
from oncely.runtime.notify import NotifyConfig, NotifyService
from oncely.runtime.tasks import PythonExecutor, TaskRegistry
from oncely.runtime.timed_store import timed

if TYPE_CHECKING:
    from oncely.api.auth import LoginLimits
    from oncely.auth import Authenticator
    from oncely.observe.logs import RuntimeLog
    from oncely.observe.metrics import RuntimeMetrics


def open_store(target: str | Store) -> Store:
    """Open the store a URL names (or take the given one) and bring its schema up to date."""
    if isinstance(target, str):
        from oncely.adapters.factory import open_store as open_url

        store = open_url(target)
    else:
        store = target
    try:
        store.migrate()
    except BaseException:
        if isinstance(target, str):
            store.close()  # ours: its pools would otherwise outlive the failed attempt
        raise
    return store


def observed(store: Store, events: EventBus) -> Store:
    """The store, with every call reported on ``events`` (latency and errors for metrics)."""
    return timed(store, events)


def pick_clock(store: Store) -> Clock:
    """One clock (guarantee 5): on PostgreSQL every node reads the database's."""
    if store.dialect == "postgresql":
        return DatabaseClock(store.db_time_sample)
    return SystemClock()


def build_executors(
    settings: Settings, registry: TaskRegistry, task_threads: ThreadPoolExecutor
) -> dict[str, ActionExecutor]:
    """One executor per action kind, obeying the server's action settings."""
    from oncely.adapters.actions import HttpExecutor, ShellExecutor, SqlExecutor
    from oncely.adapters.actions.email import EmailExecutor

    action_settings = settings.action_settings()
    return {
        "python": PythonExecutor(registry, task_threads, action_settings.max_output_bytes),
        "http": HttpExecutor(action_settings),
        "shell": ShellExecutor(action_settings),
        "sql": SqlExecutor(action_settings),
        "email": EmailExecutor(action_settings),
    }


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        queues=dict(settings.queues),
        lookahead=settings.lookahead,
        scheduler_lease_ttl=settings.scheduler_lease_ttl,
        worker_lease_ttl=settings.worker_lease_ttl,
        worker_prefetch=settings.worker_prefetch,
        shutdown_grace=settings.shutdown_grace,
        # Membership liveness on the shard leases' time scale: a node's peers stop counting
        # it about when its leases expire.
        member_ttl=settings.scheduler_lease_ttl,
    )


def check_action_allowed(action: Action, settings: ActionSettings) -> None:
    """Refuse, at creation time, actions this server's configuration will never run. HTTP
    targets are resolved and checked here and again by the executor at every attempt."""
    if isinstance(action, ShellAction) and not settings.allow_shell:
        raise InvalidInput(
            "shell actions are disabled on this server (an admin can set allow_shell)",
            field="shell",
        )
    if isinstance(action, HttpAction):
        from oncely.adapters.actions.netguard import validate_http_target

        validate_http_target(action.url, settings)
    if isinstance(action, EmailAction) and not (settings.smtp_url and settings.smtp_from):
        raise InvalidInput(
            "email actions need an SMTP relay: the server admin sets smtp_url and smtp_from",
            field="email",
        )
    if isinstance(action, SqlAction) and action.connection not in settings.sql_connections:
        raise InvalidInput(
            f"unknown SQL connection {action.connection!r}; "
            "connections are configured by the server admin",
            field="sql.connection",
        )


def authenticator(store: Store, clock: Clock, settings: Settings) -> Authenticator:
    """The API's ``Authenticator``; creates the first admin from ``ONCELY_ADMIN_USER`` and
    ``ONCELY_ADMIN_PASSWORD`` if the store has no user yet."""
    from oncely.auth import Authenticator

    auth = Authenticator(store, clock, token_ttl=timedelta(seconds=settings.token_ttl))
    auth.bootstrap_admin(os.environ)
    return auth


def login_limits(settings: Settings) -> LoginLimits:
    from oncely.api.auth import LoginLimits

    return LoginLimits(
        per_user=settings.login_attempts_per_user,
        per_address=settings.login_attempts_per_address,
        window=settings.login_window,
    )


def runtime_log(engine: Engine) -> RuntimeLog:
    """Log lines for dead runs, missed fires, takeovers and failed attempts (from events)."""
    from oncely.observe.logs import RuntimeLog, quiet_chatty_loggers

    quiet_chatty_loggers()
    run_log = RuntimeLog()
    run_log.subscribe(engine.events)
    return run_log


def runtime_metrics(engine: Engine, settings: Settings) -> RuntimeMetrics:
    """The process's Prometheus metrics: fed by the engine's events, its loops' state and
    (at scrape time, cached) the store's queue depths and live run counts."""
    from oncely.observe.metrics import ProcessView, RuntimeMetrics

    def probe() -> ProcessView:
        sched, work = engine.scheduler, engine.worker
        roles = tuple(r for r, on in (("scheduler", sched), ("worker", work)) if on is not None)
        node = sched.node_id if sched is not None else work.worker_id if work is not None else ""
        return ProcessView(
            node=node,
            roles=roles,
            shards_held=len(sched.shards) if sched is not None else None,
            slots=work.slots() if work is not None else {},
        )

    metrics = RuntimeMetrics(
        probe=probe,
        store=lambda: engine.store,
        now=engine.clock.now,
        jobs=settings.metrics_jobs,
    )
    metrics.subscribe(engine.events)
    return metrics


def http_server(make_asgi: Callable[[], Any], host: str, port: int) -> ComponentStarter:
    """Start uvicorn in the running event loop when the engine is up."""

    async def start() -> Component:
        from oncely.api.server import start_http

        return await start_http(make_asgi(), host, port)

    return start


class _TaskComponent:
    """A background task the engine stops with the process (the notification service)."""

    def __init__(self, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        self._stop = stop
        self._task = task

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await self._task


def notify_service(
    store: Store, clock: Clock, settings: Settings, *, config: NotifyConfig | None = None
) -> ComponentStarter:
    """The notification deliverer and dead-man's switch (``oncely.runtime.notify``), started
    with the scheduler role: it works only while it holds the cluster's notify lease."""

    async def start() -> Component:
        from oncely.adapters.notify import ChannelSender

        sender = ChannelSender(settings.action_settings(), timeout=settings.notify_timeout)
        holder = f"notify:{socket.gethostname()}:{os.getpid()}:{random.getrandbits(24):06x}"
        service = NotifyService(store, clock, sender, holder=holder, config=config)
        stop = asyncio.Event()

        async def run() -> None:
            try:
                await service.run(stop)
            finally:
                await sender.aclose()

        return _TaskComponent(stop, asyncio.create_task(run()))

    return start


def retention_service(
    store: Store, clock: Clock, settings: Settings, events: EventBus
) -> ComponentStarter:
    """The retention service (``oncely.runtime.retention``), started with the scheduler
    role: it prunes only while it holds the cluster's retention lease."""
    from oncely.ports.store import RetentionAges
    from oncely.runtime.retention import RetentionConfig, RetentionService

    def age(seconds: float) -> timedelta | None:
        return timedelta(seconds=seconds) if seconds > 0 else None

    config = RetentionConfig(
        ages=RetentionAges(
            succeeded=age(settings.retention_succeeded),
            skipped=age(settings.retention_skipped),
            missed=age(settings.retention_missed),
            cancelled=age(settings.retention_cancelled),
        ),
        batch=settings.retention_batch,
        interval=settings.retention_interval,
    )

    async def start() -> Component:
        holder = f"retention:{socket.gethostname()}:{os.getpid()}:{random.getrandbits(24):06x}"
        service = RetentionService(store, clock, holder=holder, config=config, events=events)
        stop = asyncio.Event()
        return _TaskComponent(stop, asyncio.create_task(service.run(stop)))

    return start


def check_channel(kind: ChannelKind, url: str, settings: ActionSettings) -> None:
    """Refuse a channel URL that can never be delivered to (see ``adapters.notify``)."""
    from oncely.adapters.notify import check_channel as check

    check(kind, url, settings)
