"""RQ 3 on Redis.

W1: ``Queue.enqueue_at(due, ...)`` (RQ's scheduled jobs) and two ``rq worker --with-scheduler``
processes (one per core; one of them holds the scheduler lock and moves due jobs to the
queue). Workers fork a work horse per job, RQ's default. W2: ``rq cron`` with a config that
registers 1,000 ``* * * * * *`` jobs, and the same workers; W6: the same with W6's N jobs
(10,000).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import REDIS_URL, Result, Stack, python_argv, redis_available, redis_flush
from bench.peers import burst, peak, steady

NAME = "rq"
STORE = "Redis"
WORKERS = 2
# RQ's docs: SimpleWorker runs jobs in the worker process, without the fork per job that
# dominates a no-op (the default forking worker managed ~60 jobs/s here).
WORKER_CLASS: list[str] = ["--worker-class", "rq.worker.SimpleWorker"]


def missing() -> str | None:
    try:
        import redis  # noqa: F401
        import rq  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc.name}); pip install -e '.[bench]'"
    return None if redis_available() else "Redis is not reachable"


def _workers(stack: Stack) -> None:
    for i in range(WORKERS):
        stack.start(
            f"worker{i}",
            python_argv(
                "-m",
                "rq.cli",
                "worker",
                "bench",
                "--with-scheduler",
                "--url",
                REDIS_URL,
                "--logging_level",
                "WARNING",
                "--name",
                f"bench-{i}",
                *WORKER_CLASS,
            ),
        )


def w1(n: int, tmp: Path, timeout: float) -> Result:
    def enqueue(names: list[str], due: float) -> None:
        import redis
        from rq import Queue

        from bench.peers.rq_app import noop

        conn = redis.Redis.from_url(REDIS_URL)
        queue = Queue("bench", connection=conn)
        at = datetime.fromtimestamp(due, UTC)
        for name in names:
            queue.enqueue_at(at, noop, name, due)

    result = burst(
        system=NAME,
        store=STORE,
        n=n,
        tmp=tmp,
        timeout=timeout,
        reset=redis_flush,
        start=_workers,
        enqueue=enqueue,
        enqueue_rate=1000,
    )
    result.extra["config"] = f"{WORKERS} SimpleWorkers, enqueue_at"
    return result


def _cron(stack: Stack, names: list[str]) -> None:
    """Starts the workers and ``rq cron`` with one every-second job per name."""
    stack.env["BENCH_RQ_CRON_JOBS"] = str(len(names))
    _workers(stack)
    stack.start(
        "cron",
        python_argv(
            "-m",
            "rq.cli",
            "cron",
            "bench.peers.rq_cron",
            "--url",
            REDIS_URL,
            "--logging-level",
            "warning",
        ),
    )


def w2(jobs: int, seconds: int, tmp: Path) -> Result:
    return _scheduled(steady, jobs, seconds, tmp)


def w6(jobs: int, seconds: int, tmp: Path) -> Result:
    return _scheduled(peak, jobs, seconds, tmp)


def _scheduled(harness: Callable[..., Result], jobs: int, seconds: int, tmp: Path) -> Result:
    """W2 or W6 (``steady`` or ``peak``) with ``rq cron`` firing the jobs."""
    result = harness(
        system=NAME,
        store=STORE,
        jobs=jobs,
        seconds=seconds,
        tmp=tmp,
        reset=redis_flush,
        start=_cron,
    )
    result.extra["config"] = f"rq cron + {WORKERS} SimpleWorkers"
    return result
