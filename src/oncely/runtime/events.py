"""Typed runtime events and the in-process bus that carries them to observers.

The scheduler, the worker and the reaper say what happened (``emit``); metrics, logs and
notifications subscribe. Nothing about observers is threaded through the loops.

Design:

- **Events are plain frozen dataclasses**, named for what happened. The hot path emits
  batches: one ``AttemptsStarted`` per claim (the claimed runs, the list the claim already
  made) and one ``AttemptsFinished`` per recorded batch of outcomes, never one object per
  successful run. The rare, interesting transitions (a run retrying, dead, missed; a lease
  gained or lost; a takeover; a store error) are events of their own, one per run or lease:
  those are what logs and notifications act on.
- **Emitting never blocks and never raises.** ``emit`` appends to a bounded queue (a
  ``deque.append``, atomic under the GIL) and wakes the dispatcher thread; an event of a
  type no observer subscribed to is dropped at once (with no observer, every event is).
  Observers run on that one thread, in subscription order, never on the emitting loop's
  thread: an observer that is slow delays only other observers, and one that raises is
  logged (once per observer and exception type, then counted) and skipped. If the observers
  fall ``capacity`` events behind, the oldest waiting events are dropped and counted
  (``dropped``): the loops never wait for an observer.
- Observers therefore see events a little after they happened, in emission order per
  emitting thread. ``flush`` waits until everything emitted so far has been handed out (tests,
  shutdown).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from oncely.domain.firing import FirePlan
from oncely.domain.runs import AttemptOutcome, RunState
from oncely.ports.store import AttemptResult, ClaimedRun

log = logging.getLogger("oncely.events")


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FiresMaterialized:
    """A scheduler committed one batch of fires (runs created ahead, jobs advanced)."""

    node: str
    runs_created: int
    jobs_advanced: int
    at: datetime


@dataclass(frozen=True, slots=True)
class RunsMissed:
    """Fires of one job were recorded as ``missed`` (misfire policy after downtime)."""

    node: str
    job_id: str
    fires: int
    """How many fires the missed runs stand for."""
    first: datetime
    last: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class AttemptsStarted:
    """A worker claimed ``runs`` (one claim batch). Each starts at its ``started_at``."""

    node: str
    runs: Sequence[ClaimedRun]
    at: datetime


@dataclass(frozen=True, slots=True)
class RunsSkipped:
    """A worker's claim applied overlap policies (one batch per claim): ``skipped`` runs
    never start (state ``skipped``), ``cancelled`` live runs were replaced by a newer one;
    both as (run id, job id) pairs."""

    node: str
    queue: str
    skipped: tuple[tuple[str, str], ...]
    cancelled: tuple[tuple[str, str], ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class AttemptsFinished:
    """A batch of attempt outcomes was sent to the store (by a worker, or by the reaper for
    lost leases); ``accepted[i]`` says whether ``results[i]`` was recorded (a refused one
    came under a stale fencing token and changed nothing)."""

    node: str
    results: Sequence[AttemptResult]
    accepted: Sequence[bool]
    at: datetime


@dataclass(frozen=True, slots=True)
class RunRetrying:
    """An attempt failed and the run waits for its next try (recorded in the store)."""

    node: str
    run_id: str
    job_id: str | None
    job_name: str | None
    queue: str | None
    attempt: int
    token: int
    outcome: AttemptOutcome
    failures: int
    due_at: datetime | None
    error: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RunDead:
    """An attempt failed with no retry left: the run is ``dead`` until someone requeues it."""

    node: str
    run_id: str
    job_id: str | None
    job_name: str | None
    queue: str | None
    attempt: int
    token: int
    outcome: AttemptOutcome
    failures: int
    error: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AttemptLeaseLost:
    """A worker found that it no longer holds a run it was executing (reaped, cancelled or
    replaced) and stopped the attempt."""

    node: str
    run_id: str
    token: int
    at: datetime


@dataclass(frozen=True, slots=True)
class LeasesGained:
    """A node now holds these leases (shards, or a maintenance lease) under new tokens."""

    node: str
    names: tuple[str, ...]
    tokens: tuple[int, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class LeasesLost:
    """A node no longer holds these leases: not renewed in time, or taken over."""

    node: str
    names: tuple[str, ...]
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Takeover:
    """A node took a lease that another holder had let expire (it crashed or stalled)."""

    node: str
    name: str
    previous_holder: str
    previous_token: int
    token: int
    at: datetime


@dataclass(frozen=True, slots=True)
class StoreCall:
    """One store call made by a loop or a service: how long it took, and whether it failed
    (``error`` is the exception's type name: never its text, which may hold a secret)."""

    operation: str
    seconds: float
    error: str | None


@dataclass(frozen=True, slots=True)
class RetentionPruned:
    """The retention service deleted finished runs (with their attempts) and purged jobs."""

    node: str
    runs: int
    attempts: int
    jobs: int
    at: datetime


Event = (
    FiresMaterialized
    | RunsMissed
    | AttemptsStarted
    | RunsSkipped
    | AttemptsFinished
    | RunRetrying
    | RunDead
    | AttemptLeaseLost
    | LeasesGained
    | LeasesLost
    | Takeover
    | StoreCall
    | RetentionPruned
)

E = TypeVar("E")
Observer = Callable[[Any], None]


# -- the bus --------------------------------------------------------------------------------


class EventBus:
    """Synchronous to emit, asynchronous to observe: see the module's notes."""

    def __init__(self, *, capacity: int = 100_000, name: str = "oncely-events") -> None:
        self.capacity = capacity
        self.dropped = 0
        self.observer_errors = 0
        self._name = name
        self._observers: list[tuple[tuple[type, ...] | None, Observer]] = []
        self._wanted: frozenset[type] | None = frozenset()
        """Event types some observer wants (None: every type); emit drops the rest."""
        self._queue: collections.deque[Any] = collections.deque()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._warned: set[tuple[int, type]] = set()
        self._closed = False

    @property
    def active(self) -> bool:
        """True when someone listens."""
        return bool(self._observers)

    def wants(self, kind: type) -> bool:
        """True when an observer would get events of ``kind``: an emitter may skip building
        events nobody reads."""
        wanted = self._wanted
        return wanted is None or kind in wanted

    def _update_wanted(self) -> None:
        kinds: set[type] = set()
        for entry_kinds, _ in self._observers:
            if entry_kinds is None:
                self._wanted = None
                return
            kinds.update(entry_kinds)
        self._wanted = frozenset(kinds)

    def subscribe(self, observer: Callable[[E], None], *kinds: type[E]) -> Callable[[], None]:
        """Call ``observer`` (on the bus thread) with every event of ``kinds`` (all events
        if none given). Returns a function that unsubscribes."""
        entry: tuple[tuple[type, ...] | None, Observer] = (tuple(kinds) or None, observer)
        with self._lock:
            self._observers = [*self._observers, entry]
            self._update_wanted()
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._dispatch, name=self._name, daemon=True)
                self._thread.start()

        def unsubscribe() -> None:
            with self._lock:
                self._observers = [o for o in self._observers if o is not entry]
                self._update_wanted()

        return unsubscribe

    def emit(self, event: Any) -> None:
        """Hand ``event`` to the observers; never blocks, never raises."""
        wanted = self._wanted
        if wanted is not None and type(event) not in wanted:
            return
        queue = self._queue
        if len(queue) >= self.capacity:
            self._drop_oldest()
        queue.append(event)
        if not self._ready.is_set():
            self._ready.set()

    def _drop_oldest(self) -> None:
        try:
            dropped = self._queue.popleft()
        except IndexError:
            return
        if isinstance(dropped, threading.Event):  # a flush marker is never dropped
            self._queue.appendleft(dropped)
            return
        self.dropped += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event emitted so far (by this thread, or before this call by
        others) was handed to the observers; False on timeout."""
        if self._thread is None:
            return True
        marker = threading.Event()
        self._queue.append(marker)
        self._ready.set()
        return marker.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop the dispatcher thread."""
        self.flush(timeout)
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        self._ready.set()
        if thread is not None:
            thread.join(timeout)

    def _dispatch(self) -> None:
        queue = self._queue
        while not self._closed:
            self._ready.wait()
            self._ready.clear()
            while queue:
                try:
                    event = queue.popleft()
                except IndexError:
                    break
                if isinstance(event, threading.Event):
                    event.set()  # a flush marker
                else:
                    self._deliver(event)

    def _deliver(self, event: Any) -> None:
        for kinds, observer in self._observers:
            if kinds is not None and not isinstance(event, kinds):
                continue
            try:
                observer(event)
            except Exception as exc:
                self.observer_errors += 1
                key = (id(observer), type(exc))
                if key not in self._warned:
                    self._warned.add(key)
                    log.warning(
                        "event observer %r failed on %s (further failures of this kind are "
                        "only counted)",
                        observer,
                        type(event).__name__,
                        exc_info=exc,
                    )


# -- helpers for emitters -------------------------------------------------------------------


def emit_outcomes(
    bus: EventBus,
    node: str,
    results: Sequence[AttemptResult],
    accepted: Sequence[bool],
    at: datetime,
) -> None:
    """Emit one ``AttemptsFinished`` for a recorded batch, then a ``RunRetrying`` or
    ``RunDead`` for each recorded failure: one event per batch on the success path."""
    wanted = bus._wanted
    if wanted is not None and not (wanted & _OUTCOME_EVENTS):
        return
    bus.emit(AttemptsFinished(node, results, accepted, at))
    for result, ok in zip(results, accepted, strict=True):
        state = result.decision.state
        if not ok or state is RunState.SUCCEEDED:
            continue
        if state is RunState.RETRYING:
            bus.emit(
                RunRetrying(
                    node,
                    result.run_id,
                    result.job_id,
                    result.job_name,
                    result.queue,
                    result.attempt,
                    result.token,
                    result.outcome,
                    result.decision.failures,
                    result.decision.due_at,
                    result.error,
                    at,
                )
            )
        elif state is RunState.DEAD:
            bus.emit(
                RunDead(
                    node,
                    result.run_id,
                    result.job_id,
                    result.job_name,
                    result.queue,
                    result.attempt,
                    result.token,
                    result.outcome,
                    result.decision.failures,
                    result.error,
                    at,
                )
            )


def missed_fires(
    node: str,
    plans: Sequence[tuple[int, FirePlan]],
    lost_shards: Collection[int],
    at: datetime,
) -> list[RunsMissed]:
    """The ``RunsMissed`` events of committed fire plans (plans of lost shards were
    dropped by the store, so they are left out)."""
    events: list[RunsMissed] = []
    for shard, plan in plans:
        if shard in lost_shards:
            continue
        missed = [r for r in plan.runs if r.state is RunState.MISSED]
        if missed:
            first = min(r.first_fire or r.scheduled_for for r in missed)
            last = max(r.scheduled_for for r in missed)
            events.append(
                RunsMissed(node, plan.job_id, sum(r.fires for r in missed), first, last, at)
            )
    return events


_OUTCOME_EVENTS = frozenset({AttemptsFinished, RunRetrying, RunDead})

NULL_BUS = EventBus()
"""A bus nobody subscribes to (the default for loops built without one): emitting is free.
Never subscribe to it."""

__all__ = [
    "NULL_BUS",
    "AttemptLeaseLost",
    "AttemptsFinished",
    "AttemptsStarted",
    "Event",
    "EventBus",
    "FiresMaterialized",
    "LeasesGained",
    "LeasesLost",
    "RetentionPruned",
    "RunDead",
    "RunRetrying",
    "RunsMissed",
    "RunsSkipped",
    "StoreCall",
    "Takeover",
    "emit_outcomes",
    "missed_fires",
]
