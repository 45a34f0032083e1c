"""The run state machine, backoff and overlap decisions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oncely.domain.backoff import backoff_delay
from oncely.domain.overlap import ClaimCandidate, resolve_overlap
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome, RunState, decide_after_attempt, visible_state

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_success_ends_the_run() -> None:
    d = decide_after_attempt(AttemptOutcome.SUCCEEDED, 2, Policy(), T0)
    assert (d.state, d.failures, d.due_at) == (RunState.SUCCEEDED, 2, None)


@pytest.mark.parametrize(
    "outcome", [AttemptOutcome.FAILED, AttemptOutcome.TIMED_OUT, AttemptOutcome.LOST]
)
def test_failures_retry_until_max_retries_then_die(outcome: AttemptOutcome) -> None:
    policy = Policy(max_retries=2, base_delay=1, max_delay=10)
    first = decide_after_attempt(outcome, 0, policy, T0, random.Random(1))
    assert first.state is RunState.RETRYING and first.failures == 1
    assert first.due_at is not None and T0 <= first.due_at <= T0 + timedelta(seconds=2)
    second = decide_after_attempt(outcome, 1, policy, T0, random.Random(1))
    assert second.state is RunState.RETRYING and second.failures == 2
    third = decide_after_attempt(outcome, 2, policy, T0)
    assert (third.state, third.failures, third.due_at) == (RunState.DEAD, 3, None)


def test_zero_retries_dies_on_first_failure() -> None:
    d = decide_after_attempt(AttemptOutcome.FAILED, 0, Policy(max_retries=0), T0)
    assert d.state is RunState.DEAD


def test_release_requeues_without_spending_a_retry() -> None:
    d = decide_after_attempt(AttemptOutcome.RELEASED, 1, Policy(max_retries=1), T0)
    assert (d.state, d.failures, d.due_at) == (RunState.QUEUED, 1, T0)


def test_cancelled_attempt_cancels_the_run() -> None:
    assert decide_after_attempt(AttemptOutcome.CANCELLED, 0, Policy(), T0).state is (
        RunState.CANCELLED
    )


@given(
    failures=st.integers(1, 200),
    base=st.floats(0, 100),
    extra=st.floats(0, 1000),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_full_jitter_within_the_capped_window(
    failures: int, base: float, extra: float, seed: int
) -> None:
    cap = base + extra
    delay = backoff_delay(failures, base, cap, random.Random(seed)).total_seconds()
    assert 0 <= delay <= min(cap, base * 2**failures) + 1e-9


def test_backoff_window_doubles() -> None:
    class Top(random.Random):
        def random(self) -> float:
            return 1.0

    windows = [backoff_delay(n, 1.0, 1000, Top()).total_seconds() for n in range(1, 6)]
    assert windows == [2, 4, 8, 16, 32]
    assert backoff_delay(40, 1.0, 300, Top()).total_seconds() == 300


def test_spread_of_jitter_is_wide() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(3, 1.0, 100, rng).total_seconds() for _ in range(2000)]
    assert min(delays) < 0.5 and max(delays) > 7.5  # uses the whole [0, 8] window


def test_due_waiting_runs_read_as_queued() -> None:
    later = T0 + timedelta(seconds=1)
    assert visible_state(RunState.PENDING, T0, later) is RunState.QUEUED
    assert visible_state(RunState.RETRYING, T0, later) is RunState.QUEUED
    assert visible_state(RunState.PENDING, later, T0) is RunState.PENDING
    assert visible_state(RunState.RUNNING, T0, later) is RunState.RUNNING


def c(run: str, job: str, overlap: str, second: int = 0) -> ClaimCandidate:
    return ClaimCandidate(run, job, overlap, T0 + timedelta(seconds=second))  # type: ignore[arg-type]


def test_overlap_allow_claims_everything() -> None:
    d = resolve_overlap([c("r1", "j", "allow"), c("r2", "j", "allow", 1)], {"j": ["live"]})
    assert (d.claim, d.skip, d.cancel) == (["r1", "r2"], [], [])


def test_overlap_forbid() -> None:
    d = resolve_overlap([c("r1", "j", "forbid"), c("r2", "j", "forbid", 1)], {})
    assert (d.claim, d.skip) == (["r1"], ["r2"])
    d = resolve_overlap([c("r1", "j", "forbid")], {"j": ["live"]})
    assert (d.claim, d.skip) == ([], ["r1"])


def test_overlap_replace() -> None:
    d = resolve_overlap([c("r1", "j", "replace"), c("r2", "j", "replace", 1)], {"j": ["live"]})
    assert (d.claim, d.skip, d.cancel) == (["r2"], ["r1"], ["live"])


def test_policy_validation_messages() -> None:
    from oncely.domain.errors import InvalidInput

    with pytest.raises(InvalidInput, match="overlap must be one of"):
        Policy(overlap="sometimes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="queue"):
        Policy(queue="bad queue!")
    with pytest.raises(InvalidInput, match="retries"):
        Policy(max_retries=-1)
