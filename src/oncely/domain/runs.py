"""The run state machine.

A run is the durable record of one fire. Its states (DESIGN §3)::

    pending ──due──▶ queued ──claim──▶ running ──▶ succeeded
                                          │
                       failed / timed_out / lost attempt
                                          ▼
                         retrying ──backoff──▶ queued … ──▶ dead (after max_retries)

    other ends: skipped (overlap), missed (misfire), cancelled (a user, or overlap=replace)

The store does not rewrite ``pending`` and ``retrying`` runs when they come due: a waiting
run whose ``due_at`` has passed *is* queued, and ``visible_state`` says so. That saves one write
per run on the hot path; every reader goes through ``visible_state``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from oncely.domain.backoff import backoff_delay
from oncely.domain.policy import Policy


class RunState(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    SKIPPED = "skipped"
    MISSED = "missed"
    CANCELLED = "cancelled"


WAITING_STATES = frozenset({RunState.PENDING, RunState.QUEUED, RunState.RETRYING})
"""States a worker may claim once ``due_at`` has passed."""

LIVE_STATES = frozenset({RunState.RUNNING, RunState.RETRYING})
"""A run that has started and not ended: what ``overlap=forbid`` looks for."""

TERMINAL_STATES = frozenset(
    {RunState.SUCCEEDED, RunState.DEAD, RunState.SKIPPED, RunState.MISSED, RunState.CANCELLED}
)

CANCELLABLE_STATES = WAITING_STATES | {RunState.RUNNING}


class AttemptOutcome(StrEnum):
    """How one attempt ended. Only the worker that holds the lease may record the first four."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    RELEASED = "released"
    """The worker shut down before the attempt ended and gave the run back; not a failure."""
    LOST = "lost"
    """The lease expired (the worker crashed or stalled); recorded by the reaper."""
    CANCELLED = "cancelled"


COUNTS_AS_FAILURE = frozenset(
    {AttemptOutcome.FAILED, AttemptOutcome.TIMED_OUT, AttemptOutcome.LOST}
)


def visible_state(state: RunState, due_at: datetime, now: datetime) -> RunState:
    """The state a reader should see: a waiting run that is due is ``queued``."""
    if state in (RunState.PENDING, RunState.RETRYING) and due_at <= now:
        return RunState.QUEUED
    return state


@dataclass(frozen=True)
class RunDecision:
    """Where a run goes after an attempt ends."""

    state: RunState
    failures: int
    due_at: datetime | None = None
    """When the run may be claimed again (retrying/queued); None for an end state."""


def decide_after_attempt(
    outcome: AttemptOutcome,
    failures: int,
    policy: Policy,
    now: datetime,
    rand: random.Random | None = None,
) -> RunDecision:
    """Decide the run's next state from how its attempt ended.

    ``failures`` is the number of failed attempts before this one.
    """
    if outcome is AttemptOutcome.SUCCEEDED:
        return RunDecision(RunState.SUCCEEDED, failures)
    if outcome is AttemptOutcome.CANCELLED:
        return RunDecision(RunState.CANCELLED, failures)
    if outcome is AttemptOutcome.RELEASED:
        return RunDecision(RunState.QUEUED, failures, due_at=now)
    failures += 1
    if failures > policy.max_retries:
        return RunDecision(RunState.DEAD, failures)
    delay = backoff_delay(failures, policy.base_delay, policy.max_delay, rand)
    return RunDecision(RunState.RETRYING, failures, due_at=now + delay)


@dataclass(frozen=True)
class Run:
    """The durable record of one fire, as the store returns it."""

    id: str
    job_id: str
    owner: str
    job_name: str
    scheduled_for: datetime
    due_at: datetime
    state: RunState
    queue: str
    priority: int
    attempt: int
    failures: int
    fires: int
    """How many fires this run stands for: 1, or more when missed fires were coalesced."""
    first_fire: datetime | None
    """The earliest fire a coalesced run stands for (None when ``fires == 1``)."""
    manual: bool
    token: int | None
    worker_id: str | None
    lease_expires_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    output: str | None
    created_at: datetime

    def state_at(self, now: datetime) -> RunState:
        return visible_state(self.state, self.due_at, now)


@dataclass(frozen=True)
class Attempt:
    """One try at a run, kept as history when it ends."""

    run_id: str
    number: int
    token: int
    worker_id: str
    started_at: datetime
    finished_at: datetime
    outcome: AttemptOutcome
    error: str | None
    output: str | None


def retry_window(failures: int, policy: Policy) -> tuple[timedelta, timedelta]:
    """The range the next retry delay falls in; used by docs and the dashboard."""
    ceiling = min(policy.max_delay, policy.base_delay * (2 ** min(failures, 64)))
    return timedelta(0), timedelta(seconds=ceiling)
