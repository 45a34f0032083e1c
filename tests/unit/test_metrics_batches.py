"""The batch histograms and counters of oncely.observe.metrics agree with Prometheus'
semantics (cumulative buckets, ``le`` inclusive) and with the outcomes they were fed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from oncely.domain.runs import AttemptOutcome, RunDecision, RunState
from oncely.observe.metrics import RuntimeMetrics
from oncely.ports.store import AttemptResult
from oncely.runtime.events import AttemptsFinished

T = datetime(2026, 1, 1, tzinfo=UTC)


def result(
    i: int, seconds: float, outcome: AttemptOutcome, state: RunState, queue: str
) -> AttemptResult:
    return AttemptResult(
        run_id=f"r{i}", token=i, attempt=1, worker_id="w", outcome=outcome,
        decision=RunDecision(state, 0), started_at=T, finished_at=T + timedelta(seconds=seconds),
        queue=queue, job_name="j", job_id="jid",
    )  # fmt: skip


def values(metrics: RuntimeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_batches_count_like_single_observations() -> None:
    m = RuntimeMetrics()
    ok, failed = AttemptOutcome.SUCCEEDED, AttemptOutcome.FAILED
    batch = [
        result(1, 0.005, ok, RunState.SUCCEEDED, "a"),  # exactly on a bound: counted in it
        result(2, 0.006, ok, RunState.SUCCEEDED, "a"),
        result(3, 100.0, failed, RunState.RETRYING, "a"),
        result(4, 5000.0, failed, RunState.DEAD, "b"),
        result(5, 1.0, ok, RunState.SUCCEEDED, "b"),
        result(6, 1.0, AttemptOutcome.RELEASED, RunState.QUEUED, "b"),
    ]
    m.observe(AttemptsFinished("w", batch, [True, True, True, True, True, True], T))
    m.observe(AttemptsFinished("w", batch[:1], [False], T))
    v = values(m)
    a, b = ("queue", "a"), ("queue", "b")
    bucket = "oncely_run_duration_seconds_bucket"
    assert v[bucket, (("le", "0.005"), a)] == 1
    assert v[bucket, (("le", "0.01"), a)] == 2
    assert v[bucket, (("le", "60.0"), a)] == 2
    assert v[bucket, (("le", "300.0"), a)] == 3
    assert v[bucket, (("le", "+Inf"), a)] == 3
    assert v[bucket, (("le", "3600.0"), b)] == 1  # the released attempt is not timed
    assert v[bucket, (("le", "+Inf"), b)] == 2
    assert v["oncely_run_duration_seconds_sum", (a,)] == 100.011
    assert v["oncely_attempts_total", (("outcome", "succeeded"), a)] == 2
    assert v["oncely_attempts_total", (("outcome", "released"), b)] == 1
    assert v["oncely_runs_finished_total", (a, ("state", "succeeded"))] == 2
    assert v["oncely_runs_finished_total", (b, ("state", "dead"))] == 1
    assert v["oncely_run_retries_total", (a,)] == 1
    assert v["oncely_attempts_refused_total", (a,)] == 1
