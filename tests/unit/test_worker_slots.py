"""A worker's slots come back however an attempt ends, even one cancelled before it ran.

No store: these drive the worker's own bookkeeping (held runs, started attempts, cancels)
on a real event loop, which is where a leaked slot would silently shrink a queue."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from oncely.domain.actions import PythonAction
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome
from oncely.ports.store import ClaimedRun
from oncely.runtime.clock import SystemClock
from oncely.runtime.tasks import PythonExecutor, TaskRegistry
from oncely.runtime.worker import Worker, WorkerConfig, _Attempt


class _NoStore:
    """Records nothing; accepts every outcome it is handed (what a flush needs)."""

    supports_listen = False

    def run_complete(self, results: list[Any]) -> list[bool]:
        return [True] * len(results)


def _worker(registry: TaskRegistry) -> Worker:
    executor = PythonExecutor(registry, ThreadPoolExecutor(2), 1 << 16)
    worker = Worker(
        _NoStore(),  # type: ignore[arg-type]
        SystemClock(),
        {"python": executor},
        registry=registry,
        config=WorkerConfig(queues={"default": 4}),
    )
    worker._loop = asyncio.get_running_loop()
    return worker


def _hold(worker: Worker, task: str, n: int, policy: Policy | None = None) -> list[_Attempt]:
    """``n`` runs of ``task`` taken into slots, due now (ids named after the task)."""
    now = worker.clock.now()
    held = []
    for i in range(n):
        run = ClaimedRun(
            f"{task}-{i}", "job", "job-name", "owner", "default", now, 1, 0, i + 1, now,
            now + timedelta(seconds=30), PythonAction(task=task), None, policy or Policy(),
        )  # fmt: skip
        attempt = _Attempt(run, time.monotonic() + 30)
        worker._attempts[run.run_id] = attempt
        worker._running["default"] += 1
        held.append(attempt)
    return held


async def _settled(worker: Worker) -> None:
    for _ in range(200):
        if not worker._attempts:
            return
        await asyncio.sleep(0.01)


def test_attempts_cancelled_before_their_first_step_free_their_slots() -> None:
    async def scenario() -> None:
        registry = TaskRegistry()

        async def forever(ctx: Any) -> None:
            await asyncio.sleep(3600)

        registry.register("forever", forever)
        worker = _worker(registry)
        held = _hold(worker, "forever", 3)
        worker._start_group(held)
        # Lease lost at once: the tasks are cancelled before the loop ever ran them.
        for attempt in held:
            worker._stop(attempt)
        await _settled(worker)
        assert worker._attempts == {} and worker.slots() == {"default": (0, 4)}
        assert all(a.task is not None and a.task.cancelled() for a in held)
        assert worker._outbox == []  # a lost lease records nothing

    asyncio.run(scenario())


def test_finished_and_timed_out_attempts_each_free_one_slot_and_post_once() -> None:
    async def scenario() -> None:
        registry = TaskRegistry()

        async def quick(ctx: Any) -> str:
            return "done"

        async def slow(ctx: Any) -> None:
            await asyncio.sleep(3600)

        registry.register("quick", quick)
        registry.register("again", quick)
        registry.register("slow", slow)
        worker = _worker(registry)
        worker._start_group(_hold(worker, "quick", 2))
        await _settled(worker)
        timed = _hold(worker, "slow", 1, Policy(timeout=0.05))
        worker._start_group(timed)
        await _settled(worker)
        assert worker._attempts == {} and worker.slots() == {"default": (0, 4)}
        outcomes = sorted(r.outcome for r in worker._outbox)
        assert outcomes == sorted(
            [AttemptOutcome.SUCCEEDED, AttemptOutcome.SUCCEEDED, AttemptOutcome.TIMED_OUT]
        )
        # Three outcomes wait to be recorded: room for the fourth slot's worth still.
        assert worker._room("default", 4) == 4
        worker._start_group(_hold(worker, "again", 1))
        await _settled(worker)
        # Four (the concurrency) wait: the queue claims nothing until the store has them.
        assert worker._room("default", 4) == 0 and worker.slots() == {"default": (0, 4)}
        await worker._flush_all()
        assert worker._outbox == [] and worker._unrecorded == {"default": 0}
        assert worker._room("default", 4) == 4

    asyncio.run(scenario())
