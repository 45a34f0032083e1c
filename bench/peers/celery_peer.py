"""Celery 5 on Redis.

W1: ``apply_async(eta=due)`` for each task; a prefork worker (``-c 2``: one process per
core, the docs' default) with gossip, mingle and heartbeat off, as the docs suggest for
throughput. W2: ``celery beat`` with 1,000 one-second entries and the same worker; W6: the
same with W6's N entries (10,000).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Result, Stack, python_argv, redis_available, redis_flush
from bench.peers import burst, peak, steady

NAME = "celery"
STORE = "Redis"
APP = "bench.peers.celery_app"
CONCURRENCY = 2


def missing() -> str | None:
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc.name}); pip install -e '.[bench]'"
    return None if redis_available() else "Redis is not reachable"


def _worker(stack: Stack, env: dict[str, str] | None = None) -> None:
    stack.start(
        "worker",
        python_argv(
            "-m",
            "celery",
            "-A",
            APP,
            "worker",
            "-P",
            "prefork",
            "-c",
            str(CONCURRENCY),
            "-Q",
            "bench",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ),
    )


def w1(n: int, tmp: Path, timeout: float) -> Result:
    def enqueue(names: list[str], due: float) -> None:
        from bench.peers.celery_app import noop

        eta = datetime.fromtimestamp(due, UTC)
        with noop.app.producer_or_acquire() as producer:
            for name in names:
                noop.apply_async((name, due), eta=eta, producer=producer)

    result = burst(
        system=NAME,
        store=STORE,
        n=n,
        tmp=tmp,
        timeout=timeout,
        reset=redis_flush,
        start=_worker,
        enqueue=enqueue,
        enqueue_rate=1200,
    )
    result.extra["config"] = f"prefork -c {CONCURRENCY}, eta"
    return result


def _beat(tmp: Path) -> Callable[[Stack, list[str]], None]:
    """Starts the worker and ``celery beat`` with one one-second entry per name."""

    def start(stack: Stack, names: list[str]) -> None:
        stack.env["BENCH_BEAT_JOBS"] = str(len(names))
        _worker(stack)
        stack.start(
            "beat",
            python_argv(
                "-m",
                "celery",
                "-A",
                APP,
                "beat",
                "-S",
                f"{APP}:NominalScheduler",
                "-s",
                str(tmp / "celerybeat-schedule"),
                "--loglevel",
                "WARNING",
            ),
        )

    for suffix in ("", ".db", ".dat", ".dir", ".bak"):
        (tmp / f"celerybeat-schedule{suffix}").unlink(missing_ok=True)
    return start


def w2(jobs: int, seconds: int, tmp: Path) -> Result:
    return _scheduled(steady, jobs, seconds, tmp)


def w6(jobs: int, seconds: int, tmp: Path) -> Result:
    return _scheduled(peak, jobs, seconds, tmp)


def _scheduled(harness: Callable[..., Result], jobs: int, seconds: int, tmp: Path) -> Result:
    """W2 or W6 (``steady`` or ``peak``) with beat firing the jobs."""
    result = harness(
        system=NAME,
        store=STORE,
        jobs=jobs,
        seconds=seconds,
        tmp=tmp,
        reset=redis_flush,
        start=_beat(tmp),
    )
    return _beat_notes(result)


def _beat_notes(result: Result) -> Result:
    result.extra["config"] = f"beat + prefork -c {CONCURRENCY}"
    if result.ran < result.expected:
        result.notes.append(
            "beat sends one due entry per tick and compares its whole schedule with a snapshot "
            "on every tick (celery.beat.Scheduler.tick): with many one-second entries it falls "
            "behind and skips fires"
        )
    return result
