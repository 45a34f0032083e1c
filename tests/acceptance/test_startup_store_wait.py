"""A process started while its database is down waits for it (``startup_store_wait``)
instead of exiting: a reboot, a compose file or a failover starts them in any order.

Found in the chaos runs: a scheduler started while PostgreSQL was down exited 1 at once
(the store is migrated at start). On a server of the test's own, stopped on purpose."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.acceptance.procs import Cluster, wait_for
from tests.support.pg_instance import PgInstance, own_pg  # noqa: F401

pytestmark = pytest.mark.postgres


def _members(url: str) -> int:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM oncely.members").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def test_a_scheduler_started_before_its_database_waits_and_then_runs(
    own_pg: PgInstance,  # noqa: F811
    tmp_path: Path,
) -> None:
    own_pg.stop("fast")
    cluster = Cluster(own_pg.url, tmp_path)
    proc = cluster.scheduler("early")
    try:
        time.sleep(4)
        assert proc.popen.poll() is None, cluster.logs()
        assert "PostgreSQL is unreachable" in proc.log() and "retrying in" in proc.log()
        own_pg.start()
        wait_for(lambda: _members(own_pg.url) == 1, 30, "the scheduler to join")
        assert proc.popen.poll() is None, cluster.logs()
    finally:
        cluster.stop_all()


def test_the_wait_is_bounded_and_a_wrong_database_fails_at_once(
    own_pg: PgInstance,  # noqa: F811
    tmp_path: Path,
) -> None:
    # A database that does not exist is not an outage: waiting would not fix it.
    wrong = own_pg.url.rsplit("/", 1)[0] + "/no_such_database"
    started = time.monotonic()
    cluster = Cluster(wrong, tmp_path / "wrong")
    (tmp_path / "wrong").mkdir()
    proc = cluster.scheduler("wrong")
    assert proc.popen.wait(30) != 0
    assert time.monotonic() - started < 20
    assert "no_such_database" in proc.log()
    cluster.stop_all()

    own_pg.stop("fast")
    (tmp_path / "down").mkdir()
    down = Cluster(own_pg.url, tmp_path / "down", {"ONCELY_STARTUP_STORE_WAIT": "2"})
    proc = down.scheduler("down")
    try:
        assert proc.popen.wait(30) != 0
        assert "waited 2 s: startup_store_wait" in proc.log(), down.logs()
    finally:
        down.stop_all()
