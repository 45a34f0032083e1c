"""PostgreSQL-only behaviour of the store: concurrency, LISTEN/NOTIFY, plans, round trips.

The conformance suite (``tests/contract``) covers what both stores promise; this covers what
only the PostgreSQL store does: many processes at once, waking workers, and staying fast.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from oncely.adapters.postgres import PostgresStore, notify_channel
from oncely.adapters.postgres.store import Q, _fetch
from oncely.domain.errors import InvalidInput, NotFound
from oncely.domain.ids import new_id
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome, RunState, decide_after_attempt
from oncely.ports.store import AttemptResult, ClaimedRun, ClaimParams, RunQuery
from tests.contract.conftest import T0, later, make_job

pytestmark = pytest.mark.postgres

TTL = timedelta(seconds=30)


@pytest.fixture
def store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    s = PostgresStore(pg_url, schema=pg_schema, max_size=8)
    s.migrate()
    try:
        yield s
    finally:
        s.close()


def _sql(store: PostgresStore, pg_url: str) -> psycopg.Connection[Any]:
    """A plain connection to the store's schema, for setting up data in bulk."""
    return psycopg.connect(pg_url, autocommit=True, options=f"-c search_path={store.schema}")


def _bulk_runs(
    store: PostgresStore,
    pg_url: str,
    job_id: str,
    count: int,
    *,
    state: str = "queued",
    queue: str = "default",
    overlap: str = "allow",
    due: datetime = T0,
) -> None:
    with _sql(store, pg_url) as conn:
        conn.execute(
            "INSERT INTO runs (id, job_id, owner, scheduled_for, due_at, state, queue, overlap,"
            " created_at)"
            " SELECT gen_random_uuid(), %(job)s, 'alice', %(t)s + g * interval '1 millisecond',"
            " %(t)s + g * interval '1 microsecond', %(state)s, %(queue)s, %(overlap)s, %(t)s"
            " FROM generate_series(1, %(n)s) AS g",
            {
                "job": job_id,
                "t": due,
                "state": state,
                "queue": queue,
                "overlap": overlap,
                "n": count,
            },
        )


def _claim(
    store: PostgresStore, limit: int, worker: str = "w1", now: datetime | None = None
) -> list[ClaimedRun]:
    return store.run_claim(ClaimParams(worker, "default", limit, now or later(1), TTL))


def _success(c: ClaimedRun, now: datetime) -> AttemptResult:
    return AttemptResult(
        run_id=c.run_id,
        token=c.token,
        attempt=c.attempt,
        worker_id="w1",
        outcome=AttemptOutcome.SUCCEEDED,
        decision=decide_after_attempt(AttemptOutcome.SUCCEEDED, c.failures, c.policy, now),
        started_at=c.started_at,
        finished_at=now,
    )


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_claimers_never_get_the_same_run(store: PostgresStore, pg_url: str) -> None:
    job = store.job_create(make_job(), now=T0)
    _bulk_runs(store, pg_url, job.id, 3000)
    got: list[list[ClaimedRun]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def worker(n: int) -> None:
        start.wait()
        while batch := _claim(store, 37, worker=f"w{n}"):
            got[n].extend(batch)
            # Tokens grow in claim order within a batch.
            assert [c.token for c in batch] == sorted(c.token for c in batch)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [c for batch in got for c in batch]
    assert len(claimed) == 3000
    assert len({c.run_id for c in claimed}) == 3000
    assert len({c.token for c in claimed}) == 3000
    assert all(got), "every thread claimed something: the claims really ran concurrently"
    assert store.run_counts(None) == {"running": 3000}


def test_concurrent_claimers_of_a_forbid_job_start_one_run(
    store: PostgresStore, pg_url: str
) -> None:
    job = store.job_create(make_job(policy=Policy(overlap="forbid")), now=T0)
    _bulk_runs(store, pg_url, job.id, 40, overlap="forbid")
    start = threading.Barrier(4)
    got: list[ClaimedRun] = []

    def worker(n: int) -> None:
        start.wait()
        got.extend(_claim(store, 10, worker=f"w{n}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 1
    # Claimers that found the job's row taken left their candidates waiting; the next claim
    # sees the live run and skips them.
    assert store.run_counts(None)["running"] == 1
    for _ in range(4):
        assert _claim(store, 10) == []
    assert store.run_counts(None) == {"running": 1}  # live states only
    assert len(store.run_list(None, states=[RunState.SKIPPED], limit=100)) == 39


def test_a_claim_does_not_wait_for_a_job_row_held_by_a_writer(
    store: PostgresStore, pg_url: str
) -> None:
    """A writer that holds a job's row and then updates its runs (replace, pause, delete)
    must not deadlock with a claimer that holds those runs and wants the job's row."""
    job = store.job_create(make_job(policy=Policy(overlap="forbid")), now=T0)
    _bulk_runs(store, pg_url, job.id, 3, overlap="forbid")
    with _sql(store, pg_url) as writer, writer.transaction():
        writer.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", [job.id])
        result: list[list[ClaimedRun]] = []
        claimer = threading.Thread(target=lambda: result.append(_claim(store, 10)))
        claimer.start()
        claimer.join(5)
        assert not claimer.is_alive() and result == [[]]  # deferred, not blocked
        # The writer can now touch the runs: the claimer holds none of them any more.
        writer.execute("SET LOCAL lock_timeout = '2s'")
        writer.execute("UPDATE runs SET error = 'touched' WHERE job_id = %s", [job.id])
    assert len(_claim(store, 10)) == 1


def test_concurrent_migrations_are_safe(pg_url: str) -> None:
    schema = f"oncely_m_{uuid.uuid4().hex[:12]}"  # not created yet: migrate creates it
    stores = [PostgresStore(pg_url, schema=schema) for _ in range(3)]
    versions: list[int] = []
    start = threading.Barrier(len(stores))

    def migrate(s: PostgresStore) -> None:
        start.wait()
        versions.append(s.migrate())

    try:
        threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(versions) == 3 and len(set(versions)) == 1 and versions[0] >= 1
        assert all(s.schema_version() == versions[0] for s in stores)
        with psycopg.connect(pg_url) as conn:
            applied = conn.execute(
                f'SELECT version FROM "{schema}".schema_migrations ORDER BY version'
            ).fetchall()
        assert [v for (v,) in applied] == list(range(1, versions[0] + 1))
    finally:
        for s in stores:
            s.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_an_empty_schema_has_version_zero(pg_url: str, pg_schema: str) -> None:
    s = PostgresStore(pg_url, schema=pg_schema)
    try:
        assert s.schema_version() == 0
        assert s.migrate() >= 1
    finally:
        s.close()


def test_an_older_server_is_refused_with_the_version_it_needs(
    pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL 14 cannot be run here: the real server is refused by raising the bar above it.
    import oncely.adapters.postgres.store as pg_store

    monkeypatch.setattr(pg_store, "MIN_SERVER_VERSION", 10_000_000)
    s = PostgresStore(pg_url, schema=pg_schema)
    try:
        with pytest.raises(InvalidInput, match="PostgreSQL 15 or newer"):
            s.migrate()
        assert s.schema_version() == 0  # nothing was created
    finally:
        s.close()


def test_the_fire_key_migration_keeps_runs_and_their_key_spaces(
    pg_url: str, pg_schema: str
) -> None:
    """Migration 0013 rebuilds the unique fire key over a store that already holds a scheduled
    run and a manual run at the same instant: both stay, and the fire's key still holds."""
    from oncely.adapters.sqlfile import load_migrations

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{pg_schema}"')
        conn.execute(Q["migrations_table"], prepare=False)
        for number, name, script in load_migrations("oncely.adapters.postgres"):
            if number > 12:
                break
            conn.execute(script, prepare=False)
            conn.execute(Q["migration_record"], {"version": number, "name": name})
    s = PostgresStore(pg_url, schema=pg_schema)
    try:
        job = s.job_create(make_job(), now=T0)
        fire_at = job.next_fire_at
        assert fire_at is not None
        with _sql(s, pg_url) as conn:
            for manual in (False, True):
                conn.execute(
                    "INSERT INTO runs (id, job_id, owner, scheduled_for, due_at, created_at,"
                    " state, queue, manual) VALUES (%s, %s, 'alice', %s, %s, %s, 'pending',"
                    " 'default', %s)",
                    (new_id(int(manual)), job.id, fire_at, fire_at, T0, manual),
                )
        assert s.migrate() >= 13
        assert sorted(r.manual for r in s.run_search(None, RunQuery(job_id=job.id))) == [
            False,
            True,
        ]
        with _sql(s, pg_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO runs (id, job_id, owner, scheduled_for, due_at, created_at, state,"
                " queue) VALUES (%s, %s, 'alice', %s, %s, %s, 'pending', 'default')",
                (new_id(7), job.id, fire_at, fire_at, T0),
            )
    finally:
        s.close()


# -- LISTEN / NOTIFY --------------------------------------------------------------------------


class Listener:
    """Runs ``store.listen`` in a thread and counts wake-ups."""

    def __init__(self, store: PostgresStore) -> None:
        self.woken = threading.Event()
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=store.listen, args=(self._on_due, self.stop))
        self.thread.start()

    def _on_due(self) -> None:
        self.count += 1
        self.woken.set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


_instants = itertools.count(10_000)  # trigger instants no other trigger in a test uses


def _trigger_until_woken(store: PostgresStore, job_id: str, listener: Listener) -> None:
    """Trigger runs until the listener wakes (it may not be listening yet at first)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        store.job_trigger(None, job_id, run_id=new_id(0), now=later(next(_instants)))
        if listener.woken.wait(0.2):
            # Let notifications of earlier triggers land, so that a test's next wake-up is
            # caused by what it does next.
            time.sleep(0.3)
            listener.woken.clear()
            return
    pytest.fail("the listener was never woken")


def test_listen_wakes_on_trigger_and_is_isolated_per_schema(
    store: PostgresStore, pg_url: str
) -> None:
    other_schema = f"oncely_t_{uuid.uuid4().hex[:12]}"
    other = PostgresStore(pg_url, schema=other_schema)
    listener = Listener(store)
    try:
        other.migrate()
        job = store.job_create(make_job(), now=T0)
        other_job = other.job_create(make_job(), now=T0)
        _trigger_until_woken(store, job.id, listener)

        # Listening now. Activity in another schema of the same database stays silent.
        listener.woken.clear()
        for i in range(5):
            other.job_trigger(None, other_job.id, run_id=new_id(0), now=later(100 + i))
        assert not listener.woken.wait(1.0)

        store.job_trigger(None, job.id, run_id=new_id(0), now=later(200))
        assert listener.woken.wait(5)
    finally:
        listener.close()
        other.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{other_schema}" CASCADE')


def test_listen_reconnects_after_losing_its_connection(store: PostgresStore, pg_url: str) -> None:
    job = store.job_create(make_job(), now=T0)
    listener = Listener(store)
    try:
        _trigger_until_woken(store, job.id, listener)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query = %s AND pid <> pg_backend_pid()",
                [f'LISTEN "{store.channel}"'],
            ).fetchall()
        assert killed == [(True,)]
        # The listener comes back (and wakes once, for what it may have missed)...
        listener.woken.clear()
        assert listener.woken.wait(10)
        # ...and is listening again.
        listener.woken.clear()
        _trigger_until_woken(store, job.id, listener)
    finally:
        listener.close()


def test_release_and_requeue_and_fires_notify(store: PostgresStore) -> None:
    job = store.job_create(make_job(policy=Policy(max_retries=0)), now=T0)
    listener = Listener(store)
    try:
        _trigger_until_woken(store, job.id, listener)
        store.job_trigger(None, job.id, run_id=new_id(0), now=T0)
        claimed = _claim(store, 100, now=later(10**6))
        assert len(claimed) >= 2
        listener.woken.clear()
        # A run given back by a worker that shuts down is claimable again at once.
        first = claimed[0]
        released = AttemptResult(
            **{
                **_success(first, later(101)).__dict__,
                "outcome": AttemptOutcome.RELEASED,
                "decision": decide_after_attempt(
                    AttemptOutcome.RELEASED, 0, first.policy, later(101)
                ),
            }
        )
        assert store.run_complete([released]) == [True]
        assert listener.woken.wait(5)

        listener.woken.clear()
        second = claimed[1]
        failed = AttemptResult(
            **{
                **_success(second, later(102)).__dict__,
                "outcome": AttemptOutcome.FAILED,
                "decision": decide_after_attempt(
                    AttemptOutcome.FAILED, 0, second.policy, later(102)
                ),
            }
        )
        assert store.run_complete([failed]) == [True]
        assert store.run_requeue(None, second.run_id, now=later(103)) is not None
        assert listener.woken.wait(5)

        from oncely.domain.firing import plan_fires

        listener.woken.clear()
        [lease] = store.lease_acquire([f"shard:{job.shard}"], "s", now=T0, ttl=TTL)
        fresh = store.job_get(None, job.id)
        assert fresh is not None
        plan = plan_fires(fresh, T0, later(120))
        assert plan is not None
        assert store.fires_commit([lease], [(job.shard, plan)], now=T0).runs_created == 2
        assert listener.woken.wait(5)
    finally:
        listener.close()


def test_notify_channel_names_fit_and_differ() -> None:
    assert notify_channel("oncely") == "oncely_due_oncely"
    long_a, long_b = "a" * 63, "a" * 62 + "b"
    assert len(notify_channel(long_a)) <= 63
    assert notify_channel(long_a) != notify_channel(long_b)


def test_schema_names_are_validated(pg_url: str) -> None:
    with pytest.raises(InvalidInput):
        PostgresStore(pg_url, schema='x"; DROP TABLE jobs; --')


# -- plans and round trips --------------------------------------------------------------------


def _plan(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> str:
    rows = conn.execute(f"EXPLAIN {Q[query]}", params).fetchall()  # type: ignore[arg-type]
    return "\n".join(r[0] for r in rows)


def test_hot_queries_use_their_partial_indexes(store: PostgresStore, pg_url: str) -> None:
    jobs = [store.job_create(make_job(), now=T0) for _ in range(4)]
    for n, job in enumerate(jobs):
        # Mostly history, a little waiting work spread over queues: what a live store holds.
        _bulk_runs(store, pg_url, job.id, 4500, state="succeeded", due=later(-10_000 + n))
        _bulk_runs(store, pg_url, job.id, 300, queue=f"q{n}", due=later(n))
        _bulk_runs(store, pg_url, job.id, 200, state="running", due=later(1000 + n))
    with _sql(store, pg_url) as conn:
        conn.execute("ANALYZE runs")
        conn.execute("ANALYZE jobs")
        claim = _plan(
            conn,
            "claim_candidates",
            {"queue": "q1", "now": later(100), "horizon": later(100.5), "limit": 500},
        )
        assert "runs_claim" in claim, claim
        next_due = _plan(conn, "runs_next_due", {"queues": ["q1", "q2"]})
        assert "runs_claim" in next_due and "Seq Scan" not in next_due, next_due
        # The foreign key's check when a job row is purged (its runs are gone by then) probes
        # the unique fire key, which holds manual runs too: never a pass over the history.
        of_job = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT 1 FROM ONLY runs x WHERE job_id = %s FOR KEY SHARE OF x",
                (new_id(99),),
            )
        )
        assert "runs_fire" in of_job and "Seq Scan" not in of_job, of_job
        expired = _plan(conn, "runs_expired", {"now": later(5), "limit": 100})
        # Along a partial index of running runs (runs_running, or runs_live, which holds
        # the running and retrying ones): never a pass over the history.
        assert "runs_running" in expired or "runs_live" in expired, expired
        assert "Seq Scan on runs" not in expired, expired


def test_a_succeeded_attempt_is_kept_in_its_run_row_only(
    store: PostgresStore, pg_url: str
) -> None:
    """One row less per successful fire: the succeeded attempt is not copied into attempts,
    and attempt_list still shows it, after the failed attempts that did get a row."""
    job = store.job_create(make_job(policy=Policy(max_retries=2, base_delay=1)), now=T0)
    _bulk_runs(store, pg_url, job.id, 2)
    first, second = _claim(store, 2)
    done = _success(first, later(2))
    failed = AttemptResult(
        **{
            **_success(second, later(2)).__dict__,
            "outcome": AttemptOutcome.FAILED,
            "error": "boom",
            "decision": decide_after_attempt(AttemptOutcome.FAILED, 0, second.policy, later(2)),
        }
    )
    assert store.run_complete([done, failed]) == [True, True]
    [retried] = _claim(store, 1, now=later(10))
    assert retried.run_id == second.run_id and retried.attempt == 2
    ok = AttemptResult(**{**_success(retried, later(11)).__dict__, "output": "fine"})
    assert store.run_complete([ok]) == [True]
    with _sql(store, pg_url) as conn:
        rows = conn.execute("SELECT run_id::text, number, outcome FROM attempts").fetchall()
    assert rows == [(second.run_id, 1, "failed")]

    [only] = store.attempt_list(None, first.run_id)
    assert (only.number, only.token, only.worker_id) == (1, first.token, "w1")
    assert only.outcome is AttemptOutcome.SUCCEEDED
    assert (only.started_at, only.finished_at) == (first.started_at, later(2))
    both = store.attempt_list(None, second.run_id)
    assert [(a.number, a.outcome, a.error) for a in both] == [
        (1, AttemptOutcome.FAILED, "boom"),
        (2, AttemptOutcome.SUCCEEDED, None),
    ]
    assert both[1].output == "fine" and both[1].token == retried.token
    assert store.attempt_list("someone-else", second.run_id) == []


def test_batch_statements_are_planned_for_their_own_arrays(
    store: PostgresStore, pg_url: str
) -> None:
    """The batch statements over arrays of run ids are never server-side prepared: a prepared
    statement soon runs a generic plan, which cannot see how long an array is. At 10,000
    fires/s that plan took a 500-run batch of runs_finish for one row and rescanned the whole
    array for each run it updated (100-250 ms a batch instead of ~5). Other statements are
    prepared as usual (the control below)."""
    job = store.job_create(make_job(), now=T0)
    _bulk_runs(store, pg_url, job.id, 20)
    claimed = _claim(store, 20)
    beat = {
        "ids": [uuid.UUID(c.run_id) for c in claimed],
        "tokens": [c.token for c in claimed],
        "worker_id": "w1",
        "lease_expires_at": later(60),
    }
    candidates = {"queue": "default", "now": later(1), "horizon": later(1), "limit": 10}
    with _sql(store, pg_url) as conn:
        for _ in range(12):
            assert len(_fetch(conn, "runs_heartbeat", beat)) == 20
            _fetch(conn, "claim_candidates", candidates)
        prepared = [
            r[0] for r in conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()
        ]
    assert any("FOR UPDATE SKIP LOCKED" in text for text in prepared), prepared
    assert not any("lease_expires_at" in text for text in prepared), prepared


def test_a_heartbeat_is_a_hot_update(store: PostgresStore, pg_url: str) -> None:
    """A renewal writes no index entry when its page has room: no index of runs is keyed on
    the lease's expiry. (A heartbeat renews every running run every few seconds; a non-HOT
    renewal was a new entry in each of the table's indexes per run and per beat.)"""
    job = store.job_create(make_job(), now=T0)
    _bulk_runs(store, pg_url, job.id, 200)
    claimed = _claim(store, 200)[::10]  # a few runs per page: HOT needs room on the page
    with _sql(store, pg_url) as conn:
        conn.execute("VACUUM runs")  # what pruning on access does in a live table
    with _sql(store, pg_url) as conn, conn.transaction():
        conn.execute(
            Q["runs_heartbeat"],
            {
                "ids": [uuid.UUID(c.run_id) for c in claimed],
                "tokens": [c.token for c in claimed],
                "worker_id": "w1",
                "lease_expires_at": later(60),
            },
        )
        row = conn.execute(
            "SELECT pg_stat_get_xact_tuples_updated('runs'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('runs'::regclass)"
        ).fetchone()
    assert row == (20, 20), f"(renewed, of which HOT): {row}"


def test_a_large_batch_takes_a_bounded_number_of_statements(
    store: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = store.job_create(make_job(), now=T0)
    _bulk_runs(store, pg_url, job.id, 1000)
    statements: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query)[:40])
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)

    claimed = _claim(store, 1000)
    assert len(claimed) == 1000
    assert len(statements) == 2, statements  # candidates, start (plus BEGIN/COMMIT)
    tokens = [c.token for c in claimed]
    assert tokens == sorted(tokens) and len(set(tokens)) == 1000

    statements.clear()
    held = [(c.run_id, c.token) for c in claimed]
    assert len(store.run_heartbeat("w1", held, now=later(2), ttl=TTL)) == 1000
    assert len(statements) == 1

    statements.clear()
    assert store.run_complete([_success(c, later(3)) for c in claimed]) == [True] * 1000
    assert len(statements) == 1
    monkeypatch.undo()
    assert store.run_counts(None) == {}  # live states only: none left
    assert len(store.run_list(None, states=[RunState.SUCCEEDED], limit=2000)) == 1000
    assert len(store.attempt_list(None, claimed[0].run_id)) == 1


# -- input that is not a UUID -----------------------------------------------------------------


def test_ids_that_are_not_uuids_are_simply_not_found(store: PostgresStore) -> None:
    job = store.job_create(make_job(), now=T0)
    run = store.job_trigger(None, job.id, run_id=new_id(0), now=T0)
    [c] = _claim(store, 10)
    for bad in ["not-a-uuid", "", "1' OR '1'='1", "123"]:
        assert store.job_get(None, bad) is None
        assert store.job_get("alice", bad) is None
        assert store.job_set_paused(None, bad, paused=True, next_fire_at=None, now=T0) is None
        assert store.job_delete(None, bad, now=T0) is False
        with pytest.raises(NotFound):
            store.job_trigger(None, bad, run_id=new_id(0), now=T0)
        assert store.run_get(None, bad) is None
        assert store.attempt_list(None, bad) == []
        assert store.run_cancel(None, bad, now=T0) is None
        assert store.run_requeue(None, bad, now=T0) is None
        assert store.run_list(None, job_id=bad) == []
        assert store.run_list(None, before=(T0, bad)) == []
        assert store.run_heartbeat("w1", [(bad, 1), (c.run_id, c.token)], now=T0, ttl=TTL) == {
            c.run_id
        }
        forged = AttemptResult(**{**_success(c, later(2)).__dict__, "run_id": bad})
        assert store.run_complete([forged]) == [False]
    assert store.run_complete([forged, _success(c, later(2))]) == [False, True]
    assert store.run_get(None, run.id) is not None


# -- odds and ends ----------------------------------------------------------------------------


def test_a_bare_json_string_payload_round_trips(store: PostgresStore) -> None:
    job = store.job_create(make_job(payload="hello"), now=T0)
    assert store.job_get(None, job.id) == job
    store.job_trigger(None, job.id, run_id=new_id(0), now=T0)
    [c] = _claim(store, 1)
    assert c.payload == "hello"


def test_db_now_is_the_servers_clock_in_utc(store: PostgresStore) -> None:
    now = store.db_now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs((now - datetime.now(UTC)).total_seconds()) < 60


def test_tokens_of_leases_and_claims_share_one_sequence(store: PostgresStore) -> None:
    [lease] = store.lease_acquire(["shard:1"], "s", now=T0, ttl=TTL)
    job = store.job_create(make_job(), now=T0)
    store.job_trigger(None, job.id, run_id=new_id(0), now=T0)
    [c] = _claim(store, 1)
    [other] = store.lease_acquire(["shard:2"], "s", now=T0, ttl=TTL)
    assert lease.token < c.token < other.token
    assert store.run_get(None, c.run_id).state is RunState.RUNNING  # type: ignore[union-attr]


def test_a_transactional_task_cannot_break_the_pooled_connection(
    pg_url: str, pg_schema: str
) -> None:
    store = PostgresStore(pg_url, schema=pg_schema, min_size=1, max_size=1)  # one connection
    try:
        store.migrate()
        job = store.job_create(make_job(), now=T0)
        store.job_trigger(None, job.id, run_id=new_id(0), now=T0)
        [c] = _claim(store, 1)

        def effect(conn: psycopg.Connection[Any]) -> str:
            conn.execute("SET search_path = pg_catalog")
            conn.execute("SET TimeZone = 'America/New_York'")
            return "done"

        assert store.run_complete_with(lambda _: _success(c, later(2)), effect) == (True, "done")
        # The same (only) connection still finds the store's tables and speaks UTC.
        run = store.run_get(None, c.run_id)
        assert run is not None and run.state is RunState.SUCCEEDED
        assert run.finished_at is not None and run.finished_at.utcoffset() == timedelta(0)
    finally:
        store.close()


def test_batches_probe_runs_by_id_whatever_the_statistics_say(
    store: PostgresStore, pg_url: str
) -> None:
    """Found at 6,000 fires/s (W6): once ANALYZE had seen a table of finished runs, the planner
    estimated one running run among a batch's ids, nested-looped every run against the whole
    id array (Rows Removed by Join Filter: 249,500 for 500 runs) and each outcome batch took
    ~300 ms instead of ~20 until the next ANALYZE: workers fell minutes behind. The outcome
    and heartbeat batches must probe the primary key once per id, under any statistics."""
    job = store.job_create(make_job(), now=T0)
    # History whose runs went through running: the partial index of running runs keeps their
    # entries until a vacuum (as between autovacuum passes at the peak), so the planner
    # prefers probing the primary key with the batch's ids.
    _bulk_runs(store, pg_url, job.id, 300_000, state="running", due=later(-100_000))
    with _sql(store, pg_url) as conn:
        conn.execute("UPDATE runs SET state = 'succeeded' WHERE state = 'running'")
    _bulk_runs(store, pg_url, job.id, 4000)
    # Workers' slots full of running runs; the batch is the outcomes of one claim among them.
    claimed = _claim(store, 500)
    for _ in range(7):
        assert len(_claim(store, 500)) == 500
    with _sql(store, pg_url) as conn:
        conn.execute("ANALYZE runs")
    n = len(claimed)
    now = later(2)
    finish = {
        "ids": [c.run_id for c in claimed],
        "tokens": [c.token for c in claimed],
        "states": ["succeeded"] * n,
        "failures": [0] * n,
        "due_ats": [None] * n,
        "run_finished_ats": [now] * n,
        "expired_befores": [None] * n,
        "numbers": [c.attempt for c in claimed],
        "worker_ids": ["w1"] * n,
        "started_ats": [c.started_at for c in claimed],
        "finished_ats": [now] * n,
        "outcomes": ["succeeded"] * n,
        "errors": [None] * n,
        "outputs": [None] * n,
    }
    heartbeat = {
        "ids": finish["ids"],
        "tokens": finish["tokens"],
        "worker_id": "w1",
        "lease_expires_at": later(60),
    }
    for query, params in (("runs_finish", finish), ("runs_heartbeat", heartbeat)):
        with (
            _sql(store, pg_url) as conn,
            conn.transaction(force_rollback=True),
            conn.cursor(binary=True) as cur,
        ):
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + Q[query], params, prepare=False)
            [[plan]] = cur.fetchall()
        removed = sum(_plan_values(plan, "Rows Removed by Join Filter"))
        touched = sum(_plan_values(plan, "Actual Rows", of="runs"))
        assert removed < n, (query, removed)
        assert touched <= 2 * n, (query, touched)


def _plan_values(node: Any, key: str, *, of: str | None = None) -> list[int]:
    """Every ``key`` in an EXPLAIN (FORMAT JSON) tree (only of nodes on relation ``of``), times
    its node's loops."""
    found: list[int] = []
    if isinstance(node, list):
        for item in node:
            found += _plan_values(item, key, of=of)
    elif isinstance(node, dict):
        if key in node and (of is None or node.get("Relation Name") == of):
            # Per-loop figures (rows) count once per loop: an inner side runs once per row.
            found.append(int(node[key]) * int(node.get("Actual Loops", 1)))
        for value in node.values():
            if isinstance(value, (list, dict)):
                found += _plan_values(value, key, of=of)
    return found


def test_the_job_advance_probes_jobs_by_id_whatever_the_statistics_say(
    store: PostgresStore, pg_url: str
) -> None:
    """The scheduler's job advance (jobs_advance), like the run batches: statistics from when
    few jobs could fire (here: all paused at ANALYZE) must not make the planner scan the due
    jobs first and compare each with the whole batch."""
    with _sql(store, pg_url) as conn:
        conn.execute(
            "INSERT INTO jobs (id, next_fire_at, created_at, updated_at, shard, paused, owner,"
            " name, schedule, action, policy)"
            " SELECT gen_random_uuid(), %(t)s, %(t)s, %(t)s, g %% 64, true, 'alice', 'j' || g,"
            " '{}', '{}', '{}' FROM generate_series(1, 100000) AS g",
            {"t": T0},
        )
        conn.execute("ANALYZE jobs")
        conn.execute("UPDATE jobs SET paused = false")
        rows = conn.execute("SELECT id, version FROM jobs LIMIT 200").fetchall()
    n = len(rows)
    params = {
        "ids": [r[0] for r in rows],
        "versions": [r[1] for r in rows],
        "old_next_fire_ats": [T0] * n,
        "next_fire_ats": [later(1)] * n,
    }
    with (
        _sql(store, pg_url) as conn,
        conn.transaction(force_rollback=True),
        conn.cursor(binary=True) as cur,
    ):
        cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + Q["jobs_advance"], params, prepare=False)
        [[plan]] = cur.fetchall()
    # Each job of the batch read once and advanced: 2n rows on jobs (before: all 100,000 due).
    assert sum(_plan_values(plan, "Actual Rows", of="jobs")) == 2 * n
    assert sum(_plan_values(plan, "Rows Removed by Join Filter")) < n
