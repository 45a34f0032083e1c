"""Fair shares of the shards: exact quotas, and what one scheduler decides to take and give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from oncely.domain.jobs import SHARD_COUNT
from oncely.domain.shares import (
    ShardHolding,
    active_schedulers,
    decide_shares,
    quotas,
    should_hand_over,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
GRACE = timedelta(seconds=3)
names = st.text("abcdefgh0123456789:-", min_size=1, max_size=12)


def test_three_schedulers_split_64_as_22_21_21_by_id() -> None:
    assert quotas(["c", "a", "b"]) == {"a": 22, "b": 21, "c": 21}
    assert quotas(["a", "b", "c", "d"]) == dict.fromkeys("abcd", 16)
    assert quotas(["x"]) == {"x": 64}
    assert quotas([]) == {}


@given(st.sets(names, min_size=1, max_size=80))
def test_quotas_add_up_and_differ_by_at_most_one(members: set[str]) -> None:
    shares = quotas(members)
    assert sum(shares.values()) == SHARD_COUNT
    assert max(shares.values()) - min(shares.values()) <= 1
    # The larger shares go to the first members by id: a stable order every node agrees on.
    ordered = [shares[m] for m in sorted(members)]
    assert ordered == sorted(ordered, reverse=True)


@given(st.sets(names, min_size=1, max_size=10), st.permutations(list(range(10))))
def test_every_node_computes_the_same_quotas_whatever_order_it_reads(
    members: set[str], order: list[int]
) -> None:
    listed = sorted(members)
    shuffled = [listed[i] for i in order if i < len(listed)]
    assert quotas(shuffled) == quotas(listed)


def _held(holder: str, shards: range | list[int], expires: datetime) -> dict[int, ShardHolding]:
    return {s: ShardHolding(s, holder, expires) for s in shards}


def test_a_member_whose_leases_all_expired_does_not_count() -> None:
    live = NOW + timedelta(seconds=2)
    dead = NOW - timedelta(seconds=1)
    holdings = [
        *_held("a", range(21), live).values(),
        *_held("b", range(21, 42), live).values(),
        *_held("c", range(42, 64), dead).values(),
    ]
    assert active_schedulers("a", ["a", "b", "c"], holdings, NOW) == ["a", "b"]
    # A member holding nothing yet (just joined) counts; so does one with a live lease left.
    holdings[-1] = ShardHolding(63, "c", live)
    assert active_schedulers("a", ["a", "b", "c", "d"], holdings, NOW) == ["a", "b", "c", "d"]
    # We always count ourselves, listed or not.
    assert active_schedulers("z", [], [], NOW) == ["z"]


def test_under_quota_takes_free_shards_up_to_its_quota() -> None:
    live = NOW + timedelta(seconds=2)
    holdings = {**_held("a", range(32), live), **_held("b", range(32, 48), live)}
    decision = decide_shares(
        me="b",
        quota=32,
        held=set(range(32, 48)),
        holdings=holdings,
        free_since={},
        now=NOW,
        orphan_after=GRACE,
    )
    assert len(decision.take) == 16 and set(decision.take) == set(range(48, 64))
    assert decision.excess == ()


def test_expired_and_missing_leases_are_both_free() -> None:
    holdings = _held("c", [5, 6], NOW)  # expires exactly now: expired
    decision = decide_shares(
        me="a",
        quota=64,
        held=set(),
        holdings=holdings,
        free_since={},
        now=NOW,
        orphan_after=GRACE,
    )
    assert set(decision.take) == set(range(64))


def test_at_quota_takes_only_orphans_free_for_the_grace() -> None:
    live = NOW + timedelta(seconds=2)
    holdings = _held("a", range(32), live)
    free_since = {32: NOW - GRACE, 33: NOW - GRACE + timedelta(milliseconds=1)}
    decision = decide_shares(
        me="a",
        quota=32,
        held=set(range(32)),
        holdings=holdings,
        free_since=free_since,
        now=NOW,
        orphan_after=GRACE,
    )
    assert decision.take == (32,) and decision.excess == ()


def test_over_quota_names_its_excess() -> None:
    live = NOW + timedelta(seconds=2)
    decision = decide_shares(
        me="a",
        quota=16,
        held=set(range(32)),
        holdings=_held("a", range(32), live),
        free_since={},
        now=NOW,
        orphan_after=GRACE,
    )
    assert len(decision.excess) == 16 and set(decision.excess) <= set(range(32))
    assert decision.take == ()


@given(
    st.integers(1, 8),
    st.dictionaries(st.integers(0, 63), st.sampled_from(["a", "b", "c", None]), max_size=64),
    st.sampled_from(["a", "b", "c"]),
)
def test_decisions_never_touch_live_shards_of_others(
    n: int, owners: dict[int, str | None], me: str
) -> None:
    live = NOW + timedelta(seconds=2)
    holdings = {s: ShardHolding(s, h, live if h else None) for s, h in owners.items()}
    held = {s for s, h in owners.items() if h == me}
    quota = quotas([f"m{i}" for i in range(n)])["m0"]
    decision = decide_shares(
        me=me,
        quota=quota,
        held=held,
        holdings=holdings,
        free_since={},
        now=NOW,
        orphan_after=GRACE,
    )
    assert all(owners.get(s) is None for s in decision.take)
    assert set(decision.excess) <= held
    assert len(held) + len(decision.take) - len(decision.excess) >= min(quota, len(held))
    if len(held) <= quota:
        assert decision.excess == ()
        assert len(held) + len(decision.take) <= quota
    else:
        assert len(held) - len(decision.excess) == quota


def test_takers_start_at_different_free_shards() -> None:
    firsts = {
        decide_shares(
            me=f"node-{i}",
            quota=1,
            held=set(),
            holdings={},
            free_since={},
            now=NOW,
            orphan_after=GRACE,
        ).take
        for i in range(8)
    }
    assert len(firsts) > 1


def test_hand_over_waits_for_the_excess_to_settle() -> None:
    settle = timedelta(seconds=3)
    assert not should_hand_over(None, NOW, settle)
    assert not should_hand_over(NOW - timedelta(seconds=2.9), NOW, settle)
    assert should_hand_over(NOW - settle, NOW, settle)
