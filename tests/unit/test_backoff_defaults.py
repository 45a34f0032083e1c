"""The default retry schedule rides out a minute-long outage of the target
(docs/guarantees.md): its windows, its bounds, and how rarely a run dies within 60 s."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from oncely.domain.backoff import backoff_delay
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome, RunState, decide_after_attempt
from oncely.wire import JobFields, OneTimeJobCreate

D = JobFields()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def policy() -> Policy:
    return Policy(max_retries=D.retries, base_delay=D.base_delay, max_delay=D.max_delay)


def retry_times(rand: random.Random) -> list[float]:
    """Seconds after the first failure at which each retry is due, until the run is dead."""
    now, failures, times = T0, 0, []
    while True:
        decision = decide_after_attempt(AttemptOutcome.FAILED, failures, policy(), now, rand)
        if decision.state is RunState.DEAD:
            return times
        assert decision.state is RunState.RETRYING and decision.due_at is not None
        now, failures = decision.due_at, decision.failures
        times.append((now - T0).total_seconds())


def test_defaults_are_eight_retries_from_two_seconds_capped_at_five_minutes() -> None:
    assert (D.retries, D.base_delay, D.max_delay) == (8, 2.0, 300.0)
    assert OneTimeJobCreate.model_fields["retries"].default == D.retries


def test_the_windows_of_each_retry() -> None:
    ceilings = [
        backoff_delay(n, D.base_delay, D.max_delay, _Fixed(1.0)).total_seconds()
        for n in range(1, D.retries + 1)
    ]
    assert ceilings == [4, 8, 16, 32, 64, 128, 256, 300]
    assert sum(ceilings) == 808  # the latest a run can go dead: 13.5 minutes after failing


def test_a_failing_run_is_rarely_dead_within_a_minute() -> None:
    rand = random.Random(20261204)
    schedules = [retry_times(rand) for _ in range(20_000)]
    assert all(len(s) == D.retries for s in schedules)
    assert all(s == sorted(s) and s[-1] <= 808 for s in schedules)
    dead_within_a_minute = sum(1 for s in schedules if s[-1] < 60)
    assert dead_within_a_minute / len(schedules) < 0.002
    mean_to_dead = sum(s[-1] for s in schedules) / len(schedules)
    assert 360 < mean_to_dead < 450  # about 7 minutes
    # A blip of seconds: the first retry comes within 4 s.
    assert max(s[0] for s in schedules) <= 4


class _Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value
