"""The worker under faults, in one process on a real SQLite store.

- A loop that dies fails the worker at once (supervision), and ``status()`` shows each
  queue's loop age.
- A held (prefetched) run is not started by a worker that was paused past its lease trust.
- The recorded start of an attempt is when it really started, not when it was due.
- Prefetch holds at most a share of a queue's slots, so a burst is spread across workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import oncely
from oncely.adapters.sqlite import SqliteStore
from oncely.config import Settings
from oncely.domain.runs import AttemptOutcome, RunState
from oncely.runtime.clock import SystemClock
from oncely.runtime.scheduler import Scheduler
from oncely.runtime.tasks import PythonExecutor
from oncely.runtime.worker import Worker, WorkerConfig


@pytest.fixture
def app(tmp_path: Path) -> Iterator[oncely.App]:
    a = oncely.App(settings=Settings(store=f"sqlite:///{tmp_path / 'oncely.db'}"))
    try:
        yield a
    finally:
        a.close()


def _worker(app: oncely.App, clock: Any = None, **config: Any) -> Worker:
    threads = ThreadPoolExecutor(8)
    return Worker(
        app.store,
        clock or SystemClock(),
        {"python": PythonExecutor(app.registry, threads, 65536)},
        registry=app.registry,
        config=WorkerConfig(**{"lease_ttl": 3.0, "shutdown_grace": 1.0, **config}),
    )


def _scheduler(store: Any, halt: asyncio.Event) -> asyncio.Task[None]:
    """A scheduler in the same loop: it materializes the jobs' fires as runs."""
    return asyncio.create_task(Scheduler(store, SystemClock()).run(halt))


async def _run_until(
    worker: Worker, done: Callable[[], bool], limit: float = 15, stop: bool = True
) -> None:
    halt = asyncio.Event()
    scheduler = _scheduler(worker.store, halt)
    runner = asyncio.create_task(worker.run(halt))
    try:
        deadline = time.monotonic() + limit
        while not done() and time.monotonic() < deadline and not runner.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if stop:
            halt.set()
        await runner
    finally:
        halt.set()
        await scheduler


def _at(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


class _FailingClock:
    """The system clock until ``fail_after`` reads, then an error: any loop that reads the
    time outside its own error handling dies of it."""

    def __init__(self, fail_after: int) -> None:
        self.left = fail_after

    def now(self) -> datetime:
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("clock broke")
        return datetime.now(UTC)


def test_a_loop_that_dies_fails_the_worker_at_once(app: oncely.App) -> None:
    worker = _worker(app, _FailingClock(fail_after=5))
    started = time.monotonic()
    with pytest.raises(ExceptionGroup) as caught:
        asyncio.run(_run_until(worker, lambda: False, limit=10, stop=False))
    assert time.monotonic() - started < 5
    assert caught.group_contains(RuntimeError, match="clock broke")


def test_status_reports_each_queue_loop_age(app: oncely.App) -> None:
    worker = _worker(app, queues={"default": 2, "heavy": 1})
    seen: dict[str, Any] = {}

    def turned() -> bool:
        status = worker.status()
        ages = [q["loop_age"] for q in status["queues"].values()]
        if all(age is not None for age in ages):
            seen.update(status)
            return True
        return False

    asyncio.run(_run_until(worker, turned))
    assert set(seen["queues"]) == {"default", "heavy"}
    assert all(0 <= q["loop_age"] < 2 for q in seen["queues"].values())


def test_a_held_run_is_not_started_after_a_pause_past_its_lease(app: oncely.App) -> None:
    """The event loop is frozen (as SIGSTOP would) between the claim of a prefetched run
    and its due time, for longer than the lease: the run must not start on waking."""
    ran: list[int] = []

    @app.task("mark")
    async def mark(ctx: oncely.TaskContext) -> None:
        ran.append(ctx.attempt)

    app.add_job("held", at=_at(2.5), task="mark", retries=3, base_delay=0.1, max_delay=0.1)
    worker = _worker(app, lease_ttl=3.0, prefetch=1.0)

    async def main() -> None:
        halt = asyncio.Event()
        scheduler = _scheduler(app.store, halt)
        runner = asyncio.create_task(worker.run(halt))
        deadline = time.monotonic() + 5
        while worker.running == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        assert worker.running == 1 and not ran  # held, not yet due
        time.sleep(3.5)  # noqa: ASYNC251 - the point: the whole loop is frozen
        await asyncio.sleep(0.3)
        halt.set()
        await asyncio.gather(runner, scheduler)

    asyncio.run(main())
    # The held attempt never ran; the run went the retry way (and may have run again
    # under a new attempt before the worker stopped).
    assert 1 not in ran
    [run] = app.list_runs("held")
    first = app.attempts(run.id)[0]
    assert first.outcome is AttemptOutcome.LOST and first.number == 1
    assert "lease" in (first.error or "")


def test_the_recorded_start_is_the_real_start(app: oncely.App) -> None:
    """One slot, two runs due at once, the first takes a second: the second's attempt (and
    run) record when it started, a second after it was due."""

    @app.task("nap")
    def nap(ctx: oncely.TaskContext) -> None:
        time.sleep(1.0)

    due = _at(2.0)
    app.add_job("a", at=due, task="nap")
    app.add_job("b", at=due, task="nap")
    worker = _worker(app, queues={"default": 1})
    asyncio.run(_run_until(worker, lambda: worker.stats.succeeded == 2))
    starts = sorted(
        (app.attempts(r.id)[0].started_at - r.scheduled_for).total_seconds()
        for name in ("a", "b")
        for r in app.list_runs(name)
    )
    assert 0 <= starts[0] < 0.5
    assert 0.9 <= starts[1] < 2.0
    late = next(
        r
        for name in ("a", "b")
        for r in app.list_runs(name)
        if r.started_at is not None and (r.started_at - r.scheduled_for).total_seconds() > 0.9
    )
    assert late.state is RunState.SUCCEEDED


def test_prefetch_holds_at_most_a_share_of_the_slots(app: oncely.App, tmp_path: Path) -> None:
    """20 runs due in a moment, a worker with 20 slots: it holds 10 ahead of time (half its
    slots), leaving the rest for another worker; a second worker takes them."""

    @app.task("quick")
    async def quick(ctx: oncely.TaskContext) -> None:
        return None

    due = _at(1.5)
    app.add_jobs({"name": f"j{i}", "at": due, "task": "quick"} for i in range(20))
    other = SqliteStore(str(tmp_path / "oncely.db"))
    first = _worker(app, queues={"default": 20}, prefetch=2.0, lease_ttl=9.0)
    second = Worker(
        other,
        SystemClock(),
        {"python": PythonExecutor(app.registry, ThreadPoolExecutor(4), 65536)},
        registry=app.registry,
        config=WorkerConfig(queues={"default": 20}, prefetch=2.0, lease_ttl=9.0),
    )
    held_by_first: list[int] = []

    async def main() -> None:
        halt = asyncio.Event()
        scheduler = _scheduler(app.store, halt)
        a = asyncio.create_task(first.run(halt))
        deadline = time.monotonic() + 5
        while first.running < 10 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        held_by_first.append(first.running)
        b = asyncio.create_task(second.run(halt))
        deadline = time.monotonic() + 10
        done = lambda: first.stats.succeeded + second.stats.succeeded  # noqa: E731
        while done() < 20 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        halt.set()
        await asyncio.gather(a, b, scheduler)

    asyncio.run(main())
    other.close()
    assert held_by_first == [10]
    assert first.stats.succeeded + second.stats.succeeded == 20
    assert second.stats.succeeded >= 5
