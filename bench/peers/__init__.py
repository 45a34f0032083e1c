"""The peers, each run as its own docs describe, measured with the same sink as oncely.

Every peer module has ``NAME``, ``STORE``, ``missing()`` (why it cannot run here, or None),
``w1(n, tmp, timeout)`` and ``w2(jobs, seconds, tmp)``. The shared shapes are below: a peer
supplies how to reset its state, start its processes and enqueue or schedule its jobs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    Result,
    Stack,
    analyse,
    fresh_sink,
    log,
    read_records,
    wait_for_records,
)

PEERS = ["celery", "dramatiq", "procrastinate", "rq", "apscheduler"]


def key(name: str, scheduled: float) -> str:
    """A peer's fire key: its name and scheduled time to the millisecond."""
    return f"{name}@{scheduled:.3f}"


def _settle(stack: Stack, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stack.check()
        time.sleep(0.1)


def burst(
    *,
    system: str,
    store: str,
    n: int,
    tmp: Path,
    timeout: float,
    reset: Callable[[], None],
    start: Callable[[Stack], None],
    enqueue: Callable[[list[str], float], None],
    enqueue_rate: float,
    ready: float = 3.0,
    start_after_enqueue: bool = False,
) -> Result:
    """W1 for a peer: ``enqueue(keys, due)`` N one-shot tasks due at one instant.

    The peer's processes are started first, as a running system would receive the work; or,
    with ``start_after_enqueue``, once everything is enqueued (still before the due instant).
    """
    result = Result("W1", system, store, expected=n)
    sink = fresh_sink(tmp, f"W1-{system}")
    stack = Stack(tmp / "logs" / f"W1-{system}", sink)
    names = [f"w1-{i}" for i in range(n)]
    try:
        reset()
        if not start_after_enqueue:
            start(stack)
            _settle(stack, ready)
        due = math.ceil(
            time.time() + n / enqueue_rate * 1.4 + 3.0 + (ready if start_after_enqueue else 0)
        )
        t0 = time.perf_counter()
        enqueue(names, float(due))
        result.setup_seconds = time.perf_counter() - t0
        if start_after_enqueue:
            start(stack)
            _settle(stack, ready)
        result.extra["enqueue_per_s"] = round(n / result.setup_seconds)
        stored = time.time()
        if stored > due - 0.5:
            result.notes.append(f"still enqueueing {stored - due:+.1f} s from the due instant")
        log(f"  {n} enqueued in {result.setup_seconds:.1f} s; due in {due - stored:.1f} s")
        count, complete = wait_for_records(
            sink, n, timeout=max(due - time.time(), 0) + timeout, settle=2
        )
        if not complete:
            result.notes.append(f"timed out after {timeout:.0f} s with {count} of {n} run")
        stack.check()
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        log(f"  {system} failed: {result.error}")
        return result
    finally:
        stack.stop()
        try:
            reset()
        except Exception as exc:
            log(f"  {system}: cleanup failed: {exc}")
    records = read_records(sink)
    analyse(result, records, expected_keys={key(k, due) for k in names}, origin=due)
    if result.ran:
        last = max(started for k, _, started in records)
        result.throughput = result.ran / max(last - due, 1e-3)
        result.duration = last - due
    return result


def steady(
    *,
    system: str,
    store: str,
    jobs: int,
    seconds: int,
    tmp: Path,
    reset: Callable[[], None],
    start: Callable[[Stack, list[str]], None],
    warmup: float = 5.0,
    tail: float = 10.0,
) -> Result:
    """W2 for a peer: ``start(stack, names)`` starts processes that fire each name every second.

    Fires are counted by their scheduled time (as the peer reports it) inside a window of
    ``seconds`` that opens ``warmup`` seconds after the processes started.
    """
    result = Result("W2", system, store, expected=jobs * seconds)
    sink = fresh_sink(tmp, f"W2-{system}")
    stack = Stack(tmp / "logs" / f"W2-{system}", sink)
    names = [f"w2-{i}" for i in range(jobs)]
    try:
        reset()
        t0 = time.perf_counter()
        start(stack, names)
        result.setup_seconds = time.perf_counter() - t0
        begin = math.ceil(time.time() + warmup)
        end = begin + seconds
        result.extra["window_start"] = begin
        while time.time() < end + tail:
            stack.check()
            time.sleep(0.5)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        log(f"  {system} failed: {result.error}")
        return result
    finally:
        stack.stop()
        try:
            reset()
        except Exception as exc:
            log(f"  {system}: cleanup failed: {exc}")
    analyse(result, read_records(sink), expected_keys=None, origin=begin, window=(begin, end))
    result.throughput = result.ran / seconds
    result.duration = seconds
    return result
