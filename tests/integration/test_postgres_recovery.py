"""The PostgreSQL store across server outages: its own server, stopped and restarted.

What must hold: a call during an outage fails fast (no long wait on a pool); the first call
after the server is back succeeds (idle connections killed by the restart are never handed
out); the database clock is never set ahead by a sample taken across a wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from oncely.adapters.postgres import PostgresStore
from oncely.runtime.clock import DatabaseClock
from tests.contract.conftest import T0
from tests.support.pg_instance import PgInstance, own_pg  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(own_pg: PgInstance) -> Iterator[PostgresStore]:  # noqa: F811
    s = PostgresStore(own_pg.url, schema="oncely_recovery", max_size=6)
    s.migrate()
    try:
        yield s
    finally:
        s.close()


def _warm(store: PostgresStore, n: int) -> None:
    """Put ``n`` idle connections in the pool."""
    barrier = threading.Barrier(n)

    def use() -> None:
        with store._pool.connection() as conn:
            barrier.wait(5)
            conn.execute("SELECT 1")

    threads = [threading.Thread(target=use) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store._pool.size == n


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_the_first_call_after_a_restart_succeeds(
    store: PostgresStore,
    own_pg: PgInstance,  # noqa: F811
    mode: str,
) -> None:
    _warm(store, 4)
    own_pg.stop(mode)
    own_pg.start()
    # Every pooled connection died with the server; none is handed out.
    for _ in range(6):
        assert store.lease_acquire(["shard:1"], "s", now=T0, ttl=timedelta(seconds=5))
    assert store._pool.dropped >= 1


def test_a_call_during_an_outage_fails_fast_and_the_next_after_it_works(
    store: PostgresStore,
    own_pg: PgInstance,  # noqa: F811
) -> None:
    _warm(store, 3)
    own_pg.stop("fast")
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        store.runs_next_due(["default"])
    assert time.monotonic() - started < 1.0
    ready = own_pg.start()
    store.runs_next_due(["default"])
    assert time.monotonic() - ready < 1.0


def test_a_clock_sample_leaves_out_the_wait_for_a_connection(
    store: PostgresStore,
) -> None:
    """Every connection is taken for 1.5 s: a sample waits that long for one, yet its round
    trip is the query's alone and the clock it sets agrees with the server's."""
    _warm(store, 6)
    release = threading.Event()
    held = threading.Barrier(7)

    def hold() -> None:
        with store._pool.connection():
            held.wait(5)
            release.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(6)]
    for t in holders:
        t.start()
    held.wait(5)
    threading.Timer(1.5, release.set).start()
    clock = DatabaseClock(store.db_time_sample, resync=3600)
    started = time.monotonic()
    first = clock.now()  # waits for a connection
    assert time.monotonic() - started >= 1.4
    for t in holders:
        t.join()
    server = store.db_now()
    assert abs((clock.now() - server).total_seconds()) < 0.1
    # Not ahead by half the wait (0.75 s), nor at all.
    assert first <= server


def test_the_clock_is_not_set_ahead_by_a_resync_across_an_outage(
    store: PostgresStore,
    own_pg: PgInstance,  # noqa: F811
) -> None:
    clock = DatabaseClock(store.db_time_sample, resync=0.05, retry=0.05)
    clock.now()
    own_pg.stop("fast")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        clock.now()  # resyncs in the background keep failing
        time.sleep(0.05)
    own_pg.start()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        clock.now()
        time.sleep(0.05)
    for _ in range(5):
        # The server's reading falls between the clock's readings around it (within 0.1 s):
        # a loaded machine may pause between the calls, which says nothing of the clock.
        before = clock.now()
        server = store.db_now()
        after = clock.now()
        assert (before - server).total_seconds() < 0.1, (before, server)
        assert (server - after).total_seconds() < 0.1, (server, after)


def test_setup_warnings_name_a_server_or_a_runs_table_without_autovacuum(
    store: PostgresStore, own_pg: PgInstance  # noqa: F811
) -> None:
    """A queue table does not survive the peak without vacuum (W6: with autovacuum off the
    claim index filled with dead entries and the workers fell minutes behind): a scheduler
    says so when it starts. initdb's defaults have it on."""
    assert store.setup_warnings() == []
    with psycopg.connect(own_pg.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET autovacuum = off")
        conn.execute("SELECT pg_reload_conf()")
    try:
        deadline = time.monotonic() + 10
        while not store.setup_warnings() and time.monotonic() < deadline:
            time.sleep(0.1)  # the reload reaches each backend at its next command
        [warning] = store.setup_warnings()
        assert "autovacuum is off" in warning and "docs/postgresql.md" in warning
    finally:
        with psycopg.connect(own_pg.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET autovacuum")
            conn.execute("SELECT pg_reload_conf()")
    with psycopg.connect(own_pg.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE oncely_recovery.runs SET (autovacuum_enabled = false)")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = store.setup_warnings()
        if found and "runs table" in found[0]:
            break
        time.sleep(0.1)
    [warning] = store.setup_warnings()
    assert warning.startswith("autovacuum is disabled for the runs table")
