"""procrastinate 3 on PostgreSQL (a database of its own, dropped after).

W1: ``noop.configure(schedule_at=due).batch_defer(...)`` in batches of 1,000, and two
``procrastinate worker --concurrency 10`` processes (one per core) with their defaults
(LISTEN/NOTIFY, polling every ``fetch_job_polling_interval`` for jobs scheduled in the
future). W2: 1,000 periodic registrations of one task with a one-second cron; each worker
runs procrastinate's periodic deferrer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.common import Result, Stack, pg_available, pg_recreate_database, python_argv
from bench.peers import burst, steady

NAME = "procrastinate"
STORE = "PostgreSQL"
APP = "bench.peers.procrastinate_app.app"
WORKERS = 2
CONCURRENCY = 10


def missing() -> str | None:
    try:
        import procrastinate  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc.name}); pip install -e '.[bench]'"
    return None if pg_available() else "PostgreSQL is not reachable"


def _reset() -> None:
    from bench.peers.procrastinate_app import DATABASE, app

    pg_recreate_database(DATABASE)
    with app.open():
        app.schema_manager.apply_schema()


def _drop() -> None:
    from bench.peers.procrastinate_app import DATABASE

    pg_recreate_database(DATABASE, drop_only=True)


def _workers(stack: Stack) -> None:
    for i in range(WORKERS):
        stack.start(
            f"worker{i}",
            python_argv(
                "-m",
                "procrastinate",
                "--app",
                APP,
                "worker",
                "--queues",
                "bench",
                "--concurrency",
                str(CONCURRENCY),
                "--name",
                f"bench-{i}",
            ),
        )


def w1(n: int, tmp: Path, timeout: float) -> Result:
    def enqueue(names: list[str], due: float) -> None:
        from bench.peers.procrastinate_app import app, noop

        at = datetime.fromtimestamp(due, UTC)
        with app.open():
            deferrer = noop.configure(schedule_at=at)
            for i in range(0, len(names), 1000):
                deferrer.batch_defer(
                    *({"name": nm, "scheduled": due} for nm in names[i : i + 1000])
                )

    def reset() -> None:
        _reset()

    result = burst(
        system=NAME,
        store=STORE,
        n=n,
        tmp=tmp,
        timeout=timeout,
        reset=reset,
        start=_workers,
        enqueue=enqueue,
        enqueue_rate=3000,
    )
    _drop()
    result.extra["config"] = f"{WORKERS} workers x concurrency {CONCURRENCY}, schedule_at"
    return result


def w2(jobs: int, seconds: int, tmp: Path) -> Result:
    def start(stack: Stack, names: list[str]) -> None:
        stack.env["BENCH_PERIODIC_JOBS"] = str(len(names))
        _workers(stack)

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
    result.extra["config"] = f"periodic + {WORKERS} workers x concurrency {CONCURRENCY}"
    if result.duplicates:
        result.notes.append(
            "each worker runs the periodic deferrer; a defer deletes the task's older rows of "
            "procrastinate_periodic_defers (procrastinate_defer_periodic_job_v2), so a worker "
            "that lags behind the other defers a timestamp again: the duplicates are real runs"
        )
    return result
