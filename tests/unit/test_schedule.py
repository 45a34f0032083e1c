"""Schedules: at, every, cron with time zones; bounds, jitter, building from user input, storage,
and a differential test of DST resolution against a brute-force reference."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncely.domain.errors import InvalidInput
from oncely.domain.schedule import (
    AtSchedule,
    CronSchedule,
    EverySchedule,
    Schedule,
    describe,
    fires_between,
    format_interval,
    initial_fire,
    jitter_offset,
    make_schedule,
    next_fire,
    parse_interval,
    schedule_from_dict,
    schedule_to_dict,
)
from tests.unit import cron_reference

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- at --------------------------------------------------------------------------------------


def test_at_fires_once() -> None:
    at = AtSchedule(at=s(60))
    assert next_fire(at, s(0)) == s(60)
    assert next_fire(at, s(60)) is None
    assert next_fire(at, s(61)) is None
    assert fires_between(at, s(0), s(3600), 10) == [s(60)]


def test_at_initial_fire_keeps_a_past_instant() -> None:
    at = AtSchedule(at=s(-60))
    assert initial_fire(at, s(0)) == s(-60)
    assert next_fire(at, s(0)) is None


# -- every -----------------------------------------------------------------------------------


def test_every_with_anchor_in_the_past_keeps_its_phase() -> None:
    sched = EverySchedule(interval=timedelta(minutes=5), anchor=s(-3600 + 7))
    assert next_fire(sched, s(0)) == s(7)
    assert next_fire(sched, s(7)) == s(307)
    assert fires_between(sched, s(0), s(900), 10) == [s(7), s(307), s(607)]


def test_every_with_anchor_in_the_future_starts_there() -> None:
    sched = EverySchedule(interval=timedelta(hours=1), anchor=s(86_400))
    assert next_fire(sched, s(0)) == s(86_400)
    assert initial_fire(sched, s(0)) == s(86_400)
    assert next_fire(sched, s(86_400)) == s(90_000)


def test_every_is_absolute_time_with_microseconds() -> None:
    sched = EverySchedule(interval=timedelta(seconds=1.5), anchor=s(0))
    assert fires_between(sched, s(0), s(5), 10) == [s(1.5), s(3), s(4.5)]
    assert next_fire(sched, s(1.499999)) == s(1.5)


def test_every_bounds_are_inclusive() -> None:
    sched = EverySchedule(interval=timedelta(seconds=10), anchor=s(0), start=s(30), end=s(60))
    assert next_fire(sched, s(0)) == s(30)
    assert fires_between(sched, s(-100), s(1000), 100) == [s(30), s(40), s(50), s(60)]
    assert next_fire(sched, s(60)) is None
    # A start between two fires: the next fire on the grid.
    shifted = EverySchedule(interval=timedelta(seconds=10), anchor=s(0), start=s(35))
    assert next_fire(shifted, s(0)) == s(40)


def test_initial_fire_of_every_is_the_next_one() -> None:
    sched = make_schedule(every="10s", now=s(0.25))
    assert isinstance(sched, EverySchedule)
    assert sched.anchor == s(0)  # now truncated to the second
    assert initial_fire(sched, s(0.25)) == s(10)


# -- cron (UTC and bounds) -------------------------------------------------------------------


def test_cron_in_utc() -> None:
    sched = CronSchedule(expr="*/15 * * * *")
    assert fires_between(sched, s(0), s(3600), 10) == [s(900), s(1800), s(2700), s(3600)]
    assert all(
        f.tzinfo is UTC and f.microsecond == 0 for f in fires_between(sched, s(0), s(3600), 9)
    )


def test_cron_after_with_microseconds_and_other_offsets() -> None:
    sched = CronSchedule(expr="* * * * * *")
    assert next_fire(sched, s(0.5)) == s(1)
    plus2 = timezone(timedelta(hours=2))
    assert next_fire(sched, T0.astimezone(plus2)) == s(1)
    with pytest.raises(ValueError, match="aware"):
        next_fire(sched, datetime(2030, 1, 1))


def test_cron_bounds_are_inclusive() -> None:
    sched = CronSchedule(expr="0 * * * *", start=s(3600), end=s(3 * 3600))
    assert fires_between(sched, s(0), s(86_400), 10) == [s(3600), s(7200), s(10_800)]
    assert next_fire(sched, s(10_800)) is None


def test_cron_in_a_zone() -> None:
    sched = CronSchedule(expr="0 9 * * MON-FRI", timezone="Europe/Paris")
    # 2030-01-01 is a Tuesday; 09:00 in Paris in winter is 08:00 UTC.
    assert next_fire(sched, datetime(2030, 1, 1, tzinfo=UTC)) == datetime(2030, 1, 1, 8, tzinfo=UTC)
    # In summer (CEST, UTC+2) 07:00 UTC.
    assert next_fire(sched, datetime(2030, 7, 1, tzinfo=UTC)) == datetime(2030, 7, 1, 7, tzinfo=UTC)


def test_cron_that_never_fires() -> None:
    assert next_fire(CronSchedule(expr="0 0 30 2 *"), T0) is None


def test_the_end_of_the_calendar_is_no_fire_not_a_crash() -> None:
    end = datetime.max.replace(tzinfo=UTC)
    assert next_fire(CronSchedule(expr="0 0 1 1 *", timezone="Pacific/Kiritimati"), end) is None
    assert next_fire(CronSchedule(expr="* * * * *"), end) is None
    assert next_fire(EverySchedule(interval=timedelta(days=1), anchor=s(0)), end) is None


def test_fires_between_respects_limit() -> None:
    sched = CronSchedule(expr="* * * * * *")
    assert len(fires_between(sched, s(0), s(1000), 7)) == 7
    assert fires_between(sched, s(0), s(0), 7) == []


def test_next_fire_is_fast() -> None:
    cases = [
        CronSchedule(expr="0 9 * * MON-FRI", timezone="Europe/Paris"),
        CronSchedule(expr="*/10 * * * * *", timezone="America/New_York"),
        CronSchedule(expr="30 1 * * *", timezone="America/New_York", dst_fold="both"),
        CronSchedule(expr="@hourly"),
    ]
    for sched in cases:
        current = datetime(2024, 1, 1, tzinfo=UTC)
        begin = time.perf_counter()
        for _ in range(500):
            nxt = next_fire(sched, current)
            assert nxt is not None
            current = nxt
        per_call = (time.perf_counter() - begin) / 500
        assert per_call < 1e-3, f"{sched.expr}: {per_call * 1e6:.0f} µs per call"


# -- jitter ----------------------------------------------------------------------------------


def test_jitter_is_deterministic_and_bounded() -> None:
    sched = EverySchedule(interval=timedelta(seconds=10), anchor=s(0), jitter=timedelta(seconds=5))
    offsets = [jitter_offset(sched, "job-1", s(10 * i)) for i in range(200)]
    assert offsets == [jitter_offset(sched, "job-1", s(10 * i)) for i in range(200)]
    assert all(timedelta(0) <= o <= timedelta(seconds=5) for o in offsets)
    assert len(set(offsets)) > 150  # spread out, not constant
    assert offsets != [jitter_offset(sched, "job-2", s(10 * i)) for i in range(200)]
    # The same instant written in another offset is the same fire.
    plus2 = timezone(timedelta(hours=2))
    assert jitter_offset(sched, "job-1", s(10).astimezone(plus2)) == offsets[1]


def test_no_jitter_means_zero() -> None:
    assert jitter_offset(CronSchedule(expr="* * * * *"), "j", T0) == timedelta(0)
    assert jitter_offset(AtSchedule(at=T0), "j", T0) == timedelta(0)


@settings(max_examples=50, deadline=None)
@given(
    jitter_us=st.integers(1, 86_400 * 10**6 - 1),
    job_id=st.text(min_size=1, max_size=20),
    seconds=st.integers(0, 10**9),
)
def test_jitter_stays_in_range(jitter_us: int, job_id: str, seconds: int) -> None:
    sched = CronSchedule(expr="* * * * *", jitter=timedelta(microseconds=jitter_us))
    offset = jitter_offset(sched, job_id, s(seconds))
    assert timedelta(0) <= offset <= timedelta(microseconds=jitter_us)


# -- parse_interval --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1500ms", timedelta(seconds=1.5)),
        ("30", timedelta(seconds=30)),
        ("2.5", timedelta(seconds=2.5)),
        ("1.5h", timedelta(minutes=90)),
        ("  10S ", timedelta(seconds=10)),
        ("1", timedelta(seconds=1)),
    ],
)
def test_parse_interval(text: str, expected: timedelta) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", 'interval "0" must be at least 1 second'),
        ("0s", 'interval "0s" must be at least 1 second'),
        ("500ms", 'interval "500ms" must be at least 1 second'),
        ("-5", 'interval "-5" must be at least 1 second'),
        (
            "5x",
            'invalid every "5x": use seconds (30) or units such as 90s, 5m, 1h30m, 2d or 500ms',
        ),
        ("", "every is empty: use seconds (30) or units such as 90s, 5m, 1h30m, 2d or 500ms"),
        (
            "1h-5m",
            'invalid every "1h-5m": use seconds (30) or units such as 90s, 5m, 1h30m, 2d or 500ms',
        ),
        ("99999999999999d", 'every "99999999999999d" is out of range'),
        ("40000d", 'interval "40000d" is longer than 100 years'),
    ],
)
def test_parse_interval_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_interval(text)
    assert str(info.value) == message
    assert info.value.field == "every"


def test_format_interval_inverts_parse_interval() -> None:
    for text in ("90s", "5m", "1h30m", "2d", "1500ms", "1d2h3m4s"):
        assert parse_interval(format_interval(parse_interval(text))) == parse_interval(text)
    assert format_interval(timedelta(seconds=5400)) == "1h30m"
    assert format_interval(timedelta(seconds=90)) == "1m30s"


# -- make_schedule ---------------------------------------------------------------------------


def test_make_cron_schedule() -> None:
    sched = make_schedule(
        cron="0  9 * * MON-FRI",
        timezone="Europe/Paris",
        dst_gap="skip",
        dst_fold="both",
        start="2030-01-01T00:00:00Z",
        end=datetime(2031, 1, 1, tzinfo=UTC),
        jitter="30s",
        now=T0,
    )
    assert sched == CronSchedule(
        expr="0 9 * * MON-FRI",
        timezone="Europe/Paris",
        dst_gap="skip",
        dst_fold="both",
        start=datetime(2030, 1, 1, tzinfo=UTC),
        end=datetime(2031, 1, 1, tzinfo=UTC),
        jitter=timedelta(seconds=30),
    )


def test_make_at_schedule_from_text_or_datetime() -> None:
    assert make_schedule(at="2030-06-01T09:00:00Z", now=T0) == AtSchedule(
        at=datetime(2030, 6, 1, 9, tzinfo=UTC)
    )
    paris = make_schedule(at="2030-06-01T09:00:00+02:00", now=T0)
    assert isinstance(paris, AtSchedule)
    assert paris.at == datetime(2030, 6, 1, 7, tzinfo=UTC)
    assert paris.at.tzinfo is UTC
    aware = datetime(2030, 6, 1, 9, tzinfo=ZoneInfo("Europe/Paris"))
    assert make_schedule(at=aware, now=T0) == AtSchedule(at=datetime(2030, 6, 1, 7, tzinfo=UTC))


def test_make_every_schedule() -> None:
    for every in ("5m", 300, 300.0, timedelta(minutes=5)):
        sched = make_schedule(every=every, now=T0)
        assert sched == EverySchedule(interval=timedelta(minutes=5), anchor=T0)
    anchored = make_schedule(every="1h", anchor="2030-01-01T00:30:00Z", now=T0)
    assert isinstance(anchored, EverySchedule)
    assert anchored.anchor == datetime(2030, 1, 1, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({}, "schedule", "give exactly one of cron, at or every"),
        (
            {"cron": "* * * * *", "every": "5m"},
            "schedule",
            "give exactly one of cron, at or every (got cron and every)",
        ),
        (
            {"at": "2030-06-01T09:00:00"},
            "at",
            'at "2030-06-01T09:00:00" has no UTC offset: add one, as in 2030-06-01T09:00:00Z '
            "or 2030-06-01T09:00:00+02:00",
        ),
        (
            {"at": datetime(2030, 6, 1, 9)},
            "at",
            'at "2030-06-01 09:00:00" has no UTC offset: add one, as in 2030-06-01T09:00:00Z '
            "or 2030-06-01T09:00:00+02:00",
        ),
        (
            {"at": "next tuesday"},
            "at",
            'at "next tuesday" is not an ISO 8601 date-time such as 2030-06-01T09:00:00Z',
        ),
        (
            {"cron": "* * * * *", "timezone": "Mars/Olympus"},
            "timezone",
            'unknown time zone "Mars/Olympus": use an IANA name such as "Europe/Paris" or "UTC"',
        ),
        (
            {"cron": "* * * * *", "timezone": "../etc/passwd"},
            "timezone",
            'unknown time zone "../etc/passwd": use an IANA name such as "Europe/Paris" or "UTC"',
        ),
        (
            {"cron": "0 25 * * *"},
            "cron",
            'invalid cron "0 25 * * *": field 2 (hour) value 25 is out of range 0-23',
        ),
        (
            {"cron": "0 0 30 2 *"},
            "cron",
            'cron "0 0 30 2 *" never fires: no date matches its day and month fields',
        ),
        (
            {"cron": "* * * * *", "dst_gap": "later"},
            "dst_gap",
            'dst_gap "later" must be "shift" or "skip"',
        ),
        (
            {"cron": "* * * * *", "dst_fold": "twice"},
            "dst_fold",
            'dst_fold "twice" must be "first", "last" or "both"',
        ),
        (
            {"cron": "* * * * *", "start": "2031-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"},
            "end",
            "start (2031-01-01T00:00:00+00:00) must be before end (2030-01-01T00:00:00+00:00)",
        ),
        ({"cron": "* * * * *", "jitter": -1}, "jitter", 'jitter "-1" must not be negative'),
        ({"cron": "* * * * *", "jitter": "1d"}, "jitter", 'jitter "1d" must be less than one day'),
        ({"every": "0s"}, "every", 'interval "0s" must be at least 1 second'),
        ({"every": 0}, "every", 'interval "0s" must be at least 1 second'),
        ({"every": True}, "every", "every must be an interval, not a boolean"),
        (
            {"every": "5m", "timezone": "Europe/Paris"},
            "timezone",
            "timezone and DST policies apply to cron schedules; every counts absolute time "
            "(use cron for wall-clock times)",
        ),
        (
            {"at": "2030-06-01T09:00:00Z", "jitter": "5s"},
            "jitter",
            "jitter does not apply to an at schedule",
        ),
        (
            {"at": "2030-06-01T09:00:00Z", "start": "2030-01-01T00:00:00Z"},
            "start",
            "start does not apply to an at schedule",
        ),
        (
            {"cron": "* * * * *", "anchor": "2030-01-01T00:00:00Z"},
            "anchor",
            "anchor applies to every schedules only",
        ),
    ],
)
def test_make_schedule_rejects(kwargs: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make_schedule(now=T0, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert info.value.field == field


# -- storage and display ---------------------------------------------------------------------


def test_round_trip_examples() -> None:
    examples: list[Schedule] = [
        AtSchedule(at=datetime(2030, 6, 1, 9, 0, 0, 123_456, tzinfo=UTC)),
        EverySchedule(interval=timedelta(seconds=1.5), anchor=T0),
        EverySchedule(
            interval=timedelta(days=2, microseconds=7),
            anchor=T0,
            start=s(1),
            end=s(2),
            jitter=timedelta(milliseconds=250),
        ),
        CronSchedule(expr="0 9 * * MON-FRI", timezone="Europe/Paris", dst_fold="both"),
        CronSchedule(expr="@hourly", dst_gap="skip", start=s(0), end=s(10), jitter=timedelta(1)),
    ]
    for sched in examples:
        data = schedule_to_dict(sched)
        assert schedule_from_dict(json.loads(json.dumps(data))) == sched


instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650))
schedules = st.one_of(
    st.builds(AtSchedule, at=instants),
    st.builds(
        EverySchedule,
        interval=durations,
        anchor=instants,
        start=st.none() | instants,
        end=st.none() | instants,
        jitter=durations,
    ),
    st.builds(
        CronSchedule,
        expr=st.sampled_from(["* * * * *", "0 9 * * MON-FRI", "*/5 * * * * *"]),
        timezone=st.sampled_from(["UTC", "Europe/Paris", "Pacific/Chatham"]),
        dst_gap=st.sampled_from(["shift", "skip"]),
        dst_fold=st.sampled_from(["first", "last", "both"]),
        start=st.none() | instants,
        end=st.none() | instants,
        jitter=durations,
    ),
)


@settings(max_examples=200, deadline=None)
@given(sched=schedules)
def test_round_trip_is_exact(sched: Schedule) -> None:
    data = schedule_to_dict(sched)
    back = schedule_from_dict(json.loads(json.dumps(data)))
    assert back == sched
    assert schedule_to_dict(back) == data


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"kind": "weekly"},
        {"kind": "at"},
        {"kind": "at", "at": "2030-01-01T00:00:00"},
        {"kind": "every", "interval": "x", "anchor": "2030-01-01T00:00:00Z"},
        {"kind": "cron", "expr": "* * * * *", "dst_gap": "never"},
    ],
)
def test_from_dict_rejects_malformed(data: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match="malformed schedule"):
        schedule_from_dict(data)


def test_describe() -> None:
    assert (
        describe(CronSchedule(expr="0 9 * * MON-FRI", timezone="Europe/Paris"))
        == "cron 0 9 * * MON-FRI (Europe/Paris)"
    )
    assert (
        describe(CronSchedule(expr="30 1 * * *", timezone="America/New_York", dst_fold="both"))
        == "cron 30 1 * * * (America/New_York) dst shift/both"
    )
    assert describe(AtSchedule(at=datetime(2030, 6, 1, 9, tzinfo=UTC))) == "at 2030-06-01T09:00:00Z"
    assert describe(EverySchedule(interval=timedelta(minutes=90), anchor=T0)) == "every 1h30m"
    assert (
        describe(
            EverySchedule(
                interval=timedelta(minutes=5),
                anchor=T0,
                end=datetime(2031, 1, 1, tzinfo=UTC),
                jitter=timedelta(seconds=10),
            )
        )
        == "every 5m until 2031-01-01T00:00:00Z jitter 10s"
    )


# -- DST: differential test against the brute-force reference --------------------------------

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # DST is 30 minutes
    "Pacific/Chatham",  # +12:45 / +13:45, changes at 02:45
    "Antarctica/Troll",  # +00 / +02: two-hour jumps
    "America/Sao_Paulo",  # DST until 2019, changing at midnight
    "America/Santiago",  # changes at 24:00
    "Australia/Sydney",
    "Asia/Tehran",  # +03:30 / +04:30 until 2022
    "America/St_Johns",  # -03:30 / -02:30
    "Europe/Moscow",  # permanent changes in 2011 and 2014
    "Pacific/Apia",  # skipped 30 December 2011 (24 hours)
    "Asia/Pyongyang",  # +09 -> +08:30 (2015) -> +09 (2018)
    "Asia/Kolkata",  # no DST
]


@cache
def transitions(tz: str, year: int) -> list[datetime]:
    """The instants (naive UTC, to the minute) where the zone's offset changes in ``year``."""
    zone = ZoneInfo(tz)

    def offset(instant: datetime) -> timedelta | None:
        return instant.replace(tzinfo=UTC).astimezone(zone).utcoffset()

    found = []
    day = datetime(year, 1, 1)
    for _ in range(366):
        nxt = day + timedelta(days=1)
        if offset(day) != offset(nxt):
            lo, hi = day, nxt
            while hi - lo > timedelta(minutes=1):
                mid = (lo + (hi - lo) / 2).replace(second=0, microsecond=0)
                if mid <= lo:
                    mid = lo + timedelta(minutes=1)
                if offset(mid) == offset(lo):
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        day = nxt
    return found


@st.composite
def near_transitions(draw: st.DrawFn, tz: str) -> datetime:
    """An instant close to one of the zone's transitions (or anywhere, now and then)."""
    year = draw(st.integers(1990, 2090))
    moments = transitions(tz, year)
    if not moments or draw(st.integers(0, 9)) == 0:
        return draw(
            st.datetimes(
                min_value=datetime(year, 1, 1),
                max_value=datetime(year, 12, 31),
                timezones=st.just(UTC),
            )
        )
    moment = draw(st.sampled_from(moments))
    shift = draw(st.integers(-4 * 3600, 4 * 3600))
    micro = draw(st.sampled_from([0, 0, 500_000]))
    return (moment + timedelta(seconds=shift, microseconds=micro)).replace(tzinfo=UTC)


dst_exprs = st.one_of(
    st.tuples(
        st.sampled_from(["", "0 ", "*/20 ", "30 ", "*/7 ", "59 "]),
        st.sampled_from(["0", "30", "*/15", "*", "45", "0,30", "*/7", "15-45/15", "59"]),
        st.sampled_from(["*", "0", "1", "2", "3", "23", "0-4", "*/2", "1-3", "1,2,3", "22-23"]),
        st.sampled_from(["* * *", "* * *", "* * *", "*/2 * *", "* * SUN", "L * *", "1-7 * SUN"]),
    ).map(lambda p: f"{p[0]}{p[1]} {p[2]} {p[3]}"),
    st.sampled_from(["@hourly", "@daily", "0 12 * * *", "* * * * *", "0 0 1 * *"]),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    tz=st.sampled_from(ZONES),
    gap=st.sampled_from(["shift", "skip"]),
    fold=st.sampled_from(["first", "last", "both"]),
    expr=dst_exprs,
)
def test_next_fire_matches_the_reference_across_transitions(
    data: st.DataObject, tz: str, gap: str, fold: str, expr: str
) -> None:
    after = data.draw(near_transitions(tz))
    sched = CronSchedule(expr=expr, timezone=tz, dst_gap=gap, dst_fold=fold)  # type: ignore[arg-type]
    current: datetime | None = after
    for _ in range(4):
        assert current is not None
        expected = cron_reference.next_fire(expr, tz, gap, fold, current)
        got = next_fire(sched, current)
        assert got == expected, f"after {current.isoformat()}"
        if got is None:
            break
        current = got


def test_transitions_helper_finds_new_york_2024() -> None:
    assert transitions("America/New_York", 2024) == [
        datetime(2024, 3, 10, 7, 0),
        datetime(2024, 11, 3, 6, 0),
    ]


TRANSITION_YEARS = [
    ("America/New_York", 2024),
    ("America/New_York", 2071),
    ("Europe/London", 2024),
    ("Australia/Lord_Howe", 2024),
    ("Pacific/Chatham", 2024),
    ("Antarctica/Troll", 2024),
    ("Antarctica/Troll", 2090),
    ("Australia/Sydney", 2030),
    ("America/St_Johns", 2026),
    ("America/Santiago", 2025),
    ("America/Sao_Paulo", 2018),
    ("Asia/Tehran", 2021),
    ("Europe/Moscow", 2011),
    ("Europe/Moscow", 2014),
    ("Pacific/Apia", 2011),
    ("Asia/Pyongyang", 2015),
    ("Asia/Pyongyang", 2018),
]

dense_exprs = st.tuples(
    st.sampled_from(["", "", "0 ", "*/20 ", "30 "]),
    st.sampled_from(["0", "30", "*/15", "*/10", "0,30", "*", "45", "59", "15-45/15"]),
    st.sampled_from(["*", "*", "*", "0-3", "1-2", "*/2", "1", "2", "0"]),
).map(lambda p: f"{p[0]}{p[1]} {p[2]} * * *")


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    where=st.sampled_from(TRANSITION_YEARS),
    gap=st.sampled_from(["shift", "skip"]),
    fold=st.sampled_from(["first", "last", "both"]),
    expr=dense_exprs,
)
def test_successive_fires_through_a_transition_match_the_reference(
    data: st.DataObject, where: tuple[str, int], gap: str, fold: str, expr: str
) -> None:
    tz, year = where
    moment = data.draw(st.sampled_from(transitions(tz, year)))
    lead = data.draw(st.integers(0, 3 * 3600))
    after = (moment - timedelta(seconds=lead)).replace(tzinfo=UTC)
    sched = CronSchedule(expr=expr, timezone=tz, dst_gap=gap, dst_fold=fold)  # type: ignore[arg-type]
    current: datetime | None = after
    for _ in range(10):
        assert current is not None
        expected = cron_reference.next_fire(expr, tz, gap, fold, current)
        got = next_fire(sched, current)
        assert got == expected, f"after {current.isoformat()}"
        if got is None:
            break
        # Also from a point between the previous fire and this one.
        if current + timedelta(seconds=2) < got:
            middle = current + (got - current) / 2
            assert next_fire(sched, middle) == cron_reference.next_fire(expr, tz, gap, fold, middle)
        current = got
