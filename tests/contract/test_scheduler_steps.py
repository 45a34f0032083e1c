"""The scheduler's steps (refresh, balance, materialize, hand-over, reap) driven one by one on
a frozen clock, against each real store: no real-time polling, every answer exact."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest

from oncely.domain.runs import RunState
from oncely.domain.schedule import CronSchedule
from oncely.observe.logs import RuntimeLog
from oncely.ports.store import ClaimParams, Store
from oncely.runtime.clock import FrozenClock
from oncely.runtime.events import EventBus
from oncely.runtime.membership import Membership, MembershipConfig
from oncely.runtime.scheduler import Scheduler, SchedulerConfig
from tests.contract.conftest import T0, later, make_job

TTL = 3.0
CONFIG = SchedulerConfig(lookahead=5.0, lease_ttl=TTL)


class Node:
    """One scheduler with its membership, on a shared frozen clock."""

    def __init__(self, store: Store, clock: FrozenClock, name: str) -> None:
        self.events = EventBus()
        RuntimeLog().subscribe(self.events)
        self.membership = Membership(
            store,
            clock,
            roles=["scheduler"],
            member_id=name,
            config=MembershipConfig(ttl=TTL),
        )
        self.scheduler = Scheduler(
            store,
            clock,
            config=CONFIG,
            membership=self.membership,
            node_id=name,
            events=self.events,
        )

    @property
    def held(self) -> int:
        return len(self.scheduler.shards)

    def turn(self) -> None:
        """What one loop turn does: heartbeat, renew + balance, materialize + hand over."""
        self.membership.beat()
        self.scheduler.refresh_leases()
        self.scheduler.materialize_and_hand_over()


def _holders(store: Store, now: object) -> Counter[str]:
    return Counter(x.holder for x in store.lease_list("shard:") if x.expires_at > now)  # type: ignore[operator]


def _run(nodes: list[Node], clock: FrozenClock, seconds: float, step: float = 0.2) -> None:
    for _ in range(round(seconds / step)):
        for node in nodes:
            node.turn()
        clock.advance(step)


def test_one_scheduler_takes_every_shard(store: Store) -> None:
    clock = FrozenClock(T0)
    node = Node(store, clock, "a")
    node.turn()
    assert node.held == 64 and node.scheduler.quota == 64
    assert _holders(store, clock.now()) == {"a": 64}


def test_not_registered_yet_takes_nothing(store: Store) -> None:
    clock = FrozenClock(T0)
    node = Node(store, clock, "a")
    node.scheduler.refresh_leases()  # no heartbeat yet: it does not know its peers
    assert node.held == 0


def test_three_join_one_by_one_and_converge_to_exact_quotas(store: Store) -> None:
    clock = FrozenClock(T0)
    a, b, c = (Node(store, clock, n) for n in "abc")
    _run([a], clock, 1)
    assert a.held == 64
    _run([a, b], clock, TTL + 1)
    assert _holders(store, clock.now()) == {"a": 32, "b": 32}
    _run([a, b, c], clock, TTL + 1)
    assert _holders(store, clock.now()) == {"a": 22, "b": 21, "c": 21}
    # Stable from there: nothing moves.
    before = {x.name: (x.holder, x.token) for x in store.lease_list("shard:")}
    _run([a, b, c], clock, 3 * TTL)
    assert {x.name: (x.holder, x.token) for x in store.lease_list("shard:")} == before
    assert store.takeover_list() == []  # hand-overs are releases, not takeovers


def test_excess_is_handed_over_only_after_it_settled(store: Store) -> None:
    clock = FrozenClock(T0)
    a, b = Node(store, clock, "a"), Node(store, clock, "b")
    _run([a], clock, 1)
    b.membership.beat()  # b registers (and only heartbeats from here on)
    a.turn()
    first_over = clock.now()
    assert a.scheduler.quota == 32 and a.held == 64
    while True:
        clock.advance(0.2)
        b.membership.beat()
        a.membership.beat()
        a.scheduler.refresh_leases()
        if clock.now() - first_over >= timedelta(seconds=TTL):
            break
        a.scheduler.materialize_and_hand_over()
        assert a.held == 64, "handed over before the excess settled"
    # Decided, but released only at the commit boundary, after a materialize pass.
    assert a.held == 64
    assert a.scheduler.materialize_and_hand_over() is False
    assert a.held == 32 and len(store.lease_list("shard:")) == 32
    b.turn()
    assert b.held == 32 and _holders(store, clock.now()) == {"a": 32, "b": 32}


def test_a_crashed_scheduler_is_replaced_as_soon_as_its_leases_expire(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FrozenClock(T0)
    a, b, c = (Node(store, clock, n) for n in "abc")
    _run([a, b, c], clock, 3 * TTL)
    assert _holders(store, clock.now()) == {"a": 22, "b": 21, "c": 21}
    # c stops dead: no heartbeat, no renewals. Its leases expire TTL after its last renewal.
    caplog.set_level(logging.WARNING, logger="oncely.runs")
    _run([a, b], clock, TTL - 0.4)
    assert _holders(store, clock.now())["c"] == 21
    _run([a, b], clock, 0.6)
    assert _holders(store, clock.now()) == {"a": 32, "b": 32}
    takeovers = store.takeover_list(limit=100)
    assert len(takeovers) == 21 and {t.old_holder for t in takeovers} == {"c"}
    assert {t.new_holder for t in takeovers} == {"a", "b"}
    for node in (a, b):
        assert node.events.flush()  # the log observes the bus on its own thread
    warned = [r.getMessage() for r in caplog.records if "takeover of shard:" in r.getMessage()]
    assert len(warned) == 21 and all(": c let it expire" in m for m in warned)
    assert {m.split("node=")[1].split()[0] for m in warned} == {"a", "b"}
    # Once c's member row has timed out too, the split stays 32/32.
    _run([a, b], clock, 3 * TTL)
    assert _holders(store, clock.now()) == {"a": 32, "b": 32}


def test_a_stopping_scheduler_releases_and_the_others_take_over_without_takeover(
    store: Store,
) -> None:
    clock = FrozenClock(T0)
    a, b = Node(store, clock, "a"), Node(store, clock, "b")
    _run([a, b], clock, 2 * TTL)
    assert _holders(store, clock.now()) == {"a": 32, "b": 32}
    b.scheduler.release_all()
    b.membership.leave()
    _run([a], clock, 0.4)
    assert _holders(store, clock.now()) == {"a": 64}
    assert store.takeover_list() == []


def test_a_free_shard_nobody_under_quota_takes_is_taken_as_an_orphan(store: Store) -> None:
    clock = FrozenClock(T0)
    a, b = Node(store, clock, "a"), Node(store, clock, "b")
    _run([a, b], clock, 2 * TTL)
    # b stalls but keeps heartbeating (its member row is live): a is at its quota of 32.
    stalled = list(b.scheduler._leases.values())
    store.lease_release(stalled[:1])
    a.turn()
    assert a.held == 32  # at quota: not at once
    _run([a], clock, TTL + 0.2, step=0.2)
    # a keeps the orphan; its member list still counts b.
    assert a.held >= 33


def test_materialize_under_the_shard_lease_and_reap(store: Store) -> None:
    clock = FrozenClock(T0)
    node = Node(store, clock, "a")
    job = store.job_create(make_job(schedule=CronSchedule(expr="* * * * * *")), now=T0)
    node.turn()
    runs = store.run_list("alice", job_id=job.id)
    # Fires at T0+1 .. T0+5 (the lookahead), each once; a second pass adds nothing.
    assert sorted(r.scheduled_for for r in runs) == [later(i) for i in range(1, 6)]
    node.scheduler.materialize()
    assert len(store.run_list("alice", job_id=job.id)) == 5
    # A worker claims the first run and vanishes; the reaper records it lost after the lease.
    clock.set(later(1))
    [claimed] = store.run_claim(
        ClaimParams(
            worker_id="w", queue="default", limit=1, now=later(1), lease_ttl=later(2) - later(0)
        )
    )
    assert node.scheduler.reap() == 0
    clock.set(later(3))
    assert node.scheduler.reap() == 1
    run = store.run_get(None, claimed.run_id)
    assert run is not None and run.state is RunState.RETRYING
    assert node.scheduler.reap() == 0  # once only


def test_a_job_is_refilled_every_two_seconds_up_to_the_whole_lookahead(store: Store) -> None:
    """A per-second job is planned again once its next fire is within lookahead - 2 s, and
    then to the full lookahead: its row is advanced once per three fires instead of every
    fire, and every fire up to now + 3 s is always a run (more than a failover takes)."""
    clock = FrozenClock(T0)
    node = Node(store, clock, "a")
    job = store.job_create(make_job(schedule=CronSchedule(expr="* * * * * *")), now=T0)
    node.turn()
    advances = node.scheduler.stats.jobs_advanced
    fires = {r.scheduled_for for r in store.run_list("alice", job_id=job.id, limit=100)}
    assert fires == {later(i) for i in range(1, 6)}
    for tick in range(1, 41):  # 10 s in quarter seconds
        clock.set(later(tick / 4))
        node.turn()
        runs = store.run_list("alice", job_id=job.id, limit=100)
        newest = max(r.scheduled_for for r in runs)
        # Every fire up to now + 3 s is a run (the next one is later), none past now + 5 s.
        assert newest + timedelta(seconds=1) > later(tick / 4 + 3), (tick, newest)
        assert newest <= later(tick / 4 + 5)
    runs = store.run_list("alice", job_id=job.id, limit=100)
    assert sorted(r.scheduled_for for r in runs) == [later(i) for i in range(1, len(runs) + 1)]
    # Refilled at +3 s, +6 s and +9 s, three fires each time (to now + 5 s).
    assert len(runs) == 14
    assert node.scheduler.stats.jobs_advanced - advances == 3


def test_a_scheduler_that_lost_its_lease_drops_the_shard_and_writes_nothing(
    store: Store,
) -> None:
    clock = FrozenClock(T0)
    a = Node(store, clock, "a")
    job = store.job_create(make_job(schedule=CronSchedule(expr="* * * * * *")), now=T0)
    a.turn()
    # a stalls past its lease; b takes everything.
    clock.advance(TTL + 1)
    b = Node(store, clock, "b")
    b.turn()
    assert b.held == 64
    before = len(store.run_list("alice", job_id=job.id))
    # A new job is due at once (b materialized the old one past a's refill window).
    fresh = store.job_create(
        make_job(schedule=CronSchedule(expr="* * * * * *"), now=clock.now()), now=clock.now()
    )
    clock.advance(1)
    a.scheduler.materialize()  # a wakes up and tries to write under its stale tokens
    assert fresh.shard not in a.scheduler.shards
    assert len(store.run_list("alice", job_id=job.id)) == before
    assert store.run_list("alice", job_id=fresh.id) == []
    # Its refresh finds every lease lost.
    a.scheduler.refresh_leases()
    assert a.held <= 32
