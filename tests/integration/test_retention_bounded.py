"""Retention keeps a per-second job's history bounded: a real engine (scheduler, worker and
the retention service under its lease) on SQLite and on PostgreSQL, with a retention age of
2 s, runs a per-second cron job for 12 s; the runs and attempts tables stay small while
every fire runs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

import oncely
from oncely.config import Settings


def run_and_sample(app: oncely.App, count: Callable[[], tuple[int, int]], seconds: float) -> list:  # type: ignore[type-arg]
    samples: list[tuple[int, int]] = []

    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(app.run_async(stop=stop))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not runner.done():
            await asyncio.sleep(0.5)
            samples.append(await asyncio.to_thread(count))
        stop.set()
        await runner

    asyncio.run(main())
    return samples


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_per_second_job_history_stays_bounded(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if dialect == "sqlite":
        path = tmp_path / "o.db"
        url = f"sqlite:///{path}"

        def count() -> tuple[int, int]:
            with sqlite3.connect(path) as db:
                runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
                attempts = db.execute("SELECT count(*) FROM attempts").fetchone()[0]
            return runs, attempts
    else:
        pg_url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        url = f"{pg_url}?schema={schema}"

        def count() -> tuple[int, int]:
            with psycopg.connect(pg_url, autocommit=True) as db:
                runs = db.execute(f'SELECT count(*) FROM "{schema}".runs').fetchone()
                attempts = db.execute(f'SELECT count(*) FROM "{schema}".attempts').fetchone()
            assert runs is not None and attempts is not None
            return runs[0], attempts[0]

    app = oncely.App(
        settings=Settings(
            store=url,
            retention_succeeded=2,
            retention_interval=0.5,
            shutdown_grace=1,
            notify=False,
        )
    )
    seen: list[str] = []

    @app.task("tick")
    def tick(ctx: oncely.TaskContext) -> None:
        seen.append(ctx.run_id)

    app.add_job("every second", cron="* * * * * *", task="tick")
    samples = run_and_sample(app, count, 12)
    app.close()
    assert len(seen) >= 9, "the job ran every second meanwhile"
    assert len(set(seen)) == len(seen)
    # Without retention the table would hold every fire so far (12+) plus 5 s materialized
    # ahead; with a 2 s age it holds those ahead, those within 2 s and a pass's slack.
    late = samples[len(samples) // 2 :]
    assert max(runs for runs, _ in late) <= 12, samples
    assert max(attempts for _, attempts in late) <= 6, samples
    assert samples[-1][0] < 5 + len(seen), "runs were deleted"
