"""APScheduler 4 (pre-release) for the benchmark: PostgreSQL data store and event broker.

``python -m bench.peers.aps_app`` runs one scheduler (role ``both``: it schedules and runs
jobs) until stopped. Several such processes share the data store; the asyncpg event broker
(LISTEN/NOTIFY) tells them about changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from bench.common import PG_DSN, record
from bench.peers import key

SCHEMA = "bench_apscheduler"
ASYNC_DSN = PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
BROKER_DSN = PG_DSN


async def noop(name: str, scheduled: float) -> None:
    record(key(name, scheduled), scheduled)


async def tick(name: str) -> None:
    from apscheduler import current_job

    scheduled = current_job.get().scheduled_fire_time
    at = scheduled.timestamp() if scheduled is not None else 0.0
    record(key(name, at), at)


def make_scheduler(**options: Any) -> Any:
    from apscheduler import AsyncScheduler
    from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
    from apscheduler.eventbrokers.psycopg import PsycopgEventBroker
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(ASYNC_DSN)
    store = SQLAlchemyDataStore(engine, schema=SCHEMA)
    broker = PsycopgEventBroker(BROKER_DSN)
    return AsyncScheduler(store, broker, **options)


async def main() -> None:
    import logging
    import os

    logging.basicConfig(level=os.environ.get("BENCH_APS_LOG", "WARNING"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with make_scheduler() as scheduler:
        await scheduler.start_in_background()
        await stop.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(scheduler.stop(), 5)


if __name__ == "__main__":
    asyncio.run(main())
