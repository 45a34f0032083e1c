"""APScheduler 4.0 (pre-release ``4.0.0a6``) on PostgreSQL, its own schema (dropped after).

4.x is the line with a shared, persistent data store that several scheduler processes can
use (3.x keeps schedules in one process and has no distributed execution), so it is the
like-for-like peer; being a pre-release, its numbers may change.

W1: ``add_schedule(noop, DateTrigger(due))`` per job from a client scheduler (not started),
and two scheduler processes (role ``both``, default ``max_concurrent_jobs=100``, one per
core) sharing the SQLAlchemy/asyncpg data store and the asyncpg event broker. W2: 1,000
``IntervalTrigger(seconds=1)`` schedules on the same processes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Result, Stack, pg_available, pg_drop_schema, python_argv
from bench.peers import burst, steady

NAME = "apscheduler"
STORE = "PostgreSQL"
PROCESSES = 2


def missing() -> str | None:
    try:
        import apscheduler  # noqa: F401
        import asyncpg  # noqa: F401
        import sqlalchemy
        import sqlalchemy.ext.asyncio  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc.name}); pip install -e '.[bench]'"
    from bench.common import package_version

    version = package_version("apscheduler") or ""
    if not version.startswith("4."):
        return f"APScheduler {version} installed; the benchmark needs 4.x (shared data store)"
    return None if pg_available() else "PostgreSQL is not reachable"


def _reset() -> None:
    from bench.peers.aps_app import SCHEMA

    pg_drop_schema(SCHEMA)
    from bench.common import pg_connect

    with pg_connect() as conn:
        conn.execute(f'CREATE SCHEMA "{SCHEMA}"')


def _drop() -> None:
    from bench.peers.aps_app import SCHEMA

    pg_drop_schema(SCHEMA)


async def _add(schedules: list[tuple[object, object, str, tuple[object, ...]]]) -> None:
    from bench.peers.aps_app import make_scheduler

    async with make_scheduler() as scheduler:
        for func, trigger, sid, args in schedules:
            await scheduler.add_schedule(func, trigger, id=sid, args=args)


def _processes(stack: Stack) -> None:
    asyncio.run(_add([]))  # create the tables before the processes race to
    for i in range(PROCESSES):
        stack.start(f"scheduler{i}", python_argv("-m", "bench.peers.aps_app"))


def w1(n: int, tmp: Path, timeout: float) -> Result:
    def enqueue(names: list[str], due: float) -> None:
        from apscheduler.triggers.date import DateTrigger

        from bench.peers.aps_app import noop

        at = datetime.fromtimestamp(due, UTC)
        # One trigger object per schedule: triggers are stateful.
        asyncio.run(_add([(noop, DateTrigger(at), nm, (nm, due)) for nm in names]))

    result = burst(
        system=NAME,
        store=STORE,
        n=n,
        tmp=tmp,
        timeout=timeout,
        reset=_reset,
        start=_processes,
        enqueue=enqueue,
        enqueue_rate=150,
    )
    _drop()
    result.extra["config"] = f"{PROCESSES} schedulers (role both), DateTrigger"
    return result


def w2(jobs: int, seconds: int, tmp: Path) -> Result:
    def start(stack: Stack, names: list[str]) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        from bench.peers.aps_app import tick

        asyncio.run(_add([(tick, IntervalTrigger(seconds=1), nm, (nm,)) for nm in names]))
        _processes(stack)

    result = steady(
        system=NAME,
        store=STORE,
        jobs=jobs,
        seconds=seconds,
        tmp=tmp,
        reset=_reset,
        start=start,
    )
    _drop()
    result.extra["config"] = f"{PROCESSES} schedulers (role both), IntervalTrigger(1 s)"
    return result
