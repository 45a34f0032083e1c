"""Fair share with real scheduler processes on PostgreSQL: 3 schedulers split the 64 shards
22/21/21; SIGKILL one and the two others split 32/32 within the lease TTL and a little; two
join and all converge to 16; SIGTERM one and its shards move at once, without a takeover.
Throughout, every fire of the per-second jobs runs exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta

import psycopg
import pytest

import oncely
from oncely.config import Settings
from oncely.domain.runs import RunState
from tests.acceptance.procs import ROOT, Cluster, Proc, wait_for

pytestmark = pytest.mark.postgres

LEASE_TTL = 3.0  # the Cluster's ONCELY_SCHEDULER_LEASE_TTL


def _sql(pg_url: str, schema: str, query: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return conn.execute(query, args).fetchall()  # type: ignore[arg-type]


class Shares:
    """Live shard leases per scheduler process, read from the store."""

    def __init__(self, pg_url: str, schema: str) -> None:
        self.pg_url, self.schema = pg_url, schema

    def by_pid(self) -> dict[int, int]:
        rows = _sql(
            self.pg_url,
            self.schema,
            "SELECT m.pid, count(*) FROM leases l JOIN members m ON m.id = l.holder "
            "WHERE starts_with(l.name, 'shard:') AND l.expires_at > clock_timestamp() "
            "GROUP BY m.pid",
        )
        return {int(pid): int(n) for pid, n in rows}  # type: ignore[call-overload]

    def wait(self, procs: list[Proc], expected: list[int], timeout: float, what: str) -> float:
        """Wait until exactly ``procs`` hold the shards, in the ``expected`` counts (in any
        order); return how long it took."""
        started = time.monotonic()
        pids = {p.pid for p in procs}
        wait_for(
            lambda: (
                set(counts := self.by_pid()) == pids and sorted(counts.values()) == sorted(expected)
            ),
            timeout,
            f"{what} (last seen: {self.by_pid()})",
        )
        return time.monotonic() - started


def test_schedulers_share_the_shards_fairly_and_every_fire_runs_once(
    cluster: Cluster, pg_store_url: str, pg_url: str, pg_schema: str
) -> None:
    client = oncely.App(settings=Settings(store=pg_store_url))
    jobs = [
        client.add_job(
            f"tick-{i}", cron="* * * * * *", task="record", retries=5, base_delay=0.2, max_delay=1
        )
        for i in range(12)
    ]
    shares = Shares(pg_url, pg_schema)
    cluster.worker("worker", concurrency=30)
    s1, s2, s3 = (cluster.scheduler(f"scheduler-{i}") for i in (1, 2, 3))
    shares.wait([s1, s2, s3], [21, 21, 22], 45, "3 schedulers to split 22/21/21")

    s2.signal(signal.SIGKILL)
    took = shares.wait([s1, s3], [32, 32], LEASE_TTL + 6, "the survivors to split 32/32")
    print(f"SIGKILL -> 32/32 in {took:.2f} s")
    assert "takeover of shard:" in s1.log() + s3.log()
    taken = _sql(
        pg_url,
        pg_schema,
        "SELECT count(*), count(DISTINCT old_holder) FROM lease_takeovers "
        "WHERE old_holder LIKE %s AND starts_with(name, 'shard:')",
        f"%:{s2.pid}:%",
    )
    assert taken == [(21, 1)], "each of the dead scheduler's shards is one recorded takeover"

    s4 = cluster.scheduler("scheduler-4")
    joined = shares.wait([s1, s3, s4], [21, 21, 22], 20, "a third to get its share")
    s5 = cluster.scheduler("scheduler-5")
    joined_4 = shares.wait([s1, s3, s4, s5], [16, 16, 16, 16], 20, "all four to hold 16")
    print(f"join -> 22/21/21 in {joined:.2f} s; join -> 16x4 in {joined_4:.2f} s")

    # `oncely cluster status` sees the same: live nodes, roles, shares, the takeovers.
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "oncely.cli.main",
            "--store",
            pg_store_url,
            "cluster",
            "status",
            "--json",
            "--takeovers",
            "50",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    status = json.loads(shown.stdout)
    live = {n["pid"]: n for n in status["nodes"] if n["live"]}
    assert {s1.pid, s3.pid, s4.pid, s5.pid} <= set(live)
    assert sorted(len(live[p.pid]["shards"]) for p in (s1, s3, s4, s5)) == [16, 16, 16, 16]
    assert all(live[p.pid]["quota"] == 16 for p in (s1, s3, s4, s5))
    assert any("worker" in n["roles"] for n in live.values())
    assert status["unheld_shards"] == []
    recorded = _sql(
        pg_url,
        pg_schema,
        "SELECT name, old_holder, new_holder FROM lease_takeovers ORDER BY at DESC, name LIMIT 50",
    )
    shown_takeovers = [(t["shard"], t["old_holder"], t["new_holder"]) for t in status["takeovers"]]
    assert sorted(shown_takeovers) == sorted(recorded)
    # Its 21 shards, each taken over once (other leases it held, such as the retention
    # service's, are taken over too when they expire, and recorded the same way).
    from_s2 = [t for t in shown_takeovers if f":{s2.pid}:" in t[1]]
    assert len([t for t in from_s2 if t[0].startswith("shard:")]) == 21

    s5.stop()  # SIGTERM: it releases its shards and leaves at once
    left = shares.wait([s1, s3, s4], [21, 21, 22], LEASE_TTL, "the others to take its share")
    print(f"SIGTERM -> 22/21/21 in {left:.2f} s")
    # Released, not expired: nothing of s5's is ever taken over. (Only s5's leases are
    # counted: a lease s2 held besides its shards, such as the notification service's,
    # may be taken over late, in this window, when its own loop next looks.)
    assert not _sql(
        pg_url,
        pg_schema,
        "SELECT name FROM lease_takeovers WHERE old_holder LIKE %s",
        f"%:{s5.pid}:%",
    )
    assert not _sql(pg_url, pg_schema, "SELECT 1 FROM members WHERE pid = %s", s5.pid), (
        "a stopped member deletes its row"
    )
    time.sleep(2)

    # Stop scheduling and let the worker drain what is due, then check every fire.
    for job in jobs:
        client.pause(job.id)
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
    for job in jobs:
        runs = client.list_runs(job.id, limit=10_000)
        fires = sorted(r.scheduled_for for r in runs if r.state is not RunState.CANCELLED)
        assert len(fires) == len(set(fires)), f"{job.name}: a fire made two runs"
        assert fires[0] <= job.next_fire_at + timedelta(seconds=1)  # type: ignore[operator]
        expected = [fires[0] + timedelta(seconds=i) for i in range(len(fires))]
        assert fires == expected, f"{job.name}: fires were lost"
        states = {r.state for r in runs if r.state is not RunState.CANCELLED}
        assert states == {RunState.SUCCEEDED}, f"{job.name}: {states}"
        # No fire was late past the grace: none had to be recorded as missed or coalesced.
        assert all(r.fires == 1 for r in runs)
    effects = _sql(
        pg_url, pg_schema, "SELECT job_id, scheduled_for, count(*) FROM effects GROUP BY 1, 2"
    )
    assert all(n == 1 for _, _, n in effects), "an effect was written twice"
    succeeded = _sql(pg_url, pg_schema, "SELECT count(*) FROM runs WHERE state = 'succeeded'")
    assert len(effects) == succeeded[0][0]
    client.close()
