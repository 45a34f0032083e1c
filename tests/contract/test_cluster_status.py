"""cluster_status on each store: nodes, shard holders since when, queues, takeovers."""

from __future__ import annotations

import json
from datetime import timedelta

from oncely.domain.firing import plan_fires
from oncely.domain.schedule import CronSchedule
from oncely.ports.store import Member, Store
from oncely.runtime.cluster import cluster_status
from tests.contract.conftest import T0, later, make_job

TTL = timedelta(seconds=10)


def _member(member_id: str, *roles: str) -> Member:
    return Member(member_id, "host-1", 7, roles, "0.1.0", T0, T0)


def test_cluster_status_reads_nodes_shards_queues_and_takeovers(store: Store) -> None:
    store.member_heartbeat(_member("a", "scheduler", "worker"), now=T0)
    store.member_heartbeat(_member("b", "scheduler"), now=T0)
    store.member_heartbeat(_member("w", "worker"), now=later(-30))  # long silent: dead
    store.lease_acquire([f"shard:{i}" for i in range(40)], "a", now=T0, ttl=TTL)
    store.lease_acquire([f"shard:{i}" for i in range(40, 50)], "b", now=later(-20), ttl=TTL)
    # b's leases expired at T0-10; c takes two of them over.
    store.lease_acquire(["shard:40", "shard:41"], "c", now=T0, ttl=TTL)
    spec = make_job(schedule=CronSchedule(expr="*/10 * * * * *"))
    while spec.shard >= 40:  # a job in one of a's shards
        spec = make_job(schedule=CronSchedule(expr="*/10 * * * * *"))
    job = store.job_create(spec, now=T0)
    lease = store.lease_acquire([f"shard:{job.shard}"], "a", now=T0, ttl=TTL)  # a's own
    plan = plan_fires(job, T0, later(30))
    assert plan is not None
    store.fires_commit(lease, [(job.shard, plan)], now=T0)

    status = cluster_status(store, later(25), member_ttl=30)
    nodes = {n.id: n for n in status.nodes}
    assert set(nodes) == {"a", "b", "w"}
    assert nodes["a"].live and nodes["a"].roles == ["scheduler", "worker"]
    assert not nodes["w"].live and nodes["w"].heartbeat_age == 55
    assert nodes["a"].quota == 32 and nodes["b"].quota == 32 and nodes["w"].quota is None
    # At +25 every lease granted at T0 with a 10 s TTL has expired: none held, all listed.
    assert all(n.shards == [] for n in status.nodes)
    assert len(status.unheld_shards) == 64

    status = cluster_status(store, later(5), member_ttl=30)
    nodes = {n.id: n for n in status.nodes}
    assert len(nodes["a"].shards) == 40 and nodes["b"].shards == []
    by_shard = {s.shard: s for s in status.shards}
    assert by_shard[40].holder == "c" and by_shard[40].since == T0
    assert by_shard[45].holder == "b" and by_shard[45].expires_in == -15
    assert by_shard[63].holder is None
    assert set(status.unheld_shards) == set(range(42, 64))
    [queue] = status.queues
    assert queue.queue == "default" and queue.waiting == 3 and queue.due == 0
    assert status.oldest_due_age is None
    assert {(t.shard, t.old_holder, t.new_holder) for t in status.takeovers} == {
        ("shard:40", "b", "c"),
        ("shard:41", "b", "c"),
    }
    later_status = cluster_status(store, later(25), member_ttl=30)
    assert later_status.queues[0].due == 2 and later_status.oldest_due_age == 15
    # Plain JSON for the CLI and the API.
    data = json.loads(json.dumps(later_status.to_dict()))
    assert data["takeovers"][0]["at"] == T0.isoformat()
    assert data["queues"][0] == {"queue": "default", "waiting": 3, "due": 2, "oldest_due_age": 15}
