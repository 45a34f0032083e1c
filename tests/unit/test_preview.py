"""Previews and DST days. Expected instants are worked out by hand from the zones' published
rules (as in test_dst_tables.py), and a property test checks that a preview's fires are exactly
the scheduler's own (``fires_between``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncely.domain.errors import InvalidInput
from oncely.domain.preview import ClockChange, clock_changes, dst_days, preview
from oncely.domain.schedule import (
    AtSchedule,
    CronSchedule,
    EverySchedule,
    fires_between,
    next_fire,
)
from tests.unit.test_cron import cron_exprs


def z(text: str) -> datetime:
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def rows(schedule: CronSchedule, after: str, count: int) -> list[tuple[str, str, bool, str | None]]:
    """(UTC, local ISO, fires, flag) per entry."""
    return [
        (f"{e.utc:%Y-%m-%d %H:%M}", e.local.isoformat(), e.fires, e.dst)
        for e in preview(schedule, z(after), count)
    ]


# -- America/New_York: 2024-03-10 02:00 EST -> 03:00 EDT at 07:00Z; 2024-11-03 02:00 EDT ->
#    01:00 EST at 06:00Z.


def test_new_york_gap_shift() -> None:
    # 02:30 does not exist on the 10th: shifted to 03:00 EDT = 07:00Z.
    assert rows(CronSchedule("30 2 * * *", "America/New_York"), "2024-03-08 12:00", 4) == [
        ("2024-03-09 07:30", "2024-03-09T02:30:00-05:00", True, None),
        ("2024-03-10 07:00", "2024-03-10T03:00:00-04:00", True, "shifted"),
        ("2024-03-11 06:30", "2024-03-11T02:30:00-04:00", True, None),
        ("2024-03-12 06:30", "2024-03-12T02:30:00-04:00", True, None),
    ]
    shifted = preview(CronSchedule("30 2 * * *", "America/New_York"), z("2024-03-09 12:00"), 1)
    assert shifted[0].wall == datetime(2024, 3, 10, 2, 30)
    assert shifted[0].note == (
        "02:30 does not exist on 2024-03-10 (clocks jump forward from 02:00 to 03:00, "
        "UTC-05:00 to UTC-04:00): shifted to 03:00"
    )


def test_new_york_gap_skip_lists_the_skipped_fire_and_still_counts_real_ones() -> None:
    got = rows(
        CronSchedule("30 2 * * *", "America/New_York", dst_gap="skip"), "2024-03-08 12:00", 3
    )
    assert got == [
        ("2024-03-09 07:30", "2024-03-09T02:30:00-05:00", True, None),
        ("2024-03-10 07:00", "2024-03-10T03:00:00-04:00", False, "skipped"),
        ("2024-03-11 06:30", "2024-03-11T02:30:00-04:00", True, None),
        ("2024-03-12 06:30", "2024-03-12T02:30:00-04:00", True, None),
    ]


def test_new_york_hourly_gap_merges_with_the_next_hour() -> None:
    # 02:00 shifts to 07:00Z, which is 03:00 EDT, itself a fire: one fire.
    assert rows(CronSchedule("0 * * * *", "America/New_York"), "2024-03-10 05:30", 3) == [
        ("2024-03-10 06:00", "2024-03-10T01:00:00-05:00", True, None),
        ("2024-03-10 07:00", "2024-03-10T03:00:00-04:00", True, "merged"),
        ("2024-03-10 08:00", "2024-03-10T04:00:00-04:00", True, None),
    ]


@pytest.mark.parametrize(
    ("fold", "expected"),
    [
        ("first", [("2024-11-03 05:30", "2024-11-03T01:30:00-04:00", True, "fold-first")]),
        ("last", [("2024-11-03 06:30", "2024-11-03T01:30:00-05:00", True, "fold-second")]),
        (
            "both",
            [
                ("2024-11-03 05:30", "2024-11-03T01:30:00-04:00", True, "fold-first"),
                ("2024-11-03 06:30", "2024-11-03T01:30:00-05:00", True, "fold-second"),
            ],
        ),
    ],
)
def test_new_york_fold(fold: str, expected: list[tuple[str, str, bool, str | None]]) -> None:
    sched = CronSchedule("30 1 * * *", "America/New_York", dst_fold=fold)  # type: ignore[arg-type]
    got = rows(sched, "2024-11-02 12:00", len(expected) + 1)
    assert got == [*expected, ("2024-11-04 06:30", "2024-11-04T01:30:00-05:00", True, None)]


def test_hourly_through_a_fold_flags_only_the_repeated_hour() -> None:
    sched = CronSchedule("0 * * * *", "America/New_York", dst_fold="both")
    assert rows(sched, "2024-11-03 03:30", 4) == [
        ("2024-11-03 04:00", "2024-11-03T00:00:00-04:00", True, None),
        ("2024-11-03 05:00", "2024-11-03T01:00:00-04:00", True, "fold-first"),
        ("2024-11-03 06:00", "2024-11-03T01:00:00-05:00", True, "fold-second"),
        ("2024-11-03 07:00", "2024-11-03T02:00:00-05:00", True, None),
    ]


# -- Europe/London: 2024-03-31 01:00 GMT -> 02:00 BST at 01:00Z; 2024-10-27 02:00 BST ->
#    01:00 GMT at 01:00Z.


def test_london() -> None:
    assert rows(CronSchedule("30 1 * * *", "Europe/London"), "2024-03-30 00:00", 3) == [
        ("2024-03-30 01:30", "2024-03-30T01:30:00+00:00", True, None),
        ("2024-03-31 01:00", "2024-03-31T02:00:00+01:00", True, "shifted"),
        ("2024-04-01 00:30", "2024-04-01T01:30:00+01:00", True, None),
    ]
    sched = CronSchedule("30 1 * * *", "Europe/London", dst_fold="last")
    assert rows(sched, "2024-10-26 12:00", 2) == [
        ("2024-10-27 01:30", "2024-10-27T01:30:00+00:00", True, "fold-second"),
        ("2024-10-28 01:30", "2024-10-28T01:30:00+00:00", True, None),
    ]


# -- Australia/Lord_Howe: a 30-minute change. 2024-10-06 02:00 -> 02:30 at 10-05 15:30Z;
#    2024-04-07 02:00 -> 01:30 at 04-06 15:00Z.


def test_lord_howe_half_hour_changes() -> None:
    sched = CronSchedule("*/15 2 6 10 *", "Australia/Lord_Howe")
    # 02:00 and 02:15 do not exist; both shift to 15:30Z, which is 02:30 LHDT, a fire itself.
    assert rows(sched, "2024-10-05 12:00", 2) == [
        ("2024-10-05 15:30", "2024-10-06T02:30:00+11:00", True, "merged"),
        ("2024-10-05 15:45", "2024-10-06T02:45:00+11:00", True, None),
    ]
    sched = CronSchedule("45 1 * * *", "Australia/Lord_Howe", dst_fold="both")
    assert rows(sched, "2024-04-05 12:00", 4) == [
        ("2024-04-05 14:45", "2024-04-06T01:45:00+11:00", True, None),
        ("2024-04-06 14:45", "2024-04-07T01:45:00+11:00", True, "fold-first"),
        ("2024-04-06 15:15", "2024-04-07T01:45:00+10:30", True, "fold-second"),
        ("2024-04-07 15:15", "2024-04-08T01:45:00+10:30", True, None),
    ]
    # 01:15 is before the repeated half hour: never flagged.
    sched = CronSchedule("15 1 * * *", "Australia/Lord_Howe", dst_fold="both")
    assert all(e.dst is None for e in preview(sched, z("2024-04-05 12:00"), 4))


# -- Antarctica/Troll: +00 in winter, +02 in summer, a two-hour jump at 01:00Z on the EU dates.
#    2024-03-31 01:00 +00 -> 03:00 +02 at 01:00Z (wall 01:00-03:00 does not exist);
#    2024-10-27 03:00 +02 -> 01:00 +00 at 01:00Z (wall 01:00-03:00 occurs twice: first pass
#    10-26 23:00Z to 10-27 01:00Z, second pass 01:00Z to 03:00Z).


def test_troll_two_hour_gap_shift() -> None:
    # 01:00 and 02:00 on the 31st are both in the gap: one fire at the change, 01:00Z = 03:00
    # +02, which is not itself a match ("shifted"). The next day 01:00 +02 is 23:00Z the day
    # before in UTC.
    sched = CronSchedule("0 1,2 * * *", "Antarctica/Troll")
    assert rows(sched, "2024-03-30 12:00", 3) == [
        ("2024-03-31 01:00", "2024-03-31T03:00:00+02:00", True, "shifted"),
        ("2024-03-31 23:00", "2024-04-01T01:00:00+02:00", True, None),
        ("2024-04-01 00:00", "2024-04-01T02:00:00+02:00", True, None),
    ]
    got = preview(sched, z("2024-03-30 12:00"), 1)
    assert got[0].wall == datetime(2024, 3, 31, 1, 0)
    assert got[0].note == (
        "01:00 and 02:00 do not exist on 2024-03-31 (clocks jump forward from 01:00 to 03:00, "
        "UTC+00:00 to UTC+02:00): shifted to 03:00"
    )
    # Hourly: 01:00 and 02:00 collapse into 03:00's own fire ("merged"), one fire, not three.
    assert rows(CronSchedule("0 * * * *", "Antarctica/Troll"), "2024-03-30 23:30", 3) == [
        ("2024-03-31 00:00", "2024-03-31T00:00:00+00:00", True, None),
        ("2024-03-31 01:00", "2024-03-31T03:00:00+02:00", True, "merged"),
        ("2024-03-31 02:00", "2024-03-31T04:00:00+02:00", True, None),
    ]


def test_troll_two_hour_gap_skip() -> None:
    sched = CronSchedule("30 1 * * *", "Antarctica/Troll", dst_gap="skip")
    assert rows(sched, "2024-03-30 00:00", 3) == [
        ("2024-03-30 01:30", "2024-03-30T01:30:00+00:00", True, None),
        ("2024-03-31 01:00", "2024-03-31T03:00:00+02:00", False, "skipped"),
        ("2024-03-31 23:30", "2024-04-01T01:30:00+02:00", True, None),
        ("2024-04-01 23:30", "2024-04-02T01:30:00+02:00", True, None),
    ]


@pytest.mark.parametrize(
    ("fold", "expected"),
    [
        # 01:30 +02 is 23:30Z the day before the change; 01:30 +00 is 01:30Z.
        ("first", [("2024-10-26 23:30", "2024-10-27T01:30:00+02:00", True, "fold-first")]),
        ("last", [("2024-10-27 01:30", "2024-10-27T01:30:00+00:00", True, "fold-second")]),
        (
            "both",
            [
                ("2024-10-26 23:30", "2024-10-27T01:30:00+02:00", True, "fold-first"),
                ("2024-10-27 01:30", "2024-10-27T01:30:00+00:00", True, "fold-second"),
            ],
        ),
    ],
)
def test_troll_two_hour_fold(fold: str, expected: list[tuple[str, str, bool, str | None]]) -> None:
    sched = CronSchedule("30 1 * * *", "Antarctica/Troll", dst_fold=fold)  # type: ignore[arg-type]
    got = rows(sched, "2024-10-26 12:00", len(expected) + 1)
    assert got == [*expected, ("2024-10-28 01:30", "2024-10-28T01:30:00+00:00", True, None)]
    policy = {
        "first": "fires the first time only",
        "last": "fires the second time only",
        "both": "fires both times",
    }[fold]
    assert preview(sched, z("2024-10-26 12:00"), 1)[0].note == (
        "01:30 occurs twice on 2024-10-27 (clocks go back from 03:00 to 01:00, "
        f"UTC+02:00 to UTC+00:00); {policy} (dst_fold={fold})"
    )


def test_troll_hourly_through_the_fold() -> None:
    # 01:00 and 02:00 repeat; 00:00 (22:00Z) and 03:00 (03:00Z) are not in the fold.
    sched = CronSchedule("0 * * * *", "Antarctica/Troll", dst_fold="both")
    assert rows(sched, "2024-10-26 21:30", 6) == [
        ("2024-10-26 22:00", "2024-10-27T00:00:00+02:00", True, None),
        ("2024-10-26 23:00", "2024-10-27T01:00:00+02:00", True, "fold-first"),
        ("2024-10-27 00:00", "2024-10-27T02:00:00+02:00", True, "fold-first"),
        ("2024-10-27 01:00", "2024-10-27T01:00:00+00:00", True, "fold-second"),
        ("2024-10-27 02:00", "2024-10-27T02:00:00+00:00", True, "fold-second"),
        ("2024-10-27 03:00", "2024-10-27T03:00:00+00:00", True, None),
    ]
    first = CronSchedule("0 * * * *", "Antarctica/Troll", dst_fold="first")
    assert rows(first, "2024-10-26 22:30", 3) == [
        ("2024-10-26 23:00", "2024-10-27T01:00:00+02:00", True, "fold-first"),
        ("2024-10-27 00:00", "2024-10-27T02:00:00+02:00", True, "fold-first"),
        ("2024-10-27 03:00", "2024-10-27T03:00:00+00:00", True, None),
    ]


def test_zone_without_dst() -> None:
    sched = CronSchedule("0 2 * * *", "Asia/Tokyo")
    got = preview(sched, z("2024-03-08 12:00"), 3)  # 21:00 in Tokyo
    assert [e.local.isoformat() for e in got] == [
        "2024-03-09T02:00:00+09:00",
        "2024-03-10T02:00:00+09:00",
        "2024-03-11T02:00:00+09:00",
    ]
    assert all(e.dst is None and e.fires for e in got)
    assert dst_days(sched, 2027) == []


def test_at_and_every_are_never_flagged() -> None:
    every = EverySchedule(timedelta(hours=1), z("2024-03-10 05:00"))
    got = preview(every, z("2024-03-10 05:30"), 3, zone="America/New_York")
    assert [e.local.isoformat() for e in got] == [
        "2024-03-10T01:00:00-05:00",
        "2024-03-10T03:00:00-04:00",  # one hour after 01:00 EST: absolute time
        "2024-03-10T04:00:00-04:00",
    ]
    assert all(e.dst is None for e in got)
    at = AtSchedule(z("2030-01-01 09:00"))
    assert [e.utc for e in preview(at, z("2029-01-01 00:00"), 5)] == [z("2030-01-01 09:00")]
    assert preview(at, z("2031-01-01 00:00"), 5) == []
    assert dst_days(every, 2024) == [] and dst_days(at, 2030) == []


def test_bounds_and_count() -> None:
    # The schedule ends before the skipped fire: nothing is listed past its end.
    sched = CronSchedule(
        "30 2 * * *", "America/New_York", dst_gap="skip", end=z("2024-03-09 12:00")
    )
    assert rows(sched, "2024-03-08 12:00", 5) == [
        ("2024-03-09 07:30", "2024-03-09T02:30:00-05:00", True, None)
    ]
    with pytest.raises(ValueError, match="count"):
        preview(sched, z("2024-03-08 12:00"), 0)
    with pytest.raises(InvalidInput) as info:
        preview(CronSchedule("0 2 * * *", "Mars/Olympus"), z("2024-03-08 12:00"), 1)
    assert info.value.field == "timezone"


# -- dst_days --------------------------------------------------------------------------------


def test_clock_changes_new_york_2027() -> None:
    # Second Sunday of March (14th) at 02:00 EST = 07:00Z; first Sunday of November (7th) at
    # 02:00 EDT = 06:00Z.
    zone = ZoneInfo("America/New_York")
    assert clock_changes(zone, z("2027-01-01 00:00"), z("2028-01-01 00:00")) == [
        ClockChange(z("2027-03-14 07:00"), timedelta(hours=-5), timedelta(hours=-4)),
        ClockChange(z("2027-11-07 06:00"), timedelta(hours=-4), timedelta(hours=-5)),
    ]


def test_dst_days_new_york() -> None:
    got = dst_days(CronSchedule("0 2 * * *", "America/New_York"), 2027)
    assert [(d.day, d.flag, d.instants) for d in got] == [
        (date(2027, 3, 14), "shifted", (z("2027-03-14 07:00"),))
    ]
    assert got[0].note == (
        "clocks jump forward from 02:00 to 03:00, UTC-05:00 to UTC-04:00; 02:00: shifted to 03:00"
    )
    skip = dst_days(CronSchedule("0 2 * * *", "America/New_York", dst_gap="skip"), 2027)
    assert [(d.day, d.flag, d.instants) for d in skip] == [(date(2027, 3, 14), "skipped", ())]
    both = dst_days(CronSchedule("30 1 * * *", "America/New_York", dst_fold="both"), 2027)
    # 01:30 EDT = 05:30Z, 01:30 EST = 06:30Z.
    assert [(d.day, d.instants) for d in both] == [
        (date(2027, 11, 7), (z("2027-11-07 05:30"), z("2027-11-07 06:30")))
    ]
    assert both[0].note.endswith("01:30 occurs twice (1 hour repeated): fire twice")
    # Noon is never near a change.
    assert dst_days(CronSchedule("0 12 * * *", "America/New_York"), 2027) == []


def test_dst_days_london_and_lord_howe() -> None:
    # London 2027: 28 March 01:00 GMT -> 02:00 BST; 31 October 02:00 BST -> 01:00 GMT.
    got = dst_days(CronSchedule("0 * * * *", "Europe/London", dst_fold="last"), 2027)
    assert [(d.day, d.flag, d.instants) for d in got] == [
        (date(2027, 3, 28), "merged", (z("2027-03-28 01:00"),)),
        (date(2027, 10, 31), "fold-second", (z("2027-10-31 01:00"),)),
    ]
    # Lord Howe 2027: 4 April 02:00 -> 01:30 (+11 -> +10:30) at 04-03 15:00Z; 3 October
    # 02:00 -> 02:30 at 10-02 15:30Z. Every 15 minutes: 01:30 and 01:45 occur twice (first:
    # 14:30Z, 14:45Z); 02:00 and 02:15 do not exist and merge into 02:30's fire.
    got = dst_days(CronSchedule("*/15 * * * *", "Australia/Lord_Howe"), 2027)
    assert [(d.day, d.flag, [f"{w:%H:%M}" for w in d.walls], d.instants) for d in got] == [
        (date(2027, 4, 4), "fold-first", ["01:30", "01:45"],
         (z("2027-04-03 14:30"), z("2027-04-03 14:45"))),
        (date(2027, 10, 3), "merged", ["02:00", "02:15"], (z("2027-10-02 15:30"),)),
    ]  # fmt: skip
    assert "30 minutes repeated" in got[0].note


def test_clock_changes_and_dst_days_troll() -> None:
    # 2027: last Sunday of March is the 28th, of October the 31st; both changes at 01:00Z.
    zone = ZoneInfo("Antarctica/Troll")
    assert clock_changes(zone, z("2027-01-01 00:00"), z("2028-01-01 00:00")) == [
        ClockChange(z("2027-03-28 01:00"), timedelta(0), timedelta(hours=2)),
        ClockChange(z("2027-10-31 01:00"), timedelta(hours=2), timedelta(0)),
    ]
    got = dst_days(CronSchedule("30 1 * * *", "Antarctica/Troll"), 2027)
    assert [(d.day, d.flag, d.instants) for d in got] == [
        (date(2027, 3, 28), "shifted", (z("2027-03-28 01:00"),)),
        # The first 01:30 is 01:30 +02 = 23:30Z on the 30th, still the 31st in Troll.
        (date(2027, 10, 31), "fold-first", (z("2027-10-30 23:30"),)),
    ]
    assert got[0].note == (
        "clocks jump forward from 01:00 to 03:00, UTC+00:00 to UTC+02:00; 01:30: shifted to 03:00"
    )
    assert got[1].note == (
        "clocks go back from 03:00 to 01:00, UTC+02:00 to UTC+00:00; "
        "01:30 occurs twice (2 hours repeated): fire once, the first time"
    )
    hourly = CronSchedule("0 * * * *", "Antarctica/Troll", dst_gap="skip", dst_fold="both")
    got = dst_days(hourly, 2027)
    assert [(d.day, d.flag, [f"{w:%H:%M}" for w in d.walls], d.instants) for d in got] == [
        (date(2027, 3, 28), "skipped", ["01:00", "02:00"], ()),
        (date(2027, 10, 31), "fold-first", ["01:00", "02:00"],
         (z("2027-10-30 23:00"), z("2027-10-31 00:00"), z("2027-10-31 01:00"),
          z("2027-10-31 02:00"))),
    ]  # fmt: skip
    last = dst_days(CronSchedule("0 2 * * *", "Antarctica/Troll", dst_fold="last"), 2027)
    assert [(d.day, d.flag, d.instants) for d in last] == [
        (date(2027, 3, 28), "shifted", (z("2027-03-28 01:00"),)),
        (date(2027, 10, 31), "fold-second", (z("2027-10-31 02:00"),)),
    ]
    # 03:00 is just outside both the gap and the fold.
    assert dst_days(CronSchedule("0 3 * * *", "Antarctica/Troll"), 2027) == []


def test_dst_days_respects_bounds() -> None:
    sched = CronSchedule("0 2 * * *", "America/New_York", start=z("2027-06-01 00:00"))
    assert dst_days(sched, 2027) == []


# -- the preview is the scheduler's own answer -----------------------------------------------

zones = st.sampled_from(
    [
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "Antarctica/Troll",
        "Asia/Tokyo",
        "UTC",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expr=cron_exprs,
    zone=zones,
    gap=st.sampled_from(["shift", "skip"]),
    fold=st.sampled_from(["first", "last", "both"]),
    after=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)),
)
def test_preview_fires_are_the_schedulers(
    expr: str, zone: str, gap: str, fold: str, after: datetime
) -> None:
    sched = CronSchedule(expr, zone, dst_gap=gap, dst_fold=fold)  # type: ignore[arg-type]
    start = after.replace(tzinfo=UTC)
    got = preview(sched, start, 5)
    expected = fires_between(sched, start, datetime(9999, 1, 1, tzinfo=UTC), 5)
    assert [e.utc for e in got if e.fires] == expected
    for entry in got:
        assert entry.local == entry.utc
        assert (entry.dst == "skipped") == (not entry.fires)


dst_zones = st.sampled_from(
    [
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "Antarctica/Troll",
        "Pacific/Chatham",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expr=cron_exprs,
    zone=dst_zones,
    gap=st.sampled_from(["shift", "skip"]),
    fold=st.sampled_from(["first", "last", "both"]),
    year=st.integers(2024, 2030),
)
def test_dst_days_agree_with_the_scheduler_and_the_preview(
    expr: str, zone: str, gap: str, fold: str, year: int
) -> None:
    """Each DST day's instants are real fires, and exactly the fires the preview flags around
    that clock change; a skipped time never fires."""
    sched = CronSchedule(expr, zone, dst_gap=gap, dst_fold=fold)  # type: ignore[arg-type]
    tick = timedelta(microseconds=1)
    for day in dst_days(sched, year):
        change = day.change
        width = abs(change.after - change.before)
        # (A seconds-level expression has thousands of instants in a fold: check both ends.)
        for instant in {*day.instants[:10], *day.instants[-10:]}:
            assert next_fire(sched, instant - tick) == instant
        window_start = change.at - width - timedelta(seconds=1)
        until = change.at + width
        entries = preview(sched, window_start, 300, until=until)
        if sum(e.fires for e in entries) == 300:
            continue  # too many fires around this change for one preview: nothing to compare
        near = [e for e in entries if e.utc < change.at + width]
        flagged = {e.utc for e in near if e.dst is not None and e.fires}
        if day.flag == "skipped":
            assert day.instants == ()
            assert any(e.dst == "skipped" and e.utc == change.at for e in near)
        else:
            assert flagged == set(day.instants)


def test_preview_until() -> None:
    sched = CronSchedule("30 2 * * *", "America/New_York", dst_gap="skip")
    got = preview(sched, z("2024-03-08 12:00"), 10, until=z("2024-03-10 12:00"))
    # The skipped 02:30 of the 10th is within the horizon and listed.
    assert [(f"{e.utc:%m-%d %H:%M}", e.fires) for e in got] == [
        ("03-09 07:30", True),
        ("03-10 07:00", False),
    ]
    assert preview(sched, z("2024-03-08 12:00"), 10, until=z("2024-03-08 13:00")) == []
