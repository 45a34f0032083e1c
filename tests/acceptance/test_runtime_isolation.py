"""User code cannot starve the runtime (one `oncely up` process, PostgreSQL and SQLite).

Slow transactional tasks, each longer than the worker lease, run next to a per-second job:
the job's fires start less than a second late (never early), the scheduler keeps every
shard lease it took (same fencing tokens at the end), and no attempt is reaped. On SQLite a
transactional task holds the database's one write lock, so its transaction is capped
(``task_transaction_cap``): a long statement is interrupted there and the attempt fails as
timed out, instead of stopping every other writer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import oncely
from oncely.config import Settings
from oncely.domain.runs import AttemptOutcome
from tests.acceptance.procs import Cluster, wait_for
from tests.support import ledger
from tests.support.pg_instance import free_port

APP = "tests.acceptance.apps.resilience_app:app"


def _run_slow_tasks_next_to_a_per_second_job(
    store_url: str, tmp_path: Path, slow: list[tuple[str, float]]
) -> tuple[oncely.App, list[oncely.Job], Cluster]:
    marks = tmp_path / "marks"
    marks.mkdir()
    client = oncely.App(settings=Settings(store=store_url))
    cluster = Cluster(store_url, tmp_path, {"ONCELY_WORKER_LEASE_TTL": "3"})
    proc = cluster.start(
        "up", "up", "--app", APP, "--port", str(free_port()), "--concurrency", "10"
    )
    wait_for(lambda: "oncely running" in proc.log(), 30, "the process to start")
    slow_jobs = [
        client.add_job(
            f"slow-{i}",
            every="7s",
            task=task,
            payload={"dir": str(marks), "seconds": seconds},
            retries=0,
        )
        for i, (task, seconds) in enumerate(slow)
    ]
    client.add_job("tick", cron="* * * * * *", task="stamp", payload={"dir": str(marks)})
    return client, slow_jobs, cluster


def _assert_runtime_kept_up(
    client: oncely.App, cluster: Cluster, tmp_path: Path, seconds: float
) -> None:
    time.sleep(3)
    shards_before = {lease.name: lease.token for lease in client.store.lease_list("shard:")}
    assert len(shards_before) == 64
    time.sleep(seconds)
    shards_after = {lease.name: lease.token for lease in client.store.lease_list("shard:")}
    cluster.stop_all()
    log = cluster.logs()
    assert shards_after == shards_before, "a shard lease moved (was lost and retaken)"
    assert "lost the lease" not in log and "taken over" not in log
    assert "reaped" not in log
    entries = ledger.read(tmp_path / "marks")
    tick = client.store.job_get_by_name("default", "tick")
    assert tick is not None
    tick_runs = {r.id for r in client.list_runs(tick.id, limit=1000)}
    ticks = [e for e in ledger.starts(entries) if e.run in tick_runs]
    assert len(ticks) >= seconds - 2
    lags = sorted(e.at - e.scheduled_for for e in ticks)
    assert lags[0] >= 0, f"a fire started {-lags[0]:.3f} s early"
    assert lags[-1] < 1.0, f"fire lags {lags[-5:]}"
    for run in client.list_runs(limit=1000):
        for attempt in client.attempts(run.id):
            assert attempt.outcome is not AttemptOutcome.LOST, attempt


@pytest.mark.postgres
def test_slow_transactional_tasks_do_not_starve_the_runtime_on_postgres(
    pg_store_url: str, tmp_path: Path
) -> None:
    client, slow_jobs, cluster = _run_slow_tasks_next_to_a_per_second_job(
        pg_store_url,
        tmp_path,
        [("slow_sleep", 6), ("slow_sleep", 6), ("slow_sql", 6), ("slow_sql", 6)],
    )
    try:
        _assert_runtime_kept_up(client, cluster, tmp_path, 16)
        # Longer than the lease, and done: heartbeats kept them, their writes committed.
        for job in slow_jobs:
            runs = [r for r in client.list_runs(job.id) if r.finished_at is not None]
            assert runs, f"{job.name} never finished"
            for run in runs:
                [attempt] = client.attempts(run.id)
                assert attempt.outcome is AttemptOutcome.SUCCEEDED, attempt
                assert (attempt.finished_at - attempt.started_at).total_seconds() > 5.5
    finally:
        cluster.stop_all()
        client.close()


def test_slow_transactional_statements_are_capped_on_sqlite(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'oncely.db'}"
    client, slow_jobs, cluster = _run_slow_tasks_next_to_a_per_second_job(
        store_url, tmp_path, [("slow_sql", 6), ("slow_sql", 6)]
    )
    try:
        _assert_runtime_kept_up(client, cluster, tmp_path, 14)
        for job in slow_jobs:
            runs = [r for r in client.list_runs(job.id) if r.finished_at is not None]
            assert runs, f"{job.name} never finished"
            for run in runs:
                [attempt] = client.attempts(run.id)
                assert attempt.outcome is AttemptOutcome.TIMED_OUT, attempt
                assert "write lock" in (attempt.error or "")
                assert (attempt.finished_at - attempt.started_at).total_seconds() < 2
    finally:
        cluster.stop_all()
        client.close()
