"""Dramatiq 2 on Redis.

W1: ``send_with_options(delay=ms)`` (Dramatiq's delayed messages) to a worker with its
default shape: one process per core (``--processes 2``) and 8 threads each. W2: Dramatiq has
no scheduler of its own (its docs point to APScheduler or cron for periodic work), so it has
no W2 entry.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import Result, Stack, python_argv, redis_available, redis_flush
from bench.peers import burst

NAME = "dramatiq"
STORE = "Redis"
APP = "bench.peers.dramatiq_app"


def missing() -> str | None:
    try:
        import dramatiq  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc.name}); pip install -e '.[bench]'"
    return None if redis_available() else "Redis is not reachable"


def _worker(stack: Stack) -> None:
    stack.start(
        "worker",
        python_argv("-m", "dramatiq", APP, "--processes", "2", "--threads", "8", "-Q", "bench"),
    )


def w1(n: int, tmp: Path, timeout: float) -> Result:
    def enqueue(names: list[str], due: float) -> None:
        from bench.peers.dramatiq_app import broker, noop

        for name in names:
            delay = max(int((due - time.time()) * 1000), 0)
            noop.send_with_options(args=(name, due), delay=delay)
        broker.close()

    result = burst(
        system=NAME,
        store=STORE,
        n=n,
        tmp=tmp,
        timeout=timeout,
        reset=redis_flush,
        start=_worker,
        enqueue=enqueue,
        enqueue_rate=3000,
    )
    result.extra["config"] = "2 processes x 8 threads, delay"
    return result


w2 = None
W2_MISSING = "no built-in scheduler (its docs recommend APScheduler or cron for periodic tasks)"
