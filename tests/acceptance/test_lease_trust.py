"""A worker cut off from the database stops acting before its lease can be handed on.

A worker process reaches PostgreSQL through a proxy the test controls; the scheduler (and so
the reaper) reaches it directly. With five long attempts running, the test cuts the proxy:
the worker can no longer renew its leases. The reaper declares them lost once they expire
and a second worker takes the runs over. The ledger the tasks write (start, end, cancelled;
tests/acceptance/apps/resilience_app.py) must never show two attempts of one run alive at
the same time: the cut-off worker cancels each attempt when its lease can no longer be
trusted (last renewal sent + TTL - margin), before the reaper can hand the run on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import oncely
from oncely.config import Settings
from oncely.domain.runs import AttemptOutcome, RunState
from tests.acceptance.procs import Cluster, wait_for
from tests.support import ledger
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

APP = "tests.acceptance.apps.resilience_app:app"


@pytest.mark.parametrize("mode", ["blackhole", "reset"])
def test_a_cut_off_worker_stops_its_attempts_before_they_are_handed_on(
    pg_store_url: str, pg_schema: str, tmp_path: Path, mode: str
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    client = oncely.App(settings=Settings(store=pg_store_url))
    env = {"ONCELY_WORKER_LEASE_TTL": "3"}
    direct = Cluster(pg_store_url, tmp_path, env)
    with TcpProxy("127.0.0.1", 5432) as proxy:
        proxied = Cluster(
            f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres?schema={pg_schema}",
            tmp_path,
            env,
        )
        try:
            direct.scheduler("scheduler")
            cut_off = proxied.start("cut-off", "worker", "--app", APP, "--concurrency", "10")
            runs = []
            for i in range(5):
                client.add_job(
                    f"long-{i}",
                    every="1h",
                    task="steady_async",
                    payload={"dir": str(marks), "seconds": 10},
                    base_delay=0.1,
                    max_delay=0.2,
                )
                runs.append(client.trigger(f"long-{i}"))
            ids = {r.id for r in runs}
            wait_for(
                lambda: {e.run for e in ledger.starts(ledger.read(marks))} >= ids,
                30,
                "every attempt to start",
            )
            time.sleep(0.5)
            proxy.cut(mode)
            cut_at = time.time()
            direct.start("rescuer", "worker", "--app", APP, "--concurrency", "10")
            wait_for(
                lambda: all(client.get_run(i).state is RunState.SUCCEEDED for i in ids),
                40,
                "the rescuer to run every run again",
            )
            entries = ledger.read(marks)
            assert ledger.overlapping_attempts(entries, time.time()) == []
            for run_id in ids:
                mine = [e for e in entries if e.run == run_id]
                first = [e for e in mine if e.attempt == 1]
                assert [e.event for e in first] == ["start", "cancelled"], first
                # Stopped within the lease (3 s) of the cut, before anyone could take over.
                assert first[1].at - cut_at < 3.0
                attempts = client.attempts(run_id)
                assert attempts[0].outcome is AttemptOutcome.LOST
                assert attempts[-1].outcome is AttemptOutcome.SUCCEEDED
            proxy.restore()
            # Back in touch, the cut-off worker's own 'lost' records are refused (the reaper
            # recorded them first) and it carries on.
            wait_for(lambda: "result refused" in cut_off.log(), 20, "the late records refused")
            assert "lease could not be renewed in time" in cut_off.log()
        finally:
            proxied.stop_all()
            direct.stop_all()
            client.close()
