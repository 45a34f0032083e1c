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
- Claims are spread across workers: runs not yet due (prefetched) are held for at most
  ``prefetch_share`` of a queue's slots, so the first worker to wake cannot take a whole
  burst ahead of time (and one SIGKILL cannot delay all of it by a lease); the rest is
  claimed when due, by whichever worker has free slots.
- Outcomes go to an outbox flushed by one task: while a flush is in flight, new outcomes
  pile up and go in the next batch, so throughput batches itself without adding latency.
  Outbox entries are still heartbeated: their lease must outlive the flush. An outcome stays
  in the outbox until the store answers, across a database outage: it is recorded if the
  run is still ours (not reaped), so an attempt that finished is not run a second time.
  Backpressure: a queue stops claiming while as many of its outcomes as it has slots wait
  to be recorded, so a worker whose recording falls behind claims less instead of piling up
  outcomes whose leases every heartbeat must renew.
- Every write carries the attempt's fencing token; the store refuses stale ones. A worker
  that was frozen (SIGSTOP, GC, a network partition) past its lease records nothing.
- **Lease trust.** The store's refusal protects the store, not the world: a worker cut off
  from the database would go on acting after the reaper handed its run to another worker.
  So each attempt carries ``trust_until`` on the local monotonic clock: the instant its last
  successful renewal (the claim, or a heartbeat) was *sent*, plus the lease TTL, minus
  ``trust_margin``. The lease cannot expire in the store before that instant (it was granted
  from a time read before sending), so a watchdog that cancels the attempt when it passes
  (shell: process group killed; HTTP: request aborted; Python: task cancelled, transactional
  transaction cancelled on the server) stops every effect before another worker may start
  one. The attempt is recorded as ``lost`` through the outbox (fenced: refused if the reaper
  got there first). A held run that was never started is not started past its trust
  deadline (a worker paused by SIGSTOP wakes up holding runs it may no longer own).
- Store calls run on this worker's own threads (``BlockingCaller``), apart from the
  scheduler's and from users' code: transactional tasks run on threads and connections of
  their own, bounded by their timeout. A slow task delays nothing but itself.
- Supervised: the loops run in one ``asyncio.TaskGroup``; one that dies fails ``run()`` (and
  the process) rather than leave a worker that silently stopped claiming or heartbeating.
  ``status()`` reports each queue's loop age for /readyz.
- After a store error, loops retry on a short capped backoff (``retry_min``..``retry_max``)
  so they notice a database that came back within well under a second.
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
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from oncely.domain.actions import PythonAction
from oncely.domain.limits import MAX_ERROR_CHARS, MAX_OUTPUT_BYTES, cap_text
from oncely.domain.runs import AttemptOutcome, RunDecision, RunState, decide_after_attempt
from oncely.ports.actions import ActionContext, ActionExecutor, ActionResult
from oncely.ports.clock import Clock
from oncely.ports.store import (
    AttemptResult,
    Claimed,
    ClaimedRun,
    ClaimParams,
    Store,
    TransactionCancelled,
    TxControl,
)
from oncely.runtime.blocking import BlockingCaller
from oncely.runtime.events import (
    NULL_BUS,
    AttemptLeaseLost,
    AttemptsStarted,
    EventBus,
    RunsSkipped,
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
    prefetch_share: float = 0.5
    """At most this share of a queue's slots hold prefetched (not yet due) runs."""
    idle_poll: float = 1.0
    shutdown_grace: float = 30.0
    trust_margin: float | None = None
    """Stop an attempt this long before its lease could expire in the store; default
    ``clamp(lease_ttl / 5, 0.5, lease_ttl / 2)``: covers the clock error between this
    worker and the reaper, and the time to stop the attempt."""
    retry_min: float = 0.05
    retry_max: float = 0.5

    @property
    def margin(self) -> float:
        if self.trust_margin is not None:
            return self.trust_margin
        return min(max(self.lease_ttl / 5, 0.5), self.lease_ttl / 2)


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
    trust_until: float
    """Local monotonic instant after which the lease may have been handed on."""
    task: asyncio.Task[None] | None = None
    lost: bool = False
    started_at: datetime | None = None
    control: TxControl | None = None
    early: bool = False
    """Held, waiting for its due time (counts against the queue's prefetch share)."""
    posted: bool = False
    """Its outcome is in the outbox."""
    settled: bool = False
    """Its slot is freed (``Worker._settle`` ran)."""


class _Backoff:
    """Capped exponential retry delays: short enough to notice a recovered store at once."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high
        self._next = low

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.high)
        return delay * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not secrets

    def reset(self) -> None:
        self._next = self.low


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
        # The hot path's own threads: a claim loop per queue, the heartbeat, the flusher and
        # the next-due probes never wait behind anyone else's store calls.
        self._owns_caller = caller is None
        self._call = caller or BlockingCaller(2 * len(self.config.queues) + 3, "oncely-worker")
        # Transactional tasks hold a thread (and a connection) for as long as they run.
        self._tx_call = BlockingCaller(max(sum(self.config.queues.values()), 1), "oncely-txtask")
        self._attempts: dict[str, _Attempt] = {}
        self._running: dict[str, int] = dict.fromkeys(self.config.queues, 0)
        self._early: dict[str, int] = dict.fromkeys(self.config.queues, 0)
        self._outbox: list[AttemptResult] = []
        # Outcomes of started attempts not yet recorded: run id -> queue, and per queue.
        self._queue_of: dict[str, str] = {}
        self._unrecorded: dict[str, int] = dict.fromkeys(self.config.queues, 0)
        self._outbox_event = asyncio.Event()
        self._wakes: dict[str, asyncio.Event] = {q: asyncio.Event() for q in self.config.queues}
        self._loop_at: dict[str, float] = {}
        self._heartbeat_at: float | None = None
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
        """Claim and execute until ``stop``; then drain. A loop that dies fails this call."""
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
        try:
            async with asyncio.TaskGroup() as group:
                flusher = group.create_task(self._flush_loop(), name="worker-flush")
                heartbeat = group.create_task(self._heartbeat_loop(), name="worker-heartbeat")
                watchdog = group.create_task(self._trust_loop(), name="worker-trust")
                claimers = [
                    group.create_task(self._claim_loop(queue, limit, stop), name=f"claim-{queue}")
                    for queue, limit in self.config.queues.items()
                ]
                await stop.wait()
                await self._shut_down(claimers, heartbeat, watchdog, flusher)
        finally:
            self._claiming = False
            # A failed loop leaves attempts behind: stop them (their leases will expire).
            for attempt in list(self._attempts.values()):
                self._cancel(attempt)
            listen_stop.set()
            if listener is not None:
                await asyncio.to_thread(listener.join, 5)
            self._tx_call.shutdown(wait=False)
            if self._owns_caller:
                self._call.shutdown(wait=False)

    async def _shut_down(
        self,
        claimers: list[asyncio.Task[None]],
        heartbeat: asyncio.Task[None],
        watchdog: asyncio.Task[None],
        flusher: asyncio.Task[None],
    ) -> None:
        self._claiming = False
        for event in self._wakes.values():
            event.set()
        await asyncio.gather(*claimers)
        await self._drain()
        heartbeat.cancel()
        watchdog.cancel()
        # Let the flusher record what is left (cancelling it could drop a batch in flight).
        self._closing = True
        self._outbox_event.set()
        done, _ = await asyncio.wait([flusher], timeout=self.config.shutdown_grace)
        if not done:
            log.error(
                "could not record %d outcomes before exiting; their leases will "
                "expire and the runs will be retried",
                len(self._outbox),
            )
            flusher.cancel()

    async def _claim_loop(self, queue: str, limit: int, stop: asyncio.Event) -> None:
        wake = self._wakes[queue]
        cfg = self.config
        backoff = _Backoff(cfg.retry_min, cfg.retry_max)
        early_cap = max(1, int(limit * cfg.prefetch_share)) if cfg.prefetch > 0 else 0
        ttl = timedelta(seconds=cfg.lease_ttl)
        while self._claiming and not stop.is_set():
            wake.clear()
            free = self._room(queue, limit)
            claimed = Claimed()
            # Prefetch only while fewer than ``early_cap`` held runs wait for their due time;
            # past that, claim what is due and leave the rest to whoever is free when it is.
            early_room = early_cap - self._early[queue]
            want = min(free, cfg.claim_batch)
            if early_room > 0:
                want = min(want, early_room)
            if want > 0:
                sent = time.monotonic()
                try:
                    # Inside: a database clock's very first sample can fail like a claim.
                    now = self.clock.now()
                    claimed = await self._call(
                        self.store.run_claim,
                        ClaimParams(
                            self.worker_id,
                            queue,
                            want,
                            now,
                            ttl,
                            prefetch_until=(
                                now + timedelta(seconds=cfg.prefetch) if early_room > 0 else None
                            ),
                        ),
                    )
                except Exception:
                    log.exception("claim failed on queue %s; retrying", queue)
                    await asyncio.sleep(backoff.next())
                    continue
                backoff.reset()
                self._hold(claimed, sent + cfg.lease_ttl - cfg.margin)
                if claimed:
                    self.events.emit(AttemptsStarted(self.worker_id, claimed, now))
                if claimed.skipped or claimed.cancelled:
                    # The claim's overlap policies settled these in its transaction.
                    self.events.emit(
                        RunsSkipped(self.worker_id, queue, claimed.skipped, claimed.cancelled, now)
                    )
            self._loop_at[queue] = time.monotonic()
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
                    timeout = backoff.next()
                if due is not None:
                    # Wake when the next run enters the prefetch window (or, with no room
                    # left to prefetch, or if it already has, when it is due).
                    wait = (due - self.clock.now()).total_seconds()
                    if wait > cfg.prefetch and self._early[queue] < early_cap:
                        wait -= cfg.prefetch
                    timeout = min(timeout, max(wait, 0.002))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    def _hold(self, claimed: list[ClaimedRun], trust_until: float) -> None:
        """Take claimed runs into their slots; start the due ones, time the prefetched ones.

        Prefetched runs wait in groups, one timer per start instant: a thousand runs due at
        one second then cost one timer, not a thousand (the event loop pops timers one by one
        before it runs any of them, a few microseconds each)."""
        now = self.clock.now()
        later: dict[datetime, list[_Attempt]] = {}
        for run in claimed:
            self.stats.claimed += 1
            self._running[run.queue] = self._running.get(run.queue, 0) + 1
            attempt = _Attempt(run, trust_until)
            self._attempts[run.run_id] = attempt
            if run.started_at > now:
                attempt.early = True
                self._early[run.queue] = self._early.get(run.queue, 0) + 1
                later.setdefault(run.started_at, []).append(attempt)
            else:
                self._start(attempt, now)
        loop = asyncio.get_running_loop()
        for at, group in later.items():
            loop.call_later((at - now).total_seconds(), self._start_group, group)

    def _start_group(self, group: list[_Attempt]) -> None:
        now = self.clock.now()
        early = (group[0].claimed.started_at - now).total_seconds()
        if early > 0:
            # The loop may fire a timer up to its clock resolution early; a run never starts
            # before it is due.
            asyncio.get_running_loop().call_later(early, self._start_group, group)
            return
        for attempt in group:
            # Gone meanwhile: lost its lease, or released by a shutdown.
            if self._attempts.get(attempt.claimed.run_id) is attempt and attempt.task is None:
                self._start(attempt, now)

    def _start(self, attempt: _Attempt, now: datetime) -> None:
        """Start a held run (``now``: read once for a whole group starting together)."""
        self._not_early(attempt)
        if time.monotonic() >= attempt.trust_until:
            # Held past the point where its lease may have been handed on (this process was
            # paused, or cut off): starting it now could run it twice.
            self._give_up(attempt, "its lease could not be trusted any more before it started")
            return
        attempt.started_at = now
        # Unnamed: a name per task is a string per run on the hot path (the task's repr
        # shows its coroutine, which holds the attempt).
        attempt.task = asyncio.create_task(self._execute(attempt))

    def _unhold(self, attempt: _Attempt) -> None:
        """Free the slot of a held run that never started."""
        run = attempt.claimed
        self._not_early(attempt)
        self._running[run.queue] -= 1
        self._attempts.pop(run.run_id, None)
        self._wake(run.queue)

    def _not_early(self, attempt: _Attempt) -> None:
        if attempt.early:
            attempt.early = False
            self._early[attempt.claimed.queue] -= 1

    async def _execute(self, attempt: _Attempt) -> None:
        # Bookkeeping here rather than in a done callback (one event-loop callback less per
        # attempt); a task cancelled before its first step never runs this, which is why
        # every cancel goes through ``_cancel``.
        try:
            result = await self._attempt(attempt)
        except asyncio.CancelledError:
            self._settle(attempt, cancelled=True)
            raise
        except Exception as exc:
            self._settle(attempt, crash=exc)
            return
        if result is not None and not attempt.lost:
            attempt.posted = True
            self._post(result, queue=attempt.claimed.queue)
        self._settle(attempt)

    def _cancel(self, attempt: _Attempt) -> None:
        """Cancel a started attempt; its slot is freed even if its task never got to run."""
        task = attempt.task
        if task is None or task.done():
            return
        task.cancel()
        task.add_done_callback(lambda _: self._settle(attempt, cancelled=True))

    def _settle(
        self, attempt: _Attempt, *, cancelled: bool = False, crash: Exception | None = None
    ) -> None:
        """Free the slot of a started attempt that ended (once, however it ended)."""
        if attempt.settled:
            return
        attempt.settled = True
        run = attempt.claimed
        if cancelled:
            if not attempt.lost and not attempt.posted and not self._claiming:
                # Shutdown: give the run back rather than leave it to expire.
                self._post(self._result(attempt, AttemptOutcome.RELEASED, error="worker shut down"))
        elif crash is not None and not attempt.lost and not attempt.posted:
            # A bug outside the executors' own error handling: fail the attempt visibly.
            log.error("run %s: attempt crashed", run.run_id, exc_info=crash)
            self._post(
                self._result(attempt, AttemptOutcome.FAILED, error=describe_exception(crash))
            )
        # From here the outbox entry, if any, is what the heartbeat keeps alive.
        if self._attempts.get(run.run_id) is attempt:
            del self._attempts[run.run_id]
        self._running[run.queue] -= 1
        self._wake(run.queue)

    def _room(self, queue: str, limit: int) -> int:
        """Runs the queue may claim now: its free slots, or none while as many of its
        outcomes as it has slots wait to be recorded (the backpressure)."""
        if self._unrecorded.get(queue, 0) >= limit:
            return 0
        return limit - self._running[queue]

    def _wake(self, queue: str) -> None:
        wake = self._wakes.get(queue)
        if wake is not None:
            wake.set()

    async def _attempt(self, attempt: _Attempt) -> AttemptResult | None:
        run = attempt.claimed
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
                return await self._transactional(attempt, ctx)
        executor = self.executors.get(action.kind)
        if executor is None:
            outcome = ActionResult(
                ok=False, error=f"{action.kind} actions are not available in this worker"
            )
        else:
            try:
                if run.policy.timeout is None:
                    outcome = await executor.execute(action, ctx)
                else:
                    # asyncio.timeout, not wait_for: wait_for wraps the coroutine in a
                    # second task per attempt (Python 3.11).
                    async with asyncio.timeout(run.policy.timeout):
                        outcome = await executor.execute(action, ctx)
            except TimeoutError:
                return self._result(
                    attempt,
                    AttemptOutcome.TIMED_OUT,
                    error=f"timed out after {run.policy.timeout:g} s",
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an executor bug must not kill the worker
                outcome = ActionResult(ok=False, error=describe_exception(exc))
        return self._result(
            attempt,
            AttemptOutcome.SUCCEEDED if outcome.ok else AttemptOutcome.FAILED,
            error=outcome.error,
            output=outcome.output,
        )

    async def _transactional(self, attempt: _Attempt, ctx: ActionContext) -> AttemptResult | None:
        """Run a transactional task: its writes commit with the run's completion, or not at all.

        It runs on a thread and a store connection of its own (never the hot path's), its
        statements bounded by the job's timeout on the server; past the timeout, or when
        its lease can no longer be trusted, its transaction is cancelled and rolled back."""
        run = attempt.claimed
        assert isinstance(run.action, PythonAction)
        task = self.registry.get(run.action.task)
        assert task is not None
        control = attempt.control = TxControl()
        timeout = run.policy.timeout

        def effect(conn: Any) -> Any:
            return task.fn(task_context(ctx, conn))

        recorded: list[AttemptResult] = []

        def success(value: Any) -> AttemptResult:
            if control.cancelled:
                raise TransactionCancelled("the attempt was cancelled")
            output = describe_return(value, MAX_OUTPUT_BYTES)
            recorded.append(self._result(attempt, AttemptOutcome.SUCCEEDED, output=output))
            return recorded[-1]

        def complete() -> bool:
            # Finishes on its own thread even if this attempt is cancelled meanwhile; the
            # cancelled control then rolls its transaction back.
            accepted, _ = self.store.run_complete_with(
                success, effect, timeout=timeout, control=control
            )
            return accepted

        try:
            accepted = await asyncio.wait_for(self._tx_call(complete), timeout)
        except TimeoutError:
            control.cancel()
            return self._result(
                attempt, AttemptOutcome.TIMED_OUT, error=f"timed out after {timeout:g} s"
            )
        except asyncio.CancelledError:
            control.cancel()
            raise
        except TransactionCancelled as exc:
            return self._result(attempt, AttemptOutcome.TIMED_OUT, error=str(exc))
        except Exception as exc:
            if _is_statement_timeout(exc):
                return self._result(
                    attempt,
                    AttemptOutcome.TIMED_OUT,
                    error=f"a statement ran past the job's timeout ({timeout:g} s)",
                )
            # The task raised: the transaction rolled back; record the failure normally.
            return self._result(attempt, AttemptOutcome.FAILED, error=describe_exception(exc))
        if recorded:
            emit_outcomes(self.events, self.worker_id, recorded[-1:], [accepted], self.clock.now())
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
        return None

    def _result(
        self,
        attempt: _Attempt,
        outcome: AttemptOutcome,
        *,
        error: str | None = None,
        output: str | None = None,
    ) -> AttemptResult:
        run = attempt.claimed
        now = self.clock.now()
        # The real start (a prefetched run starts at its due time, a starved worker later).
        started = attempt.started_at or now
        return AttemptResult(
            run_id=run.run_id,
            token=run.token,
            attempt=run.attempt,
            worker_id=self.worker_id,
            outcome=outcome,
            decision=decide_after_attempt(outcome, run.failures, run.policy, now),
            started_at=started,
            finished_at=max(now, started),
            error=cap_text(error, MAX_ERROR_CHARS, keep="tail"),
            output=cap_text(output, MAX_OUTPUT_BYTES),
            job_id=run.job_id,
            job_name=run.job_name,
            queue=run.queue,
        )

    # -- recording ------------------------------------------------------------------------

    def _post(self, result: AttemptResult, *, queue: str | None = None) -> None:
        """Queue an outcome for recording; ``queue``: that of the attempt it ends, whose
        claiming pauses while too many of its outcomes wait (``_room``). So the outbox (and
        every heartbeat, which renews its leases) stays bounded by the concurrency instead
        of growing until leases lapse when recording falls behind."""
        if queue is not None:
            self._queue_of[result.run_id] = queue
            self._unrecorded[queue] = self._unrecorded.get(queue, 0) + 1
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
        backoff = _Backoff(self.config.retry_min, self.config.retry_max)
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                accepted = await self._call(self.store.run_complete, batch)
            except Exception:
                log.exception("recording %d outcomes failed; retrying", len(batch))
                self._outbox = batch + self._outbox
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            for result, ok in zip(batch, accepted, strict=True):
                self._count(result, ok)
                queue = self._queue_of.pop(result.run_id, None)
                if queue is not None:
                    self._unrecorded[queue] -= 1
                    self._wake(queue)
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
        elif result.outcome is AttemptOutcome.LOST:
            pass  # counted when the attempt was given up
        else:
            self.stats.failed += 1

    # -- leases ---------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        cfg = self.config
        interval = cfg.lease_ttl / 3
        backoff = _Backoff(cfg.retry_min * 4, cfg.retry_max)
        delay = interval
        while True:
            await asyncio.sleep(delay)
            delay = interval
            held = [(a.claimed.run_id, a.claimed.token) for a in self._attempts.values()]
            held += [(r.run_id, r.token) for r in self._outbox]
            if not held:
                self._heartbeat_at = time.monotonic()
                continue
            # Trust is measured from when the renewal was *sent*: the store computes the new
            # expiry from ``now``, read after ``sent`` was.
            sent = time.monotonic()
            try:
                now = self.clock.now()
                kept = await self._call(
                    self.store.run_heartbeat,
                    self.worker_id,
                    held,
                    now=now,
                    ttl=timedelta(seconds=cfg.lease_ttl),
                )
            except Exception:
                log.exception("heartbeat failed; retrying (leases are trusted until they lapse)")
                delay = backoff.next()
                continue
            backoff.reset()
            self._heartbeat_at = time.monotonic()
            trust = sent + cfg.lease_ttl - cfg.margin
            for run_id, token in held:
                attempt = self._attempts.get(run_id)
                if attempt is None or attempt.claimed.token != token:
                    continue
                if run_id in kept:
                    attempt.trust_until = max(attempt.trust_until, trust)
                    continue
                # Reaped, cancelled or replaced: stop the work, it can no longer record.
                log.warning("run %s: lease lost; cancelling the attempt", run_id)
                self._stop(attempt)

    async def _trust_loop(self) -> None:
        """Stop attempts whose lease can no longer be trusted (guarantee: lease trust)."""
        period = min(0.25, self.config.lease_ttl / 12)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for attempt in [a for a in self._attempts.values() if a.trust_until <= now]:
                if attempt.lost:
                    continue
                self._give_up(
                    attempt,
                    "lease could not be renewed in time (the store was unreachable); "
                    "stopped before the lease could be handed on",
                )

    def _stop(self, attempt: _Attempt) -> None:
        """The lease is gone: stop the attempt without recording anything."""
        attempt.lost = True
        self.stats.lost += 1
        token, now = attempt.claimed.token, self.clock.now()
        self.events.emit(AttemptLeaseLost(self.worker_id, attempt.claimed.run_id, token, now))
        if attempt.control is not None:
            attempt.control.cancel()
        if attempt.task is not None:
            self._cancel(attempt)
        else:
            self._unhold(attempt)

    def _give_up(self, attempt: _Attempt, why: str) -> None:
        """Our lease may lapse any moment: stop the attempt and record it as lost (fenced:
        refused if the reaper recorded it first)."""
        log.warning("run %s: %s", attempt.claimed.run_id, why)
        self._stop(attempt)
        self._post(self._result(attempt, AttemptOutcome.LOST, error=why))

    async def _drain(self) -> None:
        """Let running attempts finish within the grace period, then release the rest."""
        for attempt in [a for a in self._attempts.values() if a.task is None]:
            # Prefetched, not started: give the run straight back, due when it was due.
            run = attempt.claimed
            now = self.clock.now()
            self._unhold(attempt)
            released = self._result(attempt, AttemptOutcome.RELEASED, error="worker shut down")
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
        started = {a.task: a for a in self._attempts.values() if a.task is not None}
        if not started:
            return
        _, pending = await asyncio.wait(started, timeout=self.config.shutdown_grace)
        for task in pending:
            self._cancel(started[task])
        if pending:
            log.warning("shutdown: releasing %d runs still going", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def running(self) -> int:
        return len(self._attempts)

    def slots(self) -> dict[str, tuple[int, int]]:
        """Per queue: (slots holding a run, concurrency)."""
        return {q: (self._running.get(q, 0), n) for q, n in self.config.queues.items()}

    def status(self) -> dict[str, Any]:
        """Liveness of each loop, for /readyz: seconds since each queue's claim loop last
        turned and since the last successful heartbeat (None: not yet)."""
        mono = time.monotonic()
        return {
            "running": self.running,
            "outbox": len(self._outbox),
            "queues": {
                queue: {
                    "running": self._running.get(queue, 0),
                    "loop_age": _age(mono, self._loop_at.get(queue)),
                }
                for queue in self.config.queues
            },
            "heartbeat_age": _age(mono, self._heartbeat_at),
            "claimed": self.stats.claimed,
            "succeeded": self.stats.succeeded,
            "failed": self.stats.failed,
            "lost": self.stats.lost,
            "refused": self.stats.refused,
        }


def _age(mono: float, at: float | None) -> float | None:
    return None if at is None else round(mono - at, 3)


def _is_statement_timeout(exc: BaseException) -> bool:
    """PostgreSQL's statement_timeout (SQLSTATE 57014, query_canceled)."""
    return getattr(exc, "sqlstate", None) == "57014"
