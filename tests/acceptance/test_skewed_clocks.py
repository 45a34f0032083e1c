"""One clock: processes whose own clocks are minutes off still fire on time, never early.

The scheduler runs with its clock 5 minutes fast and the worker with its clock 5 minutes
slow (libfaketime, preloaded into the real processes). Both must follow the database
server's clock: were the scheduler to use its own, it would materialize fires 5 minutes
early; were the worker to use its own, it would claim nothing for 5 minutes. Each start is
stamped with the server's ``clock_timestamp()`` in the run's own transaction.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

import oncely
from oncely.config import Settings
from oncely.domain.runs import AttemptOutcome, RunState
from tests.acceptance.procs import Cluster, wait_for

pytestmark = pytest.mark.postgres

APP = "tests.acceptance.apps.resilience_app:app"
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def _skewed(offset: str) -> dict[str, str]:
    # The monotonic clock is left alone: it is what advances the database's time locally.
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": offset, "DONT_FAKE_MONOTONIC": "1"}


@pytest.mark.skipif(not LIBFAKETIME.exists(), reason="libfaketime is not installed")
def test_nodes_with_clocks_minutes_off_fire_on_time_and_never_early(
    pg_store_url: str, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{pg_schema}".stamps (run_id uuid, scheduled_for timestamptz, '
            "at timestamptz)"
        )
    client = oncely.App(settings=Settings(store=pg_store_url))
    env = {"ONCELY_WORKER_LEASE_TTL": "3"}
    fast = Cluster(pg_store_url, tmp_path, {**env, **_skewed("+5m")})
    slow = Cluster(pg_store_url, tmp_path, {**env, **_skewed("-5m")})
    try:
        # The skew is real: such a process sees a clock 5 minutes off.
        seen = subprocess.run(
            [sys.executable, "-c", "import time; print(time.time())"],
            env={**os.environ, **_skewed("+5m")},
            capture_output=True,
            text=True,
            check=True,
        )
        assert 290 < float(seen.stdout) - time.time() < 310
        jobs = [client.add_job(f"tick-{i}", cron="* * * * * *", task="stamp_db") for i in range(3)]
        scheduler = fast.scheduler("scheduler-fast")
        worker = slow.start("worker-slow", "worker", "--app", APP, "--concurrency", "10")
        wait_for(
            lambda: "oncely running" in scheduler.log() and "oncely running" in worker.log(),
            30,
            "both processes to start",
        )
        # Fires due from here on are judged (not those due while the processes started).
        with psycopg.connect(pg_url, autocommit=True) as conn:
            judged_from = conn.execute("SELECT clock_timestamp() + interval '1 second'").fetchone()
        time.sleep(14)
        for job in jobs:
            client.pause(job.id)
        time.sleep(2)
    finally:
        fast.stop_all()
        slow.stop_all()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT EXTRACT(EPOCH FROM at - scheduled_for)::float8 FROM "{pg_schema}".stamps '
            "WHERE scheduled_for >= %s",
            judged_from,
        ).fetchall()
    lags = sorted(lag for (lag,) in rows)
    assert len(lags) >= 3 * 10, f"only {len(lags)} runs: the skewed nodes did not keep up"
    assert lags[0] >= 0, f"a run started {-lags[0]:.3f} s before it was due"
    assert lags[-1] < 1.0, f"worst lags {lags[-3:]}"
    for job in jobs:
        runs = [
            r for r in client.list_runs(job.id, limit=1000) if r.state is not RunState.CANCELLED
        ]
        fires = sorted(r.scheduled_for for r in runs)
        # None materialized minutes ahead, none skipped.
        assert fires[-1] - fires[0] < timedelta(seconds=30)
        assert fires == [fires[0] + timedelta(seconds=i) for i in range(len(fires))]
        for run in runs:
            assert all(a.outcome is not AttemptOutcome.LOST for a in client.attempts(run.id))
    client.close()
