"""Guarantees 1-3 with real processes on PostgreSQL: two schedulers, two workers, crashes."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

import oncely
from oncely.config import Settings
from oncely.domain.runs import AttemptOutcome, RunState
from tests.acceptance.procs import Cluster, wait_for

pytestmark = pytest.mark.postgres


def _client(store_url: str) -> oncely.App:
    return oncely.App(settings=Settings(store=store_url))


def _sql(pg_url: str, schema: str, query: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return conn.execute(query, args).fetchall()  # type: ignore[arg-type]


def test_two_schedulers_two_workers_every_fire_runs_exactly_once(
    cluster: Cluster, pg_store_url: str, pg_url: str, pg_schema: str
) -> None:
    """30+ s of one-second cron jobs across 4 processes, killing a scheduler and a worker
    on the way: every fire materializes once, runs, and its effect is written once."""
    client = _client(pg_store_url)
    jobs = [
        client.add_job(
            f"tick-{i}", cron="* * * * * *", task="record", retries=5, base_delay=0.2, max_delay=1
        )
        for i in range(10)
    ]
    s1, s2 = cluster.scheduler("scheduler-1"), cluster.scheduler("scheduler-2")
    w1, w2 = cluster.worker("worker-1"), cluster.worker("worker-2")
    started = datetime.now(UTC)
    time.sleep(10)
    s1.signal(signal.SIGKILL)  # one scheduler dies; the other takes its shards over
    time.sleep(10)
    w1.signal(signal.SIGKILL)  # a worker dies mid-flight; its runs are reaped and retried
    time.sleep(12)
    # Stop scheduling, then let the surviving worker drain what is due.
    for job in jobs:
        client.pause(job.id)
    paused_at = datetime.now(UTC)
    wait_for(
        lambda: (
            not _sql(
                pg_url,
                pg_schema,
                "SELECT 1 FROM runs WHERE state IN ('queued','running','retrying') "
                "OR (state = 'pending' AND due_at <= now()) LIMIT 1",
            )
        ),
        60,
        "the queue to drain",
    )
    s2.stop(), w2.stop()
    assert (paused_at - started).total_seconds() >= 30

    for job in jobs:
        runs = client.list_runs(job.id, limit=10_000)
        fires = sorted(r.scheduled_for for r in runs if r.state is not RunState.CANCELLED)
        assert len(fires) == len(set(fires)), f"{job.name}: a fire made two runs"
        # Contiguous: every second from the first fire to the last, none lost.
        assert fires[0] <= job.next_fire_at + timedelta(seconds=1)  # type: ignore[operator]
        expected = [fires[0] + timedelta(seconds=i) for i in range(len(fires))]
        assert fires == expected, f"{job.name}: fires were lost"
        assert len(fires) >= 28
        states = {r.state for r in runs if r.state is not RunState.CANCELLED}
        assert states == {RunState.SUCCEEDED}, f"{job.name}: {states}"
        assert all(r.fires == 1 for r in runs)
    effects = _sql(
        pg_url, pg_schema, "SELECT job_id, scheduled_for, count(*) FROM effects GROUP BY 1, 2"
    )
    assert all(n == 1 for _, _, n in effects), "an effect was written twice"
    succeeded = _sql(pg_url, pg_schema, "SELECT count(*) FROM runs WHERE state = 'succeeded'")
    assert len(effects) == succeeded[0][0]
    client.close()


def test_sigkill_mid_run_is_retried_under_a_new_token(
    cluster: Cluster, pg_store_url: str, tmp_path: Path
) -> None:
    client = _client(pg_store_url)
    marks = tmp_path / "marks"
    marks.mkdir()
    cluster.scheduler("scheduler")
    victim = cluster.worker("victim")
    client.add_job(
        "slow",
        every="1h",
        task="sleepy",
        payload={"dir": str(marks), "seconds": 4},
        base_delay=0.1,
        max_delay=0.2,
    )
    run = client.trigger("slow")
    wait_for(lambda: (marks / f"{run.id}.1.started").exists(), 30, "attempt 1 to start")
    victim.signal(signal.SIGKILL)
    survivor = cluster.worker("survivor")
    wait_for(lambda: client.get_run(run.id).state is RunState.SUCCEEDED, 40, "the retry")
    lost, ok = client.attempts(run.id)
    assert lost.outcome is AttemptOutcome.LOST and "stopped heartbeating" in (lost.error or "")
    assert ok.outcome is AttemptOutcome.SUCCEEDED and ok.token > lost.token
    assert ok.worker_id != lost.worker_id
    assert not (marks / f"{run.id}.1.finished").exists()
    assert (marks / f"{run.id}.2.finished").read_text() == str(ok.token)
    survivor.stop()
    client.close()


def test_sigstop_past_the_lease_and_the_late_result_is_refused(
    cluster: Cluster, pg_store_url: str, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    client = _client(pg_store_url)
    marks = tmp_path / "marks"
    marks.mkdir()
    cluster.scheduler("scheduler")
    frozen = cluster.worker("frozen")
    client.add_job(
        "late",
        every="1h",
        task="slow_record",
        payload={"dir": str(marks), "seconds": 2},
        base_delay=0.1,
        max_delay=0.2,
    )
    run = client.trigger("late")
    wait_for(lambda: (marks / f"{run.id}.1.started").exists(), 30, "attempt 1 to start")
    frozen.signal(signal.SIGSTOP)  # a GC pause, a VM freeze, a network partition...
    wait_for(
        lambda: (
            client.get_run(run.id).attempt >= 1
            and [a.outcome for a in client.attempts(run.id)] == [AttemptOutcome.LOST]
        ),
        30,
        "the reaper to take the lease",
    )
    cluster.worker("rescuer")
    wait_for(lambda: client.get_run(run.id).state is RunState.SUCCEEDED, 30, "the retry")
    frozen.signal(signal.SIGCONT)
    # The frozen worker wakes, finishes its sleep, writes... and its commit is refused.
    wait_for(lambda: (marks / f"{run.id}.1.finished").exists(), 30, "the late attempt to end")
    wait_for(lambda: "result refused" in frozen.log(), 15, "the refusal to be logged")
    final = client.get_run(run.id)
    lost, ok = client.attempts(run.id)
    assert final.state is RunState.SUCCEEDED and final.token == ok.token
    assert lost.outcome is AttemptOutcome.LOST and ok.outcome is AttemptOutcome.SUCCEEDED
    assert ok.token > lost.token
    effects = _sql(pg_url, pg_schema, "SELECT token FROM effects WHERE run_id = %s", run.id)
    assert effects == [(ok.token,)], "the stale attempt's write must have been rolled back"
    client.close()
