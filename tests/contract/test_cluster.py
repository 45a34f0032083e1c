"""Contract: the lease rules pinned to the same answers in both stores (SQLite decides them in
Python, PostgreSQL in SQL), takeovers, cluster membership and queue depths."""

from __future__ import annotations

from datetime import timedelta

from oncely.domain.firing import plan_fires
from oncely.domain.schedule import CronSchedule
from oncely.ports.store import MEMBER_RETENTION, TAKEOVER_RETENTION, Member, Store
from tests.contract.conftest import T0, later, make_job

TTL = timedelta(seconds=10)


# -- lease rules at their edges -----------------------------------------------------------


def test_a_lease_is_expired_exactly_at_its_expiry(store: Store) -> None:
    [a] = store.lease_acquire(["shard:1"], "a", now=T0, ttl=TTL)
    # One microsecond before expiry it is still a's; at expiry it is free.
    assert store.lease_acquire(["shard:1"], "b", now=later(10 - 1e-6), ttl=TTL) == []
    [b] = store.lease_acquire(["shard:1"], "b", now=later(10), ttl=TTL)
    assert b.holder == "b" and b.token > a.token


def test_renew_fails_exactly_at_expiry_and_after(store: Store) -> None:
    [a] = store.lease_acquire(["shard:1"], "a", now=T0, ttl=TTL)
    [renewed] = store.lease_renew([a], now=later(10 - 1e-6), ttl=TTL)
    assert renewed.token == a.token and renewed.expires_at == later(20 - 1e-6)
    assert store.lease_renew([renewed], now=later(20 - 1e-6), ttl=TTL) == []
    assert store.lease_renew([renewed], now=later(25), ttl=TTL) == []


def test_our_own_expired_lease_comes_back_with_a_new_token(store: Store) -> None:
    [a] = store.lease_acquire(["shard:1"], "a", now=T0, ttl=TTL)
    [again] = store.lease_acquire(["shard:1"], "a", now=later(10), ttl=TTL)
    assert again.token > a.token and again.acquired_at == later(10)
    # Not a takeover: nobody else held it.
    assert again.taken_from is None and store.takeover_list() == []
    # The stale token cannot renew the new term.
    assert store.lease_renew([a], now=later(11), ttl=TTL) == []


def test_renewing_keeps_the_token_and_since_when_it_is_held(store: Store) -> None:
    [a] = store.lease_acquire(["shard:2"], "a", now=T0, ttl=TTL)
    assert a.acquired_at == T0
    [r1] = store.lease_renew([a], now=later(5), ttl=TTL)
    [r2] = store.lease_acquire(["shard:2"], "a", now=later(9), ttl=TTL)
    assert r1.token == r2.token == a.token
    assert r1.acquired_at == r2.acquired_at == T0
    [listed] = store.lease_list("shard:")
    assert listed.acquired_at == T0 and listed.expires_at == later(19)


def test_release_then_acquire_gets_a_new_larger_token_and_is_no_takeover(store: Store) -> None:
    [a] = store.lease_acquire(["shard:3"], "a", now=T0, ttl=TTL)
    store.lease_release([a])
    assert store.lease_list("shard:") == []
    [b] = store.lease_acquire(["shard:3"], "b", now=later(1), ttl=TTL)
    assert b.token > a.token and b.taken_from is None and b.acquired_at == later(1)
    assert store.takeover_list() == []
    # Releasing under a stale token does nothing to the new holder.
    store.lease_release([a])
    assert [x.holder for x in store.lease_list("shard:")] == ["b"]


def test_acquire_with_repeated_names_grants_each_once(store: Store) -> None:
    leases = store.lease_acquire(["shard:5", "shard:4", "shard:5"], "a", now=T0, ttl=TTL)
    assert [x.name for x in leases] == ["shard:5", "shard:4"]
    assert len({x.token for x in leases}) == 2


def test_acquire_mixes_free_expired_and_taken_leases(store: Store) -> None:
    store.lease_acquire(["shard:1"], "other", now=T0, ttl=timedelta(seconds=1))
    store.lease_acquire(["shard:2"], "other", now=T0, ttl=TTL)
    got = store.lease_acquire(["shard:1", "shard:2", "shard:3"], "me", now=later(2), ttl=TTL)
    assert [(x.name, x.taken_from) for x in got] == [("shard:1", "other"), ("shard:3", None)]
    holders = {x.name: x.holder for x in store.lease_list("shard:")}
    assert holders == {"shard:1": "me", "shard:2": "other", "shard:3": "me"}


# -- takeovers ----------------------------------------------------------------------------


def test_taking_an_expired_lease_from_another_holder_is_recorded(store: Store) -> None:
    [old] = store.lease_acquire(["shard:7", "shard:8"], "dead", now=T0, ttl=TTL)[:1]
    taken = store.lease_acquire(["shard:7", "shard:8"], "alive", now=later(12), ttl=TTL)
    assert [(x.name, x.taken_from) for x in taken] == [("shard:7", "dead"), ("shard:8", "dead")]
    records = store.takeover_list()
    assert {(t.name, t.old_holder, t.new_holder) for t in records} == {
        ("shard:7", "dead", "alive"),
        ("shard:8", "dead", "alive"),
    }
    seven = next(t for t in records if t.name == "shard:7")
    assert seven.at == later(12) and seven.expired_at == later(10)
    assert seven.old_token == old.token and seven.new_token == taken[0].token
    # Newest first, bounded.
    store.lease_acquire(["shard:9"], "x", now=later(12), ttl=TTL)
    store.lease_acquire(["shard:9"], "y", now=later(30), ttl=TTL)
    assert store.takeover_list(limit=1)[0].name == "shard:9"
    assert len(store.takeover_list(limit=2)) == 2


def test_old_takeovers_are_forgotten(store: Store) -> None:
    store.lease_acquire(["shard:1"], "a", now=T0, ttl=TTL)
    store.lease_acquire(["shard:1"], "b", now=later(20), ttl=TTL)
    assert len(store.takeover_list()) == 1
    much_later = later(20) + TAKEOVER_RETENTION + timedelta(seconds=60)
    store.lease_acquire(["shard:2"], "a", now=much_later - timedelta(seconds=20), ttl=TTL)
    store.lease_acquire(["shard:2"], "b", now=much_later, ttl=TTL)
    assert [t.name for t in store.takeover_list()] == ["shard:2"]


def test_a_lease_taken_over_refuses_the_old_holders_commit(store: Store) -> None:
    job = store.job_create(make_job(schedule=CronSchedule(expr="*/10 * * * * *")), now=T0)
    name = f"shard:{job.shard}"
    [old] = store.lease_acquire([name], "old", now=T0, ttl=TTL)
    [new] = store.lease_acquire([name], "new", now=later(10), ttl=TTL)
    assert new.taken_from == "old"
    plan = plan_fires(job, later(10), later(20))
    assert plan is not None
    assert store.fires_commit([old], [(job.shard, plan)], now=later(10)).lost_shards == {job.shard}
    assert store.fires_commit([new], [(job.shard, plan)], now=later(10)).runs_created == 2


# -- membership ---------------------------------------------------------------------------


def _member(member_id: str, *roles: str, pid: int = 100) -> Member:
    return Member(
        id=member_id,
        host="host-1",
        pid=pid,
        roles=roles,
        version="0.1.0",
        started_at=T0,
        heartbeat_at=T0,
    )


def test_members_register_heartbeat_and_leave(store: Store) -> None:
    store.member_heartbeat(_member("b", "scheduler", "worker"), now=T0)
    store.member_heartbeat(_member("a", "api"), now=later(1))
    members = store.member_list()
    assert [(m.id, m.roles, m.heartbeat_at) for m in members] == [
        ("a", ("api",), later(1)),
        ("b", ("scheduler", "worker"), T0),
    ]
    assert members[1].host == "host-1" and members[1].pid == 100 and members[1].version == "0.1.0"
    # A heartbeat moves heartbeat_at only; started_at stays as first written.
    later_start = _member("b", "scheduler", "worker")
    store.member_heartbeat(
        Member(**{**later_start.__dict__, "started_at": later(5), "pid": 101}), now=later(3)
    )
    b = next(m for m in store.member_list() if m.id == "b")
    assert b.heartbeat_at == later(3) and b.started_at == T0 and b.pid == 101
    store.member_leave("b")
    assert [m.id for m in store.member_list()] == ["a"]
    store.member_leave("nobody")  # leaving twice, or never having joined, is harmless
    assert [m.id for m in store.member_list()] == ["a"]


def test_members_that_died_without_leaving_are_forgotten(store: Store) -> None:
    store.member_heartbeat(_member("dead", "worker"), now=T0)
    store.member_heartbeat(_member("alive", "worker"), now=later(1))
    # Still listed (with its old heartbeat) until the retention has passed.
    store.member_heartbeat(_member("alive", "worker"), now=later(60))
    assert [m.id for m in store.member_list()] == ["alive", "dead"]
    store.member_heartbeat(
        _member("alive", "worker"), now=T0 + MEMBER_RETENTION + timedelta(seconds=1)
    )
    assert [m.id for m in store.member_list()] == ["alive"]


# -- queue depths -------------------------------------------------------------------------


def test_queue_depths_count_waiting_and_due_runs_per_queue(store: Store) -> None:
    from oncely.domain.policy import Policy

    assert store.queue_depths(now=T0) == []
    fast = store.job_create(
        make_job(schedule=CronSchedule(expr="*/10 * * * * *"), policy=Policy(queue="fast")),
        now=T0,
    )
    slow = store.job_create(
        make_job(schedule=CronSchedule(expr="*/30 * * * * *"), policy=Policy(queue="slow")),
        now=T0,
    )
    leases = store.lease_acquire(
        sorted({f"shard:{fast.shard}", f"shard:{slow.shard}"}), "s", now=T0, ttl=TTL
    )
    plans = []
    for job in (fast, slow):
        plan = plan_fires(job, T0, later(60))
        assert plan is not None
        plans.append((job.shard, plan))
    store.fires_commit(leases, plans, now=T0)
    depths = {d.queue: d for d in store.queue_depths(now=later(25))}
    assert set(depths) == {"fast", "slow"}
    assert depths["fast"].waiting == 6 and depths["fast"].due == 2
    assert depths["fast"].oldest_due_at == later(10)
    assert depths["slow"].waiting == 2 and depths["slow"].due == 0
    assert depths["slow"].oldest_due_at is None
