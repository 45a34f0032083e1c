"""The peers, each run as its own docs describe, measured with the same sink as oncely.

Every peer module has ``NAME``, ``STORE``, ``missing()`` (why it cannot run here, or None),
``w1(n, tmp, timeout)`` and ``w2(jobs, seconds, tmp)``; the peers with a scheduler that W6
runs beside oncely (Celery, RQ) also ``w6(jobs, seconds, tmp)``. The shared shapes are below:
a peer supplies how to reset its state, start its processes and enqueue or schedule its jobs.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

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


PREFIX_ENV = "BENCH_JOB_PREFIX"
"""The scheduled jobs' name prefix for a peer's scheduler config: ``w2`` (W2) or ``w6``."""


def job_names(count: int) -> list[str]:
    """The scheduled jobs' names as a peer's scheduler config makes them (``w2-<i>``)."""
    prefix = os.environ.get(PREFIX_ENV, "w2")
    return [f"{prefix}-{i}" for i in range(count)]


class Watch(Protocol):
    """Measures a ``steady`` run while it runs (W6: CPU, RSS); ``report`` fills the result."""

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...

    def report(self, result: Result) -> None: ...


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
    workload: str = "W2",
    watch: Callable[[Stack, int, int], Watch] | None = None,
    analyser: Callable[[Result, Path, int], None] | None = None,
) -> Result:
    """W2 for a peer: ``start(stack, names)`` starts processes that fire each name every second.

    Fires are counted by their scheduled time (as the peer reports it) inside a window of
    ``seconds`` that opens ``warmup`` seconds after the processes started. ``workload``
    labels the result, its sink and its jobs (``w2-<i>``; the prefix reaches the peer's
    scheduler config in ``PREFIX_ENV``: ``job_names``). W6 (``peak``) adds ``watch(stack,
    begin, end)``, entered from the processes' start until ``tail`` after the window, and
    ``analyser(result, sink, begin)`` instead of ``analyse`` (no set of key strings).
    """
    result = Result(workload, system, store, expected=jobs * seconds)
    sink = fresh_sink(tmp, f"{workload}-{system}")
    stack = Stack(tmp / "logs" / f"{workload}-{system}", sink)
    prefix = workload.lower()
    stack.env[PREFIX_ENV] = prefix
    names = [f"{prefix}-{i}" for i in range(jobs)]
    watched: Watch | None = None
    try:
        reset()
        t0 = time.perf_counter()
        start(stack, names)
        result.setup_seconds = time.perf_counter() - t0
        begin = math.ceil(time.time() + warmup)
        end = begin + seconds
        result.extra["window_start"] = begin
        watched = watch(stack, begin, end) if watch is not None else None
        with watched if watched is not None else contextlib.nullcontext():
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
    if analyser is not None:
        analyser(result, sink, begin)
    else:
        analyse(result, read_records(sink), expected_keys=None, origin=begin, window=(begin, end))
    result.throughput = result.ran / seconds
    result.duration = seconds
    if watched is not None:
        watched.report(result)
    return result


def peak(
    *,
    system: str,
    store: str,
    jobs: int,
    seconds: int,
    tmp: Path,
    reset: Callable[[], None],
    start: Callable[[Stack, list[str]], None],
) -> Result:
    """W6 for a peer: ``steady`` labelled W6 (jobs ``w6-<i>``) with W6's warm-up and tail,
    analysis (lag over time) and measurements (CPU of the peer's processes and of
    ``redis-server``, RSS, Redis commands per fire): bench/peak.py."""
    from bench import peak as w6

    return steady(
        system=system,
        store=store,
        jobs=jobs,
        seconds=seconds,
        tmp=tmp,
        reset=reset,
        start=start,
        warmup=w6.WARMUP,
        tail=w6.TAIL,
        workload="W6",
        watch=w6.PeerWatch,
        analyser=w6.analyser("w6-", jobs, seconds),
    )
