"""Contract: the notification outbox is written with the outcome that causes it; channels,
rules, deliveries and the dead-man's switch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from oncely.domain.errors import Conflict
from oncely.domain.firing import plan_fires
from oncely.domain.ids import new_id
from oncely.domain.notify import (
    Channel,
    ChannelKind,
    NotificationState,
    NotifyEvent,
    Rule,
)
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome, RunState, decide_after_attempt
from oncely.domain.schedule import CronSchedule
from oncely.ports.store import AttemptResult, ClaimedRun, ClaimParams, Store
from tests.contract.conftest import T0, later, make_job

TTL = timedelta(seconds=30)
ALL = frozenset(NotifyEvent)


def _channel(store: Store, owner: str = "alice", name: str = "ops") -> Channel:
    return store.channel_create(
        Channel(
            id=new_id(0),
            owner=owner,
            name=name,
            kind=ChannelKind.WEBHOOK,
            url="https://hooks.example.com/secret-token",
            secret="s3cret",
            created_at=T0,
        ),
        now=T0,
        actor="alice",
    )


def _rule(store: Store, channel: Channel, events=ALL, **kw) -> Rule:  # type: ignore[no-untyped-def]
    return store.rule_create(
        Rule(
            id=new_id(0),
            owner=kw.pop("owner", "alice"),
            channel_id=channel.id,
            events=frozenset(events),
            **kw,
        ),
        now=T0,
        actor="alice",
    )


def _run_once(store: Store, job, outcome: AttemptOutcome, at) -> ClaimedRun:  # type: ignore[no-untyped-def]
    store.job_trigger(job.owner, job.id, run_id=new_id(0), now=at)
    [c] = store.run_claim(ClaimParams("w1", job.policy.queue, 1, at, TTL))
    _finish(store, c, outcome, at + timedelta(seconds=1))
    return c


def _finish(store: Store, c: ClaimedRun, outcome: AttemptOutcome, at) -> None:  # type: ignore[no-untyped-def]
    decision = decide_after_attempt(outcome, c.failures, c.policy, at)
    [ok] = store.run_complete(
        [
            AttemptResult(
                c.run_id,
                c.token,
                c.attempt,
                "w1",
                outcome,
                decision,
                c.started_at,
                at,
                error="boom" if outcome is not AttemptOutcome.SUCCEEDED else None,
            )
        ]
    )
    assert ok


def _events(store: Store, owner: str | None = "alice") -> list[tuple[str, str | None]]:
    return sorted((n.event.value, n.run_id) for n in store.notification_list(owner))


def test_failures_dead_and_recovery_are_written_with_the_outcome(store: Store) -> None:
    ch = _channel(store)
    job = store.job_create(make_job(policy=Policy(max_retries=0)), now=T0)
    _rule(store, ch, job_id=job.id)

    ok1 = _run_once(store, job, AttemptOutcome.SUCCEEDED, later(1))
    assert _events(store) == []  # a success after no failure notifies nothing
    bad = _run_once(store, job, AttemptOutcome.FAILED, later(10))
    assert _events(store) == sorted([("failure", bad.run_id), ("dead", bad.run_id)])
    bad2 = _run_once(store, job, AttemptOutcome.FAILED, later(20))
    good = _run_once(store, job, AttemptOutcome.SUCCEEDED, later(30))
    _run_once(store, job, AttemptOutcome.SUCCEEDED, later(40))  # not a recovery again
    assert _events(store) == sorted(
        [
            ("failure", bad.run_id),
            ("dead", bad.run_id),
            ("failure", bad2.run_id),
            ("dead", bad2.run_id),
            ("recovery", good.run_id),
        ]
    )
    assert ok1.run_id not in {r for _, r in _events(store)}
    [n] = [n for n in store.notification_list("alice") if n.event is NotifyEvent.RECOVERY]
    assert n.job_name == job.name and n.channel_id == ch.id and n.state is NotificationState.PENDING
    assert n.next_attempt_at is not None and n.attempts == 0
    dead = [n for n in store.notification_list("alice") if n.event is NotifyEvent.DEAD]
    assert all(d.detail["error"] == "boom" and d.detail["attempt"] == 1 for d in dead)


def test_rules_match_by_job_owner_and_global_and_by_event(store: Store) -> None:
    ch_a = _channel(store)
    ch_b = _channel(store, owner="bob", name="bobs")
    job_a = store.job_create(make_job(owner="alice", policy=Policy(max_retries=0)), now=T0)
    job_b = store.job_create(make_job(owner="bob", policy=Policy(max_retries=0)), now=T0)
    _rule(store, ch_a, events={NotifyEvent.DEAD})  # every job of alice
    _rule(store, ch_b, owner="bob", events={NotifyEvent.RECOVERY})  # bob's: no dead
    _rule(store, ch_a, owner="alice", events={NotifyEvent.DEAD}, is_global=True)  # all jobs

    ra = _run_once(store, job_a, AttemptOutcome.FAILED, later(1))
    rb = _run_once(store, job_b, AttemptOutcome.FAILED, later(2))
    alice = store.notification_list("alice")
    # job_a matches alice's owner-wide rule and the global rule; job_b only the global one.
    assert sorted(n.run_id for n in alice) == sorted([ra.run_id, ra.run_id, rb.run_id])
    assert all(n.event is NotifyEvent.DEAD for n in alice)
    assert store.notification_list("bob") == []


def test_a_refused_result_writes_no_notification(store: Store) -> None:
    ch = _channel(store)
    job = store.job_create(make_job(policy=Policy(max_retries=0)), now=T0)
    _rule(store, ch, job_id=job.id)
    store.job_trigger(job.owner, job.id, run_id=new_id(0), now=T0)
    [c] = store.run_claim(ClaimParams("w1", "default", 1, T0, TTL))
    decision = decide_after_attempt(AttemptOutcome.FAILED, 0, c.policy, later(1))
    stale = AttemptResult(
        c.run_id,
        c.token + 999,
        c.attempt,
        "w1",
        AttemptOutcome.FAILED,
        decision,
        c.started_at,
        later(1),
    )
    assert store.run_complete([stale]) == [False]
    assert _events(store) == []


def test_the_reapers_lost_to_dead_notifies(store: Store) -> None:
    ch = _channel(store)
    job = store.job_create(make_job(policy=Policy(max_retries=0)), now=T0)
    _rule(store, ch, events={NotifyEvent.DEAD})
    store.job_trigger(job.owner, job.id, run_id=new_id(0), now=T0)
    [c] = store.run_claim(ClaimParams("w1", "default", 1, T0, TTL))
    [exp] = store.runs_expired(now=later(31), limit=10)
    decision = decide_after_attempt(AttemptOutcome.LOST, exp.failures, exp.policy, later(31))
    [ok] = store.run_complete(
        [
            AttemptResult(
                exp.run_id,
                exp.token,
                exp.attempt,
                exp.worker_id,
                AttemptOutcome.LOST,
                decision,
                exp.started_at,
                later(31),
                expired_before=later(31),
            )
        ]
    )
    assert ok and _events(store) == [("dead", c.run_id)]


def test_missed_fires_notify_in_the_commit(store: Store) -> None:
    ch = _channel(store)
    job = store.job_create(
        make_job(schedule=CronSchedule(expr="* * * * *"), policy=Policy(misfire="skip")), now=T0
    )
    _rule(store, ch, events={NotifyEvent.MISSED})
    [lease] = store.lease_acquire([f"shard:{job.shard}"], "s", now=later(3600), ttl=TTL)
    plan = plan_fires(job, later(3600), later(3605))
    assert plan is not None
    store.fires_commit([lease], [(job.shard, plan)], now=later(3600))
    [missed] = [r for r in store.run_list("alice", job_id=job.id) if r.state is RunState.MISSED]
    assert _events(store) == [("missed", missed.id)]


def test_deadman_arms_lapses_once_and_rearms_on_success(store: Store) -> None:
    ch = _channel(store)
    job = store.job_create(make_job(policy=Policy(deadline=3600, max_retries=0)), now=T0)
    other = store.job_create(make_job(), now=T0)  # no deadline: never armed
    _rule(store, ch, events={NotifyEvent.DEADMAN})

    assert store.deadman_sweep(now=T0).armed == 1
    assert store.deadman_missing("alice", now=later(3599)) == []
    assert store.deadman_sweep(now=later(3599)).lapsed == 0
    [missing] = store.deadman_missing("alice", now=later(3600))  # due, not swept yet
    assert missing.job_id == job.id and missing.deadline == 3600
    assert store.deadman_sweep(now=later(3600)).lapsed == 1
    assert store.deadman_sweep(now=later(7200)).lapsed == 0  # one notification per lapse
    [n] = store.notification_list("alice")
    assert n.event is NotifyEvent.DEADMAN and n.job_id == job.id and n.run_id is None
    assert [m.job_id for m in store.deadman_missing(None, now=later(9999))] == [job.id]
    assert store.deadman_missing("bob", now=later(9999)) == []

    _run_once(store, job, AttemptOutcome.FAILED, later(7000))  # failing does not re-arm
    assert [m.job_id for m in store.deadman_missing("alice", now=later(7100))] == [job.id]
    _run_once(store, job, AttemptOutcome.SUCCEEDED, later(8000))  # re-armed from success
    assert store.deadman_missing("alice", now=later(8001 + 3599)) == []
    assert store.deadman_sweep(now=later(8001 + 3600)).lapsed == 1
    assert len([n for n in store.notification_list("alice") if n.event is NotifyEvent.DEADMAN]) == 2
    assert other.id not in {m.job_id for m in store.deadman_missing(None, now=later(99999))}


def test_delivery_records_each_try_once(store: Store) -> None:
    ch = _channel(store)
    job = store.job_create(make_job(policy=Policy(max_retries=0)), now=T0)
    _rule(store, ch, events={NotifyEvent.DEAD})
    _run_once(store, job, AttemptOutcome.FAILED, later(1))
    [due] = store.notification_due(now=later(5), limit=10)
    assert due.channel_kind is ChannelKind.WEBHOOK and due.channel_secret == "s3cret"
    nid = due.notification.id
    assert store.notification_record(
        nid, attempt=1, ok=False, error="503", duration_ms=3, now=later(5), retry_at=later(60)
    )
    # The same try recorded again (a second deliverer) changes nothing.
    assert not store.notification_record(
        nid, attempt=1, ok=False, error="x", duration_ms=3, now=later(5), retry_at=later(60)
    )
    assert store.notification_due(now=later(59), limit=10) == []
    assert [d.notification.id for d in store.notification_due(now=later(60), limit=10)] == [nid]
    assert store.notification_record(
        nid, attempt=2, ok=True, error=None, duration_ms=4, now=later(61), retry_at=None
    )
    assert store.notification_due(now=later(9999), limit=10) == []
    got = store.notification_get("alice", nid)
    assert got is not None and got.state is NotificationState.DELIVERED and got.attempts == 2
    assert [(d.attempt, d.ok, d.error) for d in store.delivery_list("alice", nid)] == [
        (1, False, "503"),
        (2, True, None),
    ]
    assert store.delivery_list("bob", nid) == [] and store.notification_get("bob", nid) is None


def test_channels_are_per_owner_and_deleting_one_drops_its_rules(store: Store) -> None:
    ch = _channel(store)
    with pytest.raises(Conflict):
        _channel(store)
    _channel(store, owner="bob")  # another owner may use the name
    assert [c.name for c in store.channel_list("alice")] == ["ops"]
    assert store.channel_get("bob", ch.id) is None
    job = store.job_create(make_job(policy=Policy(max_retries=0)), now=T0)
    _rule(store, ch, events={NotifyEvent.DEAD})
    _run_once(store, job, AttemptOutcome.FAILED, later(1))
    assert not store.channel_delete("bob", ch.id, now=later(2))
    assert store.channel_delete("alice", ch.id, now=later(2), actor="alice")
    assert store.rule_list("alice") == []
    [n] = store.notification_list("alice")
    assert (
        n.state is NotificationState.FAILED and store.notification_due(now=later(9), limit=9) == []
    )
    assert store.channel_list("alice") == []
    _run_once(store, job, AttemptOutcome.FAILED, later(10))
    assert len(store.notification_list("alice")) == 1


def test_email_channels_are_stored_with_their_recipients(store: Store) -> None:
    channel = store.channel_create(
        Channel(
            id=new_id(0),
            owner="alice",
            name="mailto:ops_example.com",
            kind=ChannelKind.EMAIL,
            url="ops@example.com,oncall@example.com",
            secret=None,
            created_at=T0,
        ),
        now=T0,
    )
    [listed] = store.channel_list("alice")
    assert listed == channel
    assert (listed.kind, listed.url) == (ChannelKind.EMAIL, "ops@example.com,oncall@example.com")
