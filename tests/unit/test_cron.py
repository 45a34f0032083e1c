"""Cron expressions: known edge cases, exact error messages, and a differential test against the
independent brute-force reference in ``cron_reference``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncely.domain.cron import parse_cron
from oncely.domain.errors import InvalidInput
from oncely.domain.schedule import CronSchedule, next_fire
from tests.unit import cron_reference


def fires(expr: str, after: datetime, n: int) -> list[datetime]:
    cron = parse_cron(expr)
    out: list[datetime] = []
    current: datetime | None = after
    while len(out) < n:
        assert current is not None
        current = cron.next_local(current)
        if current is None:
            break
        out.append(current)
    return out


def days(expr: str, after: datetime, n: int) -> list[str]:
    return [f.strftime("%Y-%m-%d %a") for f in fires(expr, after, n)]


JAN_2024 = datetime(2024, 1, 1)


# -- calendar edge cases ---------------------------------------------------------------------


def test_feb_29_only_in_leap_years() -> None:
    assert fires("0 0 29 2 *", datetime(2023, 1, 1), 3) == [
        datetime(2024, 2, 29),
        datetime(2028, 2, 29),
        datetime(2032, 2, 29),
    ]
    # 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
    assert fires("0 0 29 2 *", datetime(2096, 3, 1), 1) == [datetime(2104, 2, 29)]
    assert fires("0 0 29 2 *", datetime(1999, 1, 1), 1) == [datetime(2000, 2, 29)]


def test_day_31_skips_short_months() -> None:
    assert days("0 0 31 * *", JAN_2024, 4) == [
        "2024-01-31 Wed",
        "2024-03-31 Sun",
        "2024-05-31 Fri",
        "2024-07-31 Wed",
    ]


def test_last_day_of_month() -> None:
    assert days("0 0 L * *", datetime(2023, 1, 1), 3) == [
        "2023-01-31 Tue",
        "2023-02-28 Tue",
        "2023-03-31 Fri",
    ]
    assert days("0 0 L 2 *", JAN_2024, 1) == ["2024-02-29 Thu"]
    assert days("0 0 L-3 * *", JAN_2024, 3) == [
        "2024-01-28 Sun",
        "2024-02-26 Mon",
        "2024-03-28 Thu",
    ]


def test_nearest_weekday() -> None:
    # 2024-06-15 is a Saturday: the Friday before. 2024-09-15 is a Sunday: the Monday after.
    assert days("0 0 15W 6 *", JAN_2024, 1) == ["2024-06-14 Fri"]
    assert days("0 0 15W 9 *", JAN_2024, 1) == ["2024-09-16 Mon"]
    # A weekday 15th is itself.
    assert days("0 0 15W 1 *", datetime(2023, 12, 1), 1) == ["2024-01-15 Mon"]


def test_nearest_weekday_never_leaves_the_month() -> None:
    # 2024-06-01 is a Saturday: Monday the 3rd, not Friday 31 May.
    assert days("0 0 1W 6 *", JAN_2024, 1) == ["2024-06-03 Mon"]
    # 2024-09-01 is a Sunday: Monday the 2nd.
    assert days("0 0 1W 9 *", JAN_2024, 1) == ["2024-09-02 Mon"]
    # 2024-03-31 is a Sunday and the last day: Friday the 29th, not Monday 1 April.
    assert days("0 0 31W 3 *", JAN_2024, 1) == ["2024-03-29 Fri"]
    # A month without day 31 has no 31W.
    assert days("0 0 31W 4,5 *", JAN_2024, 1) == ["2024-05-31 Fri"]


def test_last_weekday_of_month() -> None:
    # August 2024 ends on Saturday 31, March 2024 on Sunday 31, April on Tuesday 30.
    assert days("0 0 LW 3,4,8 *", JAN_2024, 3) == [
        "2024-03-29 Fri",
        "2024-04-30 Tue",
        "2024-08-30 Fri",
    ]


def test_last_friday() -> None:
    assert days("0 0 * * 5L", JAN_2024, 3) == ["2024-01-26 Fri", "2024-02-23 Fri", "2024-03-29 Fri"]
    assert days("0 0 * * FRIL", JAN_2024, 1) == ["2024-01-26 Fri"]


def test_fifth_monday() -> None:
    assert days("0 0 * * MON#5", JAN_2024, 5) == [
        "2024-01-29 Mon",
        "2024-04-29 Mon",
        "2024-07-29 Mon",
        "2024-09-30 Mon",
        "2024-12-30 Mon",
    ]
    assert days("0 0 * * 1#2", JAN_2024, 1) == ["2024-01-08 Mon"]
    assert days("0 0 * * 7#1", JAN_2024, 1) == ["2024-01-07 Sun"]


def test_vixie_or_when_both_day_fields_are_restricted() -> None:
    # Days 1-7 OR any Monday (Vixie), not "the first Monday".
    assert days("0 0 1-7 * MON", datetime(2024, 1, 5), 6) == [
        "2024-01-06 Sat",
        "2024-01-07 Sun",
        "2024-01-08 Mon",
        "2024-01-15 Mon",
        "2024-01-22 Mon",
        "2024-01-29 Mon",
    ]


def test_vixie_and_when_a_day_field_starts_with_a_star() -> None:
    # `*/2` counts as unrestricted (it starts with *), so Vixie ANDs: Mondays on odd days.
    assert days("0 0 */2 * MON", JAN_2024, 4) == [
        "2024-01-15 Mon",
        "2024-01-29 Mon",
        "2024-02-05 Mon",
        "2024-02-19 Mon",
    ]
    # Same with the star in day-of-week: odd days that are Sun, Tue, Thu or Sat (0-7/2).
    assert days("0 0 1-5 * */2", JAN_2024, 3) == [
        "2024-01-02 Tue",
        "2024-01-04 Thu",
        "2024-02-01 Thu",
    ]


def test_vixie_day_rule_examples() -> None:
    # A star in either day field means both must match; both restricted means either may.
    assert fires("0 0 */2 * MON", JAN_2024, 1) == [datetime(2024, 1, 15)]
    assert fires("0 0 1-7 * MON", datetime(2024, 1, 5), 3) == [
        datetime(2024, 1, d) for d in (6, 7, 8)
    ]


def test_steps_on_ranges_and_impossible_dates() -> None:
    # `5-5/10` is the range 5-5 with a step: only minute 5 (cronsim 2.8 once read it as 5/10).
    assert fires("5-5/10 * * * *", JAN_2024, 2) == [
        datetime(2024, 1, 1, 0, 5),
        datetime(2024, 1, 1, 1, 5),
    ]
    # nW, L-n, and a date no month has all parse (the last one never matches).
    for expr in ("0 0 15W * *", "0 0 L-3 * *", "0 0 30 2 *"):
        parse_cron(expr)


def test_sunday_is_0_or_7_or_sun() -> None:
    expected = fires("0 0 * * 0", JAN_2024, 3)
    assert [d.weekday() for d in expected] == [6, 6, 6]
    assert fires("0 0 * * 7", JAN_2024, 3) == expected
    assert fires("0 0 * * SUN", JAN_2024, 3) == expected
    assert fires("0 0 * * sun", JAN_2024, 3) == expected
    # A range may end on Sunday.
    assert days("0 0 * * FRI-SUN", JAN_2024, 3) == [
        "2024-01-05 Fri",
        "2024-01-06 Sat",
        "2024-01-07 Sun",
    ]
    assert fires("0 0 * * 5-7", JAN_2024, 3) == fires("0 0 * * FRI-SUN", JAN_2024, 3)


def test_names_are_case_insensitive() -> None:
    assert fires("0 9 * jan-mar Mon-Fri", JAN_2024, 5) == fires("0 9 * 1-3 1-5", JAN_2024, 5)
    assert fires("0 0 1 Dec *", JAN_2024, 1) == [datetime(2024, 12, 1)]


@pytest.mark.parametrize(
    ("macro", "expr"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@HOURLY", "0 * * * *"),
    ],
)
def test_macros(macro: str, expr: str) -> None:
    assert fires(macro, datetime(2024, 5, 5, 5, 5), 3) == fires(expr, datetime(2024, 5, 5, 5, 5), 3)


def test_steps_ranges_and_lists() -> None:
    minutes = [f.minute for f in fires("*/15 * * * *", JAN_2024, 4)]
    assert minutes == [15, 30, 45, 0]
    assert [f.minute for f in fires("10-50/20 * * * *", JAN_2024, 3)] == [10, 30, 50]
    assert [f.minute for f in fires("5/25 * * * *", JAN_2024, 3)] == [5, 30, 55]
    assert [f.minute for f in fires("1,2,58-59 * * * *", JAN_2024, 5)] == [1, 2, 58, 59, 1]


def test_six_fields_start_with_seconds() -> None:
    assert fires("*/20 * * * * *", datetime(2024, 1, 1, 0, 0, 50), 3) == [
        datetime(2024, 1, 1, 0, 1, 0),
        datetime(2024, 1, 1, 0, 1, 20),
        datetime(2024, 1, 1, 0, 1, 40),
    ]
    assert fires("30 0 9 * * MON", JAN_2024, 2) == [
        datetime(2024, 1, 1, 9, 0, 30),
        datetime(2024, 1, 8, 9, 0, 30),
    ]
    # The seconds of a matching minute, then the first second of the next matching minute.
    assert fires("0,45 5 * * * *", datetime(2024, 1, 1, 0, 5, 10), 3) == [
        datetime(2024, 1, 1, 0, 5, 45),
        datetime(2024, 1, 1, 1, 5, 0),
        datetime(2024, 1, 1, 1, 5, 45),
    ]


def test_next_local_is_strictly_after_and_ignores_microseconds() -> None:
    cron = parse_cron("* * * * * *")
    assert cron.next_local(datetime(2024, 1, 1, 0, 0, 0)) == datetime(2024, 1, 1, 0, 0, 1)
    assert cron.next_local(datetime(2024, 1, 1, 0, 0, 0, 999_999)) == datetime(2024, 1, 1, 0, 0, 1)
    assert parse_cron("0 0 * * *").next_local(datetime(2024, 1, 1)) == datetime(2024, 1, 2)


def test_matches() -> None:
    cron = parse_cron("0 9 * * MON-FRI")
    assert cron.matches(datetime(2024, 1, 1, 9, 0))
    assert not cron.matches(datetime(2024, 1, 1, 9, 0, 1))
    assert not cron.matches(datetime(2024, 1, 6, 9, 0))
    with pytest.raises(ValueError, match="naive"):
        cron.matches(datetime(2024, 1, 1, 9, 0, tzinfo=UTC))


def test_impossible_expressions_return_none_quickly() -> None:
    for expr in ("0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30W 2 *", "0 0 */31 * MON#5"):
        begin = time.perf_counter()
        assert parse_cron(expr).next_local(JAN_2024) is None
        assert time.perf_counter() - begin < 0.5, expr
    assert parse_cron("0 0 30 2 *").never_matches
    assert not parse_cron("0 0 30 2 MON").never_matches  # OR: every Monday of February


def test_rare_expressions_are_found_decades_ahead() -> None:
    # Only a leap-year 29 February on a Monday: 2044, 2072, then 2112 (2100 is not leap).
    assert fires("0 0 * 2 MON#5", datetime(2073, 1, 1), 1) == [datetime(2112, 2, 29)]


def test_end_of_calendar_does_not_crash() -> None:
    assert parse_cron("0 0 1 1 *").next_local(datetime(9999, 6, 1)) is None


def test_typical_next_local_is_fast() -> None:
    cron = parse_cron("0 9 * * MON-FRI")
    begin = time.perf_counter()
    current = JAN_2024
    for _ in range(1000):
        nxt = cron.next_local(current)
        assert nxt is not None
        current = nxt
    per_call = (time.perf_counter() - begin) / 1000
    assert per_call < 1e-3, f"{per_call * 1e6:.0f} µs per call"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", 'invalid cron "* * * *": expected 5 or 6 fields, got 4'),
        ("* * * * * * *", 'invalid cron "* * * * * * *": expected 5 or 6 fields, got 7'),
        ("", "the cron expression is empty"),
        ("0 25 * * *", 'invalid cron "0 25 * * *": field 2 (hour) value 25 is out of range 0-23'),
        (
            "60 * * * * *",
            'invalid cron "60 * * * * *": field 1 (second) value 60 is out of range 0-59',
        ),
        (
            "0 0 0 * *",
            'invalid cron "0 0 0 * *": field 3 (day-of-month) value 0 is out of range 1-31',
        ),
        ("0 0 * 13 *", 'invalid cron "0 0 * 13 *": field 4 (month) value 13 is out of range 1-12'),
        (
            "0 0 * * 8",
            'invalid cron "0 0 * * 8": field 5 (day-of-week) value 8 is out of range 0-7',
        ),
        (
            "*/0 * * * *",
            'invalid cron "*/0 * * * *": field 1 (minute) step 0 in "*/0" is out of range 1-59',
        ),
        (
            "*/90 * * * *",
            'invalid cron "*/90 * * * *": field 1 (minute) step 90 in "*/90" is out of range 1-59',
        ),
        (
            "0 0 * FOO *",
            'invalid cron "0 0 * FOO *": field 4 (month) "FOO" is not a month number (1-12) '
            "or name (JAN-DEC)",
        ),
        (
            "0 0 * * FUN",
            'invalid cron "0 0 * * FUN": field 5 (day-of-week) "FUN" is not a day-of-week '
            "number (0-7) or name (SUN-SAT)",
        ),
        ("x * * * *", 'invalid cron "x * * * *": field 1 (minute) "X" is not a number'),
        (
            "L * * * *",
            'invalid cron "L * * * *": field 1 (minute) "L": L is only allowed in day-of-month '
            "(L, L-3, LW) and day-of-week (5L)",
        ),
        (
            "0 0 * L *",
            'invalid cron "0 0 * L *": field 4 (month) "L": L is only allowed in day-of-month '
            "(L, L-3, LW) and day-of-week (5L)",
        ),
        (
            "0 0 * * 15W",
            'invalid cron "0 0 * * 15W": field 5 (day-of-week) "15W": W is only allowed in '
            "day-of-month (15W, LW)",
        ),
        (
            "0 0 MON#2 * *",
            'invalid cron "0 0 MON#2 * *": field 3 (day-of-month) "MON#2": # is only allowed in '
            "day-of-week (MON#2)",
        ),
        (
            "0 0 * * MON#6",
            'invalid cron "0 0 * * MON#6": field 5 (day-of-week) "MON#6": the number after # '
            "must be 1-5",
        ),
        (
            "0 0 * * L",
            'invalid cron "0 0 * * L": field 5 (day-of-week) "L" needs a day, as in 5L or FRIL '
            "(the last Friday of the month)",
        ),
        (
            "0 0 1-L * *",
            'invalid cron "0 0 1-L * *": field 3 (day-of-month) "1-L": in day-of-month, L and W '
            "are written L, L-3, LW or 15W, and cannot be combined with ranges or steps",
        ),
        (
            "0 0 L-31 * *",
            'invalid cron "0 0 L-31 * *": field 3 (day-of-month) "L-31": the number after L- '
            "must be 0-30",
        ),
        (
            "0 0 W * *",
            'invalid cron "0 0 W * *": field 3 (day-of-month) "W": W takes one day number, as in '
            "15W (or LW)",
        ),
        (
            "0 0 32W * *",
            'invalid cron "0 0 32W * *": field 3 (day-of-month) value 32 is out of range 1-31',
        ),
        (
            "0 0 * * 1-5L",
            'invalid cron "0 0 * * 1-5L": field 5 (day-of-week) "1-5L": in day-of-week, L and # '
            "are written 5L or MON#2, and cannot be combined with ranges or steps",
        ),
        (
            "22-2 * * * *",
            'invalid cron "22-2 * * * *": field 1 (minute) range 22-2 is backwards; to wrap '
            "around write 22-59,0-2",
        ),
        (
            "1,,2 * * * *",
            'invalid cron "1,,2 * * * *": field 1 (minute) has an empty list item in "1,,2"',
        ),
        (
            "0 0 ? * MON",
            'invalid cron "0 0 ? * MON": field 3 (day-of-month) "?" is not supported; use *',
        ),
        (
            "@reboot",
            'invalid cron "@reboot": unknown macro @reboot; known macros are @yearly, @annually, '
            "@monthly, @weekly, @daily, @midnight, @hourly",
        ),
        (
            "*/x * * * *",
            'invalid cron "*/x * * * *": field 1 (minute) step "X" in "*/X" is not a number',
        ),
    ],
)
def test_invalid_expressions_say_where(expr: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_cron(expr)
    assert str(info.value) == message
    assert info.value.field == "cron"


def test_oversized_or_non_text_input() -> None:
    with pytest.raises(InvalidInput, match="longer than 1000 characters"):
        parse_cron("0," * 600 + "1 * * * *")
    with pytest.raises(InvalidInput, match="must be a string"):
        parse_cron(["0", "*", "*", "*", "*"])  # type: ignore[arg-type]


def test_whitespace_is_normalized() -> None:
    assert parse_cron("  0   9 *\t* *  ").text == "0 9 * * *"


# -- differential test against the brute-force reference -------------------------------------


def _items(
    lo: int, hi: int, names: list[str] | None = None, base: int = 0
) -> st.SearchStrategy[str]:
    number = st.integers(lo, hi)

    def show(v: int) -> st.SearchStrategy[str]:
        if names is not None and 0 <= v - base < len(names):
            return st.sampled_from([str(v), names[v - base], names[v - base].lower()])
        return st.just(str(v))

    value = number.flatmap(show)
    pair = st.tuples(number, number).map(sorted)
    ranged = pair.flatmap(lambda ab: st.tuples(show(ab[0]), show(ab[1]))).map("-".join)
    step = st.integers(1, hi)
    return st.one_of(
        st.just("*"),
        step.map(lambda s: f"*/{s}"),
        value,
        ranged,
        st.tuples(ranged, step).map(lambda t: f"{t[0]}/{t[1]}"),
        st.tuples(value, step).map(lambda t: f"{t[0]}/{t[1]}"),
    )


def _field(item: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(item, min_size=1, max_size=3).map(",".join)


DAY_NAMES = cron_reference.DAYS
MONTH_NAMES = cron_reference.MONTHS

seconds_field = _field(_items(0, 59))
minutes_field = _field(_items(0, 59))
hours_field = st.one_of(st.just("*"), _field(_items(0, 23)))
dom_item = st.one_of(
    _items(1, 31),
    st.just("L"),
    st.just("LW"),
    st.integers(0, 30).map(lambda n: f"L-{n}"),
    st.one_of(st.integers(1, 31), st.sampled_from([1, 2, 29, 30, 31])).map(lambda n: f"{n}W"),
)
dom_field = st.one_of(st.just("*"), _field(dom_item), dom_item.filter(lambda i: "W" in i))
month_field = st.one_of(st.just("*"), st.just("*"), _field(_items(1, 12, MONTH_NAMES, 1)))
dow_day = st.integers(0, 7).flatmap(
    lambda v: st.sampled_from([str(v), DAY_NAMES[v % 7]] if v < 7 else [str(v)])
)
dow_item = st.one_of(
    _items(0, 7, DAY_NAMES, 0),
    st.integers(1, 6).map(lambda v: f"{DAY_NAMES[v]}-SUN"),
    st.tuples(dow_day, st.integers(1, 5)).map(lambda t: f"{t[0]}#{t[1]}"),
    dow_day.map(lambda d: f"{d}L"),
)
dow_field = st.one_of(st.just("*"), _field(dow_item))

cron_exprs = st.one_of(
    st.tuples(minutes_field, hours_field, dom_field, month_field, dow_field).map(" ".join),
    st.tuples(seconds_field, minutes_field, hours_field, dom_field, month_field, dow_field).map(
        " ".join
    ),
    st.sampled_from(sorted(cron_reference.MACROS)),
)
local_times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=cron_exprs, after=local_times)
def test_next_local_matches_the_reference(expr: str, after: datetime) -> None:
    cron = parse_cron(expr)
    got = cron.next_local(after)
    assert got == cron_reference.next_local(expr, after)
    if got is not None:
        assert cron.matches(got)
        # Nothing matches in between (checked at the minute level near the start).
        assert got > after


@settings(max_examples=300, deadline=None)
@given(expr=cron_exprs, when=local_times)
def test_matches_agrees_with_the_reference(expr: str, when: datetime) -> None:
    when = when.replace(microsecond=0)
    assert parse_cron(expr).matches(when) == cron_reference.matches(expr, when)


@settings(max_examples=100, deadline=None)
@given(expr=cron_exprs, after=local_times, steps=st.integers(2, 4))
def test_successive_matches_agree(expr: str, after: datetime, steps: int) -> None:
    cron = parse_cron(expr)
    current: datetime | None = after
    for _ in range(steps):
        assert current is not None
        expected = cron_reference.next_local(expr, current)
        current = cron.next_local(current)
        assert current == expected
        if current is None:
            break


def test_reference_self_check() -> None:
    """The reference agrees with dates worked out by hand, so a shared mistake is unlikely."""
    assert cron_reference.next_local("0 0 1W 6 *", JAN_2024) == datetime(2024, 6, 3)
    assert cron_reference.next_local("0 0 */2 * MON", JAN_2024) == datetime(2024, 1, 15)
    assert cron_reference.next_local("0 0 * * 5L", JAN_2024) == datetime(2024, 1, 26)
    assert cron_reference.next_local("0 0 LW 8 *", JAN_2024) == datetime(2024, 8, 30)
    assert cron_reference.next_local("0 0 30 2 *", JAN_2024) is None


special_dom = st.lists(
    st.one_of(
        st.sampled_from(["L", "LW", "L-1", "L-2", "1W", "2W", "28W", "29W", "30W", "31W"]),
        st.integers(1, 31).map(lambda n: f"{n}W"),
    ),
    min_size=1,
    max_size=2,
).map(",".join)


@settings(max_examples=60, deadline=None)
@given(dom=special_dom, dow=st.sampled_from(["*", "MON", "*/2", "FRI#2", "SUN"]), after=local_times)
def test_a_year_of_day_of_month_specials_matches_the_reference(
    dom: str, dow: str, after: datetime
) -> None:
    expr = f"0 12 {dom} * {dow}"
    cron = parse_cron(expr)
    current: datetime | None = after
    for _ in range(14):
        assert current is not None
        expected = cron_reference.next_local(expr, current)
        current = cron.next_local(current)
        assert current == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=cron_exprs, after=local_times, micro=st.integers(0, 999_999))
def test_the_utc_fast_path_agrees_with_the_zone_path(
    expr: str, after: datetime, micro: int
) -> None:
    """UTC skips the DST resolution (the scheduler's hot path). Etc/GMT has no transitions
    either but takes the general path: both, and the reference, must agree."""
    when = after.replace(microsecond=micro, tzinfo=UTC)
    fast = next_fire(CronSchedule(expr=expr, timezone="UTC"), when)
    general = next_fire(CronSchedule(expr=expr, timezone="Etc/GMT"), when)
    assert fast == general
    expected = cron_reference.next_local(expr, after.replace(microsecond=0))
    assert fast == (None if expected is None else expected.replace(tzinfo=UTC))
