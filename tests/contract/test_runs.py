"""Contract: claiming, heartbeating, completing, reaping, cancelling and requeueing runs."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from oncely.domain.errors import Conflict
from oncely.domain.ids import new_id
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome, RunDecision, RunState, decide_after_attempt
from oncely.ports.store import AttemptResult, ClaimedRun, ClaimParams, Store
from tests.contract.conftest import T0, later, make_job

TTL = timedelta(seconds=30)


def _claim(store: Store, now=T0, queue="default", limit=10, worker="w1"):  # type: ignore[no-untyped-def]
    return store.run_claim(ClaimParams(worker, queue, limit, now, TTL))


def _trigger(store: Store, job, now=T0):  # type: ignore[no-untyped-def]
    return store.job_trigger(job.owner, job.id, run_id=new_id(0), now=now)


def _result(c: ClaimedRun, outcome: AttemptOutcome, now, decision=None, **kw):  # type: ignore[no-untyped-def]
    decision = decision or decide_after_attempt(outcome, c.failures, c.policy, now)
    return AttemptResult(
        run_id=c.run_id,
        token=c.token,
        attempt=c.attempt,
        worker_id="w1",
        outcome=outcome,
        decision=decision,
        started_at=c.started_at,
        finished_at=now,
        **kw,
    )


def test_claim_takes_due_runs_of_the_queue_in_priority_order(store: Store) -> None:
    low = store.job_create(make_job(policy=Policy(priority=0)), now=T0)
    high = store.job_create(make_job(policy=Policy(priority=5)), now=T0)
    other_q = store.job_create(make_job(policy=Policy(queue="other")), now=T0)
    r_low = _trigger(store, low, T0)
    r_high = _trigger(store, high, later(1))
    _trigger(store, other_q, T0)
    _trigger(store, low, later(100))  # not yet due at later(2)

    claimed = _claim(store, now=later(2))
    assert [c.run_id for c in claimed] == [r_high.id, r_low.id]
    assert all(c.attempt == 1 and c.lease_expires_at == later(32) for c in claimed)
    assert claimed[0].token < claimed[1].token
    assert claimed[0].job_name == high.name and claimed[0].policy.priority == 5
    run = store.run_get(None, r_high.id)
    assert run is not None and run.state is RunState.RUNNING and run.worker_id == "w1"
    assert _claim(store, now=later(2)) == []
    assert len(_claim(store, now=later(2), queue="other")) == 1


def test_claim_respects_the_limit_and_hands_each_run_out_once(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    ids = {_trigger(store, job, later(i / 1000)).id for i in range(40)}
    got: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        while True:
            batch = store.run_claim(ClaimParams(f"w{n}", "default", 3, later(1), TTL))
            if not batch:
                return
            with lock:
                got.extend(c.run_id for c in batch)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)  # every run once, none twice


def test_claimed_runs_carry_the_action_and_payload(store: Store) -> None:
    job = store.job_create(make_job(payload={"k": [1, 2]}), now=T0)
    _trigger(store, job)
    [c] = _claim(store)
    assert c.action == job.action and c.payload == {"k": [1, 2]} and c.policy == job.policy


def test_heartbeat_extends_only_leases_still_held(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    _trigger(store, job)
    _trigger(store, job, later(0.001))
    a, b = _claim(store, now=later(1))
    kept = store.run_heartbeat(
        "w1", [(a.run_id, a.token), (b.run_id, b.token + 999)], now=later(20), ttl=TTL
    )
    assert kept == {a.run_id}
    run = store.run_get(None, a.run_id)
    assert run is not None and run.lease_expires_at == later(50)
    assert store.run_heartbeat("w2", [(a.run_id, a.token)], now=later(20), ttl=TTL) == set()


def test_complete_success_records_the_attempt(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    run = _trigger(store, job)
    [c] = _claim(store)
    assert store.run_complete([_result(c, AttemptOutcome.SUCCEEDED, later(3), output="hi")]) == [
        True
    ]
    done = store.run_get("alice", run.id)
    assert done is not None and done.state is RunState.SUCCEEDED
    assert done.finished_at == later(3) and done.output == "hi" and done.lease_expires_at is None
    [attempt] = store.attempt_list("alice", run.id)
    assert (attempt.number, attempt.token, attempt.outcome) == (
        1,
        c.token,
        AttemptOutcome.SUCCEEDED,
    )
    assert attempt.started_at == T0 and attempt.finished_at == later(3)
    assert store.attempt_list("mallory", run.id) == []


def test_failure_retries_with_backoff_then_dies_and_requeue_revives(store: Store) -> None:
    job = store.job_create(
        make_job(policy=Policy(max_retries=1, base_delay=1, max_delay=1)), now=T0
    )
    run = _trigger(store, job)
    [c1] = _claim(store)
    assert store.run_complete([_result(c1, AttemptOutcome.FAILED, later(1), error="boom")]) == [
        True
    ]
    retrying = store.run_get(None, run.id)
    assert retrying is not None and retrying.state is RunState.RETRYING
    assert retrying.failures == 1 and later(1) <= retrying.due_at <= later(2)
    assert retrying.error == "boom" and retrying.finished_at is None
    assert _claim(store, now=later(0.5)) == []

    [c2] = _claim(store, now=later(3))
    assert c2.attempt == 2 and c2.token > c1.token and c2.failures == 1
    assert store.run_complete([_result(c2, AttemptOutcome.TIMED_OUT, later(4))]) == [True]
    dead = store.run_get(None, run.id)
    assert dead is not None and dead.state is RunState.DEAD and dead.failures == 2
    assert [a.outcome for a in store.attempt_list(None, run.id)] == [
        AttemptOutcome.FAILED,
        AttemptOutcome.TIMED_OUT,
    ]

    with pytest.raises(Conflict):
        store.run_requeue("alice", _trigger(store, job, later(5)).id, now=later(5))
    assert store.run_requeue("mallory", run.id, now=later(6)) is None
    requeued = store.run_requeue("alice", run.id, now=later(6))
    assert requeued is not None and requeued.state is RunState.QUEUED and requeued.failures == 0
    claimed = {c.run_id: c for c in _claim(store, now=later(7))}
    assert claimed[run.id].attempt == 3


def test_a_stale_token_cannot_record_anything(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    run = _trigger(store, job)
    [c] = _claim(store)
    stale = _result(c, AttemptOutcome.SUCCEEDED, later(1))
    forged = AttemptResult(**{**stale.__dict__, "token": c.token - 1})
    assert store.run_complete([forged]) == [False]
    assert store.run_complete([stale]) == [True]
    assert store.run_complete([stale]) == [False]  # already ended: a replay is refused
    assert len(store.attempt_list(None, run.id)) == 1


def test_reaper_expires_leases_and_a_late_worker_is_refused(store: Store) -> None:
    job = store.job_create(make_job(policy=Policy(max_retries=2)), now=T0)
    run = _trigger(store, job)
    [c] = _claim(store)
    assert store.runs_expired(now=later(29), limit=10) == []
    [expired] = store.runs_expired(now=later(31), limit=10)
    assert (expired.run_id, expired.token, expired.attempt) == (run.id, c.token, 1)

    # A heartbeat that lands first keeps the lease: the reaper's conditional write is refused.
    store.run_heartbeat("w1", [(c.run_id, c.token)], now=later(30.5), ttl=TTL)
    lost = AttemptResult(
        run_id=run.id,
        token=expired.token,
        attempt=1,
        worker_id="w1",
        outcome=AttemptOutcome.LOST,
        decision=decide_after_attempt(AttemptOutcome.LOST, 0, expired.policy, later(31)),
        started_at=expired.started_at,
        finished_at=later(31),
        expired_before=later(31),
    )
    assert store.run_complete([lost]) == [False]

    [expired] = store.runs_expired(now=later(61), limit=10)
    lost = AttemptResult(**{**lost.__dict__, "expired_before": later(61), "finished_at": later(61)})
    assert store.run_complete([lost]) == [True]
    after = store.run_get(None, run.id)
    assert after is not None and after.state is RunState.RETRYING and after.failures == 1
    # The paused worker comes back: its result is refused.
    assert store.run_complete([_result(c, AttemptOutcome.SUCCEEDED, later(62))]) == [False]
    assert store.run_heartbeat("w1", [(c.run_id, c.token)], now=later(62), ttl=TTL) == set()
    [c2] = _claim(store, now=later(200))
    assert c2.token > c.token and c2.attempt == 2


def test_transactional_effect_commits_only_with_the_result(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    _trigger(store, job)
    _trigger(store, job, later(0.001))
    a, b = _claim(store, now=later(1))
    table = "effects_" + new_id(0).replace("-", "")[:12]

    def ddl(conn):  # type: ignore[no-untyped-def]
        conn.execute(f"CREATE TABLE {table} (v TEXT)")

    # Create the table through an accepted result (first run).
    assert store.run_complete_with(lambda _: _result(a, AttemptOutcome.SUCCEEDED, later(1)), ddl)[0]

    def effect(conn):  # type: ignore[no-untyped-def]
        conn.execute(f"INSERT INTO {table} (v) VALUES ('x')")
        return 42

    stale = AttemptResult(
        **{**_result(b, AttemptOutcome.SUCCEEDED, later(2)).__dict__, "token": b.token + 1000}
    )
    assert store.run_complete_with(lambda _: stale, effect) == (False, None)
    assert store.run_complete_with(
        lambda v: _result(b, AttemptOutcome.SUCCEEDED, later(2), output=str(v)), effect
    ) == (
        True,
        42,
    )
    assert store.run_get(None, b.run_id).output == "42"  # type: ignore[union-attr]

    def count(conn):  # type: ignore[no-untyped-def]
        cur = conn.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]

    _trigger(store, job, later(3))
    [c] = _claim(store, now=later(3))
    assert store.run_complete_with(
        lambda _: _result(c, AttemptOutcome.SUCCEEDED, later(3)), count
    ) == (
        True,
        1,
    )


def test_effect_that_raises_rolls_back_and_records_nothing(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    run = _trigger(store, job)
    [c] = _claim(store)

    def boom(conn):  # type: ignore[no-untyped-def]
        raise RuntimeError("task failed")

    with pytest.raises(RuntimeError):
        store.run_complete_with(lambda _: _result(c, AttemptOutcome.SUCCEEDED, later(1)), boom)
    still = store.run_get(None, run.id)
    assert still is not None and still.state is RunState.RUNNING


def test_overlap_forbid_skips_while_a_run_is_live(store: Store) -> None:
    job = store.job_create(make_job(policy=Policy(overlap="forbid")), now=T0)
    first = _trigger(store, job, T0)
    [c] = _claim(store, now=later(1))
    second = _trigger(store, job, later(2))
    nothing = _claim(store, now=later(3))
    assert nothing == []
    # The claim reports what its overlap policy settled, without another call.
    assert (nothing.skipped, nothing.cancelled) == (((second.id, job.id),), ())
    skipped = store.run_get(None, second.id)
    assert skipped is not None and skipped.state is RunState.SKIPPED
    store.run_complete([_result(c, AttemptOutcome.SUCCEEDED, later(4))])
    third = _trigger(store, job, later(5))
    fourth = _trigger(store, job, later(6))
    claimed = _claim(store, now=later(7))
    assert [x.run_id for x in claimed] == [third.id]
    assert (claimed.skipped, claimed.cancelled) == (((fourth.id, job.id),), ())
    plain = store.job_create(make_job(name="plain"), now=T0)
    _trigger(store, plain, later(8))
    unguarded = _claim(store, now=later(9))
    assert len(unguarded) == 1 and (unguarded.skipped, unguarded.cancelled) == ((), ())
    other = store.run_get(None, fourth.id)
    assert other is not None and other.state is RunState.SKIPPED
    assert first.id != third.id


def test_overlap_replace_cancels_the_live_run(store: Store) -> None:
    job = store.job_create(make_job(policy=Policy(overlap="replace")), now=T0)
    first = _trigger(store, job, T0)
    [c] = _claim(store, now=later(1))
    second = _trigger(store, job, later(2))
    claimed = _claim(store, now=later(3))
    [c2] = claimed
    assert c2.run_id == second.id
    assert (claimed.skipped, claimed.cancelled) == ((), ((first.id, job.id),))
    old = store.run_get(None, first.id)
    assert old is not None and old.state is RunState.CANCELLED
    assert [a.outcome for a in store.attempt_list(None, first.id)] == [AttemptOutcome.CANCELLED]
    assert store.run_complete([_result(c, AttemptOutcome.SUCCEEDED, later(4))]) == [False]
    assert store.run_heartbeat("w1", [(c.run_id, c.token)], now=later(4), ttl=TTL) == set()


def test_cancel_waiting_and_running_runs(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    waiting = _trigger(store, job, later(100))
    running = _trigger(store, job, T0)
    [c] = _claim(store, now=later(1))
    assert c.run_id == running.id
    assert store.run_cancel("mallory", waiting.id, now=later(2)) is None
    cancelled = store.run_cancel("alice", waiting.id, now=later(2))
    assert cancelled is not None and cancelled.state is RunState.CANCELLED
    cancelled = store.run_cancel("alice", running.id, now=later(2))
    assert cancelled is not None and cancelled.state is RunState.CANCELLED
    assert store.run_complete([_result(c, AttemptOutcome.SUCCEEDED, later(3))]) == [False]
    with pytest.raises(Conflict):
        store.run_cancel("alice", running.id, now=later(4))


def test_release_returns_the_run_without_spending_a_retry(store: Store) -> None:
    job = store.job_create(make_job(policy=Policy(max_retries=0)), now=T0)
    run = _trigger(store, job)
    [c] = _claim(store)
    store.run_complete([_result(c, AttemptOutcome.RELEASED, later(1))])
    back = store.run_get(None, run.id)
    assert back is not None and back.state is RunState.QUEUED and back.failures == 0
    [c2] = _claim(store, now=later(1))
    assert c2.run_id == run.id and c2.attempt == 2


def test_next_due_and_listing(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    other = store.job_create(make_job(owner="bob", policy=Policy(queue="q2")), now=T0)
    assert store.runs_next_due(["default"]) is None
    runs = [_trigger(store, job, later(i)) for i in (30, 10, 20)]
    _trigger(store, other, later(5))
    assert store.runs_next_due(["default"]) == later(10)
    assert store.runs_next_due(["default", "q2"]) == later(5)

    listed = store.run_list("alice")
    assert [r.scheduled_for for r in listed] == [later(30), later(20), later(10)]
    page = store.run_list("alice", limit=2)
    rest = store.run_list("alice", before=(page[-1].scheduled_for, page[-1].id))
    assert [r.id for r in page + rest] == [r.id for r in listed]
    assert {r.id for r in listed} == {r.id for r in runs}
    assert len(store.run_list(None)) == 4
    assert store.run_list("alice", states=[RunState.DEAD]) == []
    assert len(store.run_list("alice", states=[RunState.QUEUED])) == 3
    assert store.run_counts("alice") == {"queued": 3}
    assert store.run_counts(None) == {"queued": 4}


def test_decision_for_succeeded_run_has_no_due(store: Store) -> None:
    # A guard for the store's use of decision.due_at: success and death end the run.
    assert decide_after_attempt(AttemptOutcome.SUCCEEDED, 0, Policy(), T0) == RunDecision(
        RunState.SUCCEEDED, 0
    )


def test_prefetch_claims_soon_due_runs_to_start_at_their_due_time(store: Store) -> None:
    free = store.job_create(make_job(), now=T0)
    guarded = store.job_create(make_job(policy=Policy(overlap="forbid")), now=T0)
    soon = _trigger(store, free, later(10.3))
    guarded_soon = _trigger(store, guarded, later(10.2))
    _trigger(store, free, later(11))  # beyond the window

    ahead = store.run_claim(ClaimParams("w1", "default", 10, later(10), TTL, later(10.5)))
    # Only the run of the job that allows overlap is claimed early, and it starts when due.
    assert [c.run_id for c in ahead] == [soon.id]
    assert ahead[0].started_at == later(10.3)
    run = store.run_get(None, soon.id)
    assert run is not None and run.state is RunState.RUNNING and run.started_at == later(10.3)
    # The guarded one is claimed once due, like any run.
    due = store.run_claim(ClaimParams("w1", "default", 10, later(10.2), TTL, later(10.7)))
    assert [c.run_id for c in due] == [guarded_soon.id]
    assert due[0].started_at == later(10.2)
    # Without a window nothing more is due yet.
    assert _claim(store, now=later(10.9)) == []


def test_a_cancelled_transactional_effect_rolls_back_and_records_nothing(store: Store) -> None:
    """``control.cancel()`` from another thread interrupts the effect's statement (a slow
    one, here) and the transaction rolls back, whatever the effect does next."""
    from oncely.ports.store import TransactionCancelled, TxControl

    job = store.job_create(make_job(), now=T0)
    _trigger(store, job)
    [run] = _claim(store, now=later(1))
    control = TxControl()
    table = "cancelled_" + new_id(0).replace("-", "")[:12]
    sqlite = store.dialect == "sqlite"
    slow = (
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000) "
        "SELECT count(*) FROM c"
        if sqlite
        else "SELECT pg_sleep(30)"
    )

    def effect(conn):  # type: ignore[no-untyped-def]
        conn.execute(f"CREATE TABLE {table} (v TEXT)")
        conn.execute(slow)
        return 1

    threading.Timer(0.1, control.cancel).start()
    with pytest.raises(Exception) as caught:
        store.run_complete_with(
            lambda _: _result(run, AttemptOutcome.SUCCEEDED, later(2)),
            effect,
            timeout=60,
            control=control,
        )
    if sqlite:
        assert isinstance(caught.value, TransactionCancelled)
    assert store.run_get(None, run.run_id).state is RunState.RUNNING  # type: ignore[union-attr]
    assert store.attempt_list(None, run.run_id) == []


def test_a_transactional_effect_is_bounded_by_its_timeout(store: Store) -> None:
    job = store.job_create(make_job(), now=T0)
    _trigger(store, job)
    [run] = _claim(store, now=later(1))
    sqlite = store.dialect == "sqlite"
    slow = (
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000) "
        "SELECT count(*) FROM c"
        if sqlite
        else "SELECT pg_sleep(30)"
    )
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - store-specific timeout errors
        store.run_complete_with(
            lambda _: _result(run, AttemptOutcome.SUCCEEDED, later(2)),
            lambda conn: conn.execute(slow),
            timeout=0.2,
        )
    assert time.monotonic() - started < 5
    assert store.run_get(None, run.run_id).state is RunState.RUNNING  # type: ignore[union-attr]


def test_db_time_sample_brackets_a_read_of_the_stores_clock(store: Store) -> None:
    import time as _time
    from datetime import UTC, datetime

    before = _time.monotonic()
    sample = store.db_time_sample()
    assert before <= sample.sent <= sample.received <= _time.monotonic()
    assert sample.db_time.utcoffset() == timedelta(0)
    assert abs((sample.db_time - datetime.now(UTC)).total_seconds()) < 60
