"""The worker: claims due runs, executes them under a concurrency limit, records outcomes.

Life of one attempt in this process::

    claim (batch, lease + fencing token) ─▶ execute (timeout) ─▶ outbox ─▶ run_complete (batch)
                  ▲                                 │
                  └── heartbeat renews every held lease in one statement; a lease the store
                      no longer grants (reaped, cancelled, replaced) cancels the attempt here

Design notes:

- One claim loop per queue, each with its own concurrency limit. A loop claims as many runs
  as it has free slots; when it finds nothing it sleeps until the earliest waiting run of its
  queue is due, or until woken (PostgreSQL NOTIFY, the in-process scheduler, a freed slot).
  It never polls blindly: the longest sleep is ``idle_poll``, a safety net for wake-ups from
  processes that cannot notify (a SQLite CLI in another process).
- Outcomes go to an outbox flushed by one task: while a flush is in flight, new outcomes
  pile up and go in the next batch, so throughput batches itself without adding latency.
  Outbox entries are still heartbeated: their lease must outlive the flush.
- Every write carries the attempt's fencing token; the store refuses stale ones. A worker
  that was frozen (SIGSTOP, GC, a network partition) past its lease records nothing.
- SIGTERM: stop claiming, give running attempts ``shutdown_grace`` seconds, then cancel the
  rest and release their runs (they go back to ``queued`` without spending a retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from oncely.domain.actions import PythonAction
from oncely.domain.limits import MAX_ERROR_CHARS, MAX_OUTPUT_BYTES, cap_text
from oncely.domain.runs import AttemptOutcome, RunDecision, RunState, decide_after_attempt
from oncely.ports.actions import ActionContext, ActionExecutor, ActionResult
from oncely.ports.clock import Clock
from oncely.ports.store import AttemptResult, ClaimedRun, ClaimParams, Store
from oncely.runtime.blocking import BlockingCaller
from oncely.runtime.events import (
    NULL_BUS,
    AttemptLeaseLost,
    AttemptsStarted,
    EventBus,
    emit_outcomes,
)
from oncely.runtime.tasks import (
    TaskRegistry,
    describe_exception,
    describe_return,
    task_context,
)

log = logging.getLogger("oncely.worker")


@dataclass(frozen=True)
class WorkerConfig:
    queues: Mapping[str, int] = field(default_factory=lambda: {"default": 10})
    """Queue name -> how many of its runs this worker executes at once."""
    lease_ttl: float = 30.0
    claim_batch: int = 500
    prefetch: float = 0.5
    """Claim runs due within this many seconds and start each at its due time: a burst due
    at one instant is already held when it comes, so it starts on time (overlap-guarded
    runs excepted, see ``ClaimParams.prefetch_until``). 0 claims only what is due."""
    idle_poll: float = 1.0
    shutdown_grace: float = 30.0


@dataclass
class WorkerStats:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    refused: int = 0
    lost: int = 0
    released: int = 0


@dataclass
class _Attempt:
    claimed: ClaimedRun
    task: asyncio.Task[None] | None = None
    lost: bool = False


class Worker:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        executors: Mapping[str, ActionExecutor],
        *,
        registry: TaskRegistry | None = None,
        config: WorkerConfig | None = None,
        worker_id: str | None = None,
        caller: BlockingCaller | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.events = events or NULL_BUS
        self.store = store
        self.clock = clock
        self.executors = dict(executors)
        self.registry = registry or TaskRegistry()
        self.config = config or WorkerConfig()
        self.worker_id = worker_id or (
            f"worker:{socket.gethostname()}:{os.getpid()}:{random.getrandbits(24):06x}"
        )
        self._call = caller or BlockingCaller(4, "oncely-worker")
        self._attempts: dict[str, _Attempt] = {}
        self._running: dict[str, int] = dict.fromkeys(self.config.queues, 0)
        self._outbox: list[AttemptResult] = []
        self._outbox_event = asyncio.Event()
        self._wakes: dict[str, asyncio.Event] = {q: asyncio.Event() for q in self.config.queues}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._claiming = True
        self._closing = False
        self.stats = WorkerStats()
        self.last_loop_at: datetime | None = None

    # -- waking ---------------------------------------------------------------------------

    def wake(self, queue: str | None = None) -> None:
        """Look for due runs now. Safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._set_wakes, queue)

    def _set_wakes(self, queue: str | None) -> None:
        if queue is not None and queue in self._wakes:
            self._wakes[queue].set()
        else:
            for event in self._wakes.values():
                event.set()

    # -- main -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        listen_stop = threading.Event()
        listener: threading.Thread | None = None
        if self.store.supports_listen:
            listener = threading.Thread(
                target=self.store.listen,
                args=(self.wake, listen_stop),
                name="oncely-listen",
                daemon=True,
            )
            listener.start()
        flusher = asyncio.create_task(self._flush_loop())
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        claimers = [
            asyncio.create_task(self._claim_loop(queue, limit, stop))
            for queue, limit in self.config.queues.items()
        ]
        try:
            await stop.wait()
        finally:
            self._claiming = False
            for event in self._wakes.values():
                event.set()
            await asyncio.gather(*claimers, return_exceptions=True)
            await self._drain()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            # Let the flusher record what is left (cancelling it could drop a batch in flight).
            self._closing = True
            self._outbox_event.set()
            try:
                await asyncio.wait_for(flusher, self.config.shutdown_grace)
            except TimeoutError:
                log.error(  # noqa: TRY400 - a timeout, no traceback worth printing
                    "could not record %d outcomes before exiting; their leases will "
                    "expire and the runs will be retried",
                    len(self._outbox),
                )
            listen_stop.set()
            if listener is not None:
                await asyncio.to_thread(listener.join, 5)

    async def _claim_loop(self, queue: str, limit: int, stop: asyncio.Event) -> None:
        wake = self._wakes[queue]
        cfg = self.config
        while self._claiming and not stop.is_set():
            wake.clear()
            free = limit - self._running[queue]
            claimed: list[ClaimedRun] = []
            want = min(free, cfg.claim_batch)
            if want > 0:
                now = self.clock.now()
                try:
                    claimed = await self._call(
                        self.store.run_claim,
                        ClaimParams(
                            self.worker_id,
                            queue,
                            want,
                            now,
                            timedelta(seconds=cfg.lease_ttl),
                            prefetch_until=now + timedelta(seconds=cfg.prefetch),
                        ),
                    )
                except Exception:
                    log.exception("claim failed on queue %s; retrying", queue)
                    await asyncio.sleep(1.0)
                    continue
                self._hold(claimed)
                if claimed:
                    self.events.emit(AttemptsStarted(self.worker_id, claimed, now))
            self.last_loop_at = self.clock.now()
            if want > 0 and len(claimed) == want:
                continue  # there may be more due right now
            timeout = cfg.idle_poll
            if want > 0:
                try:
                    due = await self._call(self.store.runs_next_due, [queue])
                except Exception:
                    log.exception("could not read the next due time of queue %s", queue)
                    due = None
                if due is not None:
                    # Wake when the next run enters the prefetch window; if it already has
                    # (it was not claimable early), when it is due.
                    wait = (due - self.clock.now()).total_seconds()
                    if wait > cfg.prefetch:
                        wait -= cfg.prefetch
                    timeout = min(timeout, max(wait, 0.002))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    def _hold(self, claimed: list[ClaimedRun]) -> None:
        """Take claimed runs into their slots; start the due ones, time the prefetched ones.

        Prefetched runs wait in groups, one timer per start instant: a thousand runs due at
        one second then cost one timer, not a thousand (the event loop pops timers one by one
        before it runs any of them, a few microseconds each)."""
        now = self.clock.now()
        later: dict[datetime, list[_Attempt]] = {}
        for run in claimed:
            self.stats.claimed += 1
            self._running[run.queue] = self._running.get(run.queue, 0) + 1
            attempt = _Attempt(run)
            self._attempts[run.run_id] = attempt
            if run.started_at > now:
                later.setdefault(run.started_at, []).append(attempt)
            else:
                self._start(attempt)
        loop = asyncio.get_running_loop()
        for at, group in later.items():
            loop.call_later((at - now).total_seconds(), self._start_group, group)

    def _start_group(self, group: list[_Attempt]) -> None:
        early = (group[0].claimed.started_at - self.clock.now()).total_seconds()
        if early > 0:
            # The loop may fire a timer up to its clock resolution early; a run never starts
            # before it is due.
            asyncio.get_running_loop().call_later(early, self._start_group, group)
            return
        for attempt in group:
            # Gone meanwhile: lost its lease, or released by a shutdown.
            if self._attempts.get(attempt.claimed.run_id) is attempt:
                self._start(attempt)

    def _start(self, attempt: _Attempt) -> None:
        run = attempt.claimed
        attempt.task = asyncio.create_task(self._execute(attempt), name=f"run-{run.run_id}")

    def _unhold(self, attempt: _Attempt) -> None:
        """Free the slot of a held run that never started."""
        run = attempt.claimed
        self._running[run.queue] -= 1
        self._attempts.pop(run.run_id, None)

    async def _execute(self, attempt: _Attempt) -> None:
        run = attempt.claimed
        try:
            result = await self._attempt(run)
            if result is not None:
                self._post(result)
        except asyncio.CancelledError:
            if not attempt.lost and not self._claiming:
                # Shutdown: give the run back rather than leave it to expire.
                self._post(self._result(run, AttemptOutcome.RELEASED, error="worker shut down"))
        finally:
            self._running[run.queue] -= 1
            # From here the outbox entry, if any, is what the heartbeat keeps alive.
            self._attempts.pop(run.run_id, None)
            wake = self._wakes.get(run.queue)
            if wake is not None:
                wake.set()

    async def _attempt(self, run: ClaimedRun) -> AttemptResult | None:
        ctx = ActionContext(
            run_id=run.run_id,
            job_id=run.job_id,
            job_name=run.job_name,
            owner=run.owner,
            attempt=run.attempt,
            fencing_token=run.token,
            scheduled_for=run.scheduled_for,
            payload=run.payload,
            timeout=run.policy.timeout,
        )
        action = run.action
        if isinstance(action, PythonAction):
            task = self.registry.get(action.task)
            if task is not None and task.transactional:
                await self._transactional(run, ctx)
                return None
        executor = self.executors.get(action.kind)
        if executor is None:
            outcome = ActionResult(
                ok=False, error=f"{action.kind} actions are not available in this worker"
            )
        else:
            try:
                outcome = await asyncio.wait_for(
                    executor.execute(action, ctx), timeout=run.policy.timeout
                )
            except TimeoutError:
                return self._result(
                    run,
                    AttemptOutcome.TIMED_OUT,
                    error=f"timed out after {run.policy.timeout:g} s",
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an executor bug must not kill the worker
                outcome = ActionResult(ok=False, error=describe_exception(exc))
        return self._result(
            run,
            AttemptOutcome.SUCCEEDED if outcome.ok else AttemptOutcome.FAILED,
            error=outcome.error,
            output=outcome.output,
        )

    async def _transactional(self, run: ClaimedRun, ctx: ActionContext) -> None:
        """Run a transactional task: its writes commit with the run's completion, or not at all."""
        assert isinstance(run.action, PythonAction)
        task = self.registry.get(run.action.task)
        assert task is not None

        def effect(conn: Any) -> Any:
            return task.fn(task_context(ctx, conn))

        recorded: list[AttemptResult] = []

        def success(value: Any) -> AttemptResult:
            output = describe_return(value, MAX_OUTPUT_BYTES)
            recorded.append(self._result(run, AttemptOutcome.SUCCEEDED, output=output))
            return recorded[-1]

        def complete() -> None:
            # Runs on a store thread, and finishes there even if this attempt is cancelled
            # meanwhile (a lost lease): the refusal is then logged all the same.
            accepted, _ = self.store.run_complete_with(success, effect)
            emit_outcomes(self.events, self.worker_id, recorded, [accepted], self.clock.now())
            if accepted:
                self.stats.succeeded += 1
            else:
                self.stats.refused += 1
                log.warning(
                    "run %s: result refused: the lease under token %d is no longer ours; "
                    "the task's writes were rolled back",
                    run.run_id,
                    run.token,
                )

        try:
            await self._call(complete)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The task raised: the transaction rolled back; record the failure normally.
            self._post(self._result(run, AttemptOutcome.FAILED, error=describe_exception(exc)))

    def _result(
        self,
        run: ClaimedRun,
        outcome: AttemptOutcome,
        *,
        error: str | None = None,
        output: str | None = None,
    ) -> AttemptResult:
        now = self.clock.now()
        return AttemptResult(
            run_id=run.run_id,
            token=run.token,
            attempt=run.attempt,
            worker_id=self.worker_id,
            outcome=outcome,
            decision=decide_after_attempt(outcome, run.failures, run.policy, now),
            started_at=run.started_at,
            finished_at=max(now, run.started_at),
            error=cap_text(error, MAX_ERROR_CHARS, keep="tail"),
            output=cap_text(output, MAX_OUTPUT_BYTES),
            job_id=run.job_id,
            job_name=run.job_name,
            queue=run.queue,
        )

    # -- recording ------------------------------------------------------------------------

    def _post(self, result: AttemptResult) -> None:
        self._outbox.append(result)
        self._outbox_event.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._outbox_event.wait()
            self._outbox_event.clear()
            await self._flush_all()
            if self._closing and not self._outbox:
                return

    async def _flush_all(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                accepted = await self._call(self.store.run_complete, batch)
            except Exception:
                log.exception("recording %d outcomes failed; retrying", len(batch))
                self._outbox = batch + self._outbox
                await asyncio.sleep(0.5)
                continue
            for result, ok in zip(batch, accepted, strict=True):
                self._count(result, ok)
            emit_outcomes(self.events, self.worker_id, batch, accepted, self.clock.now())

    def _count(self, result: AttemptResult, ok: bool) -> None:
        if not ok:
            self.stats.refused += 1
            log.warning(
                "run %s: result refused: the lease under token %d is no longer ours",
                result.run_id,
                result.token,
            )
        elif result.outcome is AttemptOutcome.SUCCEEDED:
            self.stats.succeeded += 1
        elif result.outcome is AttemptOutcome.RELEASED:
            self.stats.released += 1
        else:
            self.stats.failed += 1

    # -- leases ---------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = self.config.lease_ttl / 3
        while True:
            await asyncio.sleep(interval)
            held = [(a.claimed.run_id, a.claimed.token) for a in self._attempts.values()]
            held += [(r.run_id, r.token) for r in self._outbox]
            if not held:
                continue
            try:
                kept = await self._call(
                    self.store.run_heartbeat,
                    self.worker_id,
                    held,
                    now=self.clock.now(),
                    ttl=timedelta(seconds=self.config.lease_ttl),
                )
            except Exception:
                log.exception("heartbeat failed; leases may expire")
                continue
            for run_id, _ in held:
                attempt = self._attempts.get(run_id)
                if run_id in kept or attempt is None:
                    continue
                # Reaped, cancelled or replaced: stop the work, it can no longer record.
                log.warning("run %s: lease lost; cancelling the attempt", run_id)
                attempt.lost = True
                self.stats.lost += 1
                token, now = attempt.claimed.token, self.clock.now()
                self.events.emit(AttemptLeaseLost(self.worker_id, run_id, token, now))
                if attempt.task is not None:
                    attempt.task.cancel()
                else:
                    self._unhold(attempt)

    async def _drain(self) -> None:
        """Let running attempts finish within the grace period, then release the rest."""
        for attempt in [a for a in self._attempts.values() if a.task is None]:
            # Prefetched, not started: give the run straight back, due when it was due.
            self._unhold(attempt)
            run = attempt.claimed
            now = self.clock.now()
            released = self._result(run, AttemptOutcome.RELEASED, error="worker shut down")
            self._post(
                replace(
                    released,
                    decision=RunDecision(
                        RunState.PENDING if run.started_at > now else RunState.QUEUED,
                        run.failures,
                        due_at=max(now, run.started_at),
                    ),
                    started_at=now,
                    finished_at=now,
                )
            )
        tasks = [a.task for a in self._attempts.values() if a.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.config.shutdown_grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("shutdown: releasing %d runs still going", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def running(self) -> int:
        return len(self._attempts)

    def slots(self) -> dict[str, tuple[int, int]]:
        """Per queue: (slots holding a run, concurrency)."""
        return {q: (self._running.get(q, 0), n) for q, n in self.config.queues.items()}
