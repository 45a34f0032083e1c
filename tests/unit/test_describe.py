"""Schedules in words: a table of expressions and the text people read, and a property test that
every valid expression can be described."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncely.domain.cron import parse_cron
from oncely.domain.describe import (
    cron_in_words,
    dst_policy_in_words,
    duration_in_words,
    schedule_in_words,
)
from oncely.domain.errors import InvalidInput
from oncely.domain.schedule import AtSchedule, CronSchedule, EverySchedule
from tests.unit.test_cron import cron_exprs

# fmt: off
TABLE: list[tuple[str, str]] = [
    # times of day
    ("0 9 * * *", "At 09:00"),
    ("0 9,17 * * *", "At 09:00 and 17:00"),
    ("30 8,12 * * *", "At 08:30 and 12:30"),
    ("0,30 9 * * *", "At 09:00 and 09:30"),
    ("30 0 9 * * *", "At 09:00:30"),
    ("0 0 9 * * *", "At 09:00"),
    ("0,30 0 9 * * *", "At 09:00:00 and 09:00:30"),
    # every n
    ("* * * * *", "Every minute"),
    ("* * * * * *", "Every second"),
    ("*/10 * * * * *", "Every 10 seconds"),
    ("*/5 * * * *", "Every 5 minutes"),
    ("0-59 * * * *", "Every minute"),
    ("*/1 * * * *", "Every minute"),
    ("0 * * * *", "Every hour, on the hour"),
    ("15 * * * *", "Every hour, at minute 15"),
    ("0 30 * * * *", "Every hour, at minute 30"),
    ("20 15 * * * *", "Every hour, at minute 15, second 20"),
    ("0 */2 * * *", "Every 2 hours, on the hour, from 00:00"),
    ("30 */5 * * * *", "Every 5 minutes, at second 30"),
    # steps that do not divide their field are listed, not "every 7 minutes"
    ("*/7 * * * *", "At minutes 0, 7, 14, 21, 28, 35, 42, 49 and 56"),
    ("*/45 * * * *", "At minutes 0 and 45"),
    ("0 */5 * * *", "At 00:00, 05:00, 10:00, 15:00 and 20:00"),
    # Quartz n/step runs to the field's end; a range whose step leaves one value is that value
    ("5/10 * * * *", "Every 10 minutes from minute 5 through 55"),
    ("5-5/10 * * * *", "Every hour, at minute 5"),
    ("10-20 * * * *", "Every minute from minute 10 through 20"),
    ("0-30/10 * * * * *", "Every 10 seconds from second 0 through 30"),
    ("0,10-12 * * * *", "At minutes 0 and 10 through 12"),
    # several items are read as the values they cover: * in a list is everything, duplicates go
    ("1-40/16,0-4 * * * *", "At minutes 0 through 4, 17 and 33"),
    ("*/46,0-46/1 * * * * *", "Every second from second 0 through 46"),
    ("29,29 23 0-21/5 * * *", "Every 5 hours from 00:23:29 through 20:23:29"),
    ("* *,20-21/22,* * * *", "Every minute"),
    ("0 0,12,6,18 * * *", "Every 6 hours, on the hour, from 00:00"),
    ("*/15,5 * * * *", "At minutes 0, 5, 15, 30 and 45"),
    ("0,20,40 * * * *", "Every 20 minutes"),
    ("10,30,50 * * * *", "Every 20 minutes from minute 10 through 50"),
    # hours
    ("0 9-17 * * *", "Every hour from 09:00 through 17:00"),
    ("30 8-18/3 * * *", "Every 3 hours from 08:30 through 17:30"),
    ("*/15 9-17 * * *", "Every 15 minutes, from 09:00 through 17:59"),
    ("*/30 * 2 * * *", "Every 30 seconds, from 02:00 through 02:59"),
    ("*/10 0-4 9 * * *", "Every 10 seconds, during minutes 0 through 4, from 09:00 through 09:59"),
    ("* 5 * * * *", "Every second, during minute 5"),
    ("*/5 */2 * * *", "Every 5 minutes, during every 2nd hour"),
    ("*/5 1,3 * * *", "Every 5 minutes, during the 01:00 and 03:00 hours"),
    ("0 0,6,12,18,1,2,3,4,5 * * *",
     "At 00:00, 01:00, 02:00, 03:00, 04:00, 05:00, 06:00, 12:00 and 18:00"),
    # days of the week
    ("0 9 * * MON-FRI", "At 09:00, Monday through Friday"),
    ("0 9 * * 1-5", "At 09:00, Monday through Friday"),
    ("0 0 * * 1", "At 00:00, on Monday"),
    ("0 0 * * 7", "At 00:00, on Sunday"),
    ("0 0 * * SUN", "At 00:00, on Sunday"),
    ("0 12 * * 1,3,5", "At 12:00, on Monday, Wednesday and Friday"),
    ("0 0 * * SAT,SUN", "At 00:00, on Saturday and Sunday"),
    ("0 0 * * FRI-SUN", "At 00:00, Friday through Sunday"),
    ("0 0 * * 0-6", "At 00:00"),
    ("0 0 * * MON#2", "At 00:00, on the second Monday of the month"),
    ("0 0 * * 5L", "At 00:00, on the last Friday of the month"),
    ("0 0 * * 5L,FRIL", "At 00:00, on the last Friday of the month"),
    ("0 0 * * MON#1,FRIL", "At 00:00, on the first Monday of the month and the last Friday "
                           "of the month"),
    # days of the month
    ("0 2 L * *", "At 02:00 on the last day of the month"),
    ("0 0 LW * *", "At 00:00 on the last weekday of the month"),
    ("0 0 15W * *", "At 00:00 on the weekday nearest the 15th of the month"),
    ("0 0 L-1 * *", "At 00:00 on the 2nd-last day of the month"),
    ("0 0 L-3 * *", "At 00:00 on the 4th-last day of the month"),
    ("0 0 1,15 * *", "At 00:00 on the 1st and 15th of the month"),
    ("0 0 1-7 * *", "At 00:00 on the 1st through 7th of the month"),
    ("0 0 1,L * *", "At 00:00 on the 1st and the last day of the month"),
    ("0 0 1-3,*/5 * *", "At 00:00 on the 1st through 3rd, 6th, 11th, 16th, 21st, 26th and 31st "
                        "of the month"),
    ("0 0 2,3,21,22,23 * *", "At 00:00 on the 2nd, 3rd and 21st through 23rd of the month"),
    ("0 0 1,11,21 * *", "At 00:00 on every 10th day from the 1st through the 21st of the month"),
    ("0 0 1,L,15 * *", "At 00:00 on the 1st and 15th and the last day of the month"),
    ("0 0 1-31 * *", "At 00:00"),
    # the Vixie day rule: OR when both are restricted, AND when one starts with *
    ("0 0 1 * MON", "At 00:00 on the 1st of the month or on a Monday"),
    ("0 0 1,15 * MON-FRI", "At 00:00 on the 1st and 15th of the month or on any of Monday "
                           "through Friday"),
    ("0 0 */2 * MON", "At 00:00 on every 2nd day starting on the 1st of the month, if it is "
                      "a Monday"),
    ("0 0 1 * */2", "At 00:00 on the 1st of the month, if it is a day from Tuesday, "
                    "Thursday, Saturday and Sunday"),
    ("0 0 13 * 5", "At 00:00 on the 13th of the month or on a Friday"),
    ("0 0 1 * 0-6", "At 00:00"),  # either may match, and the day of week always does
    # months
    ("0 0 1 1 *", "At 00:00 on the 1st of the month, in January"),
    ("0 0 * JAN-MAR *", "At 00:00, in January through March"),
    ("0 0 * */3 *", "At 00:00, in January, April, July and October"),
    ("0 0 * 6,7 *", "At 00:00, in June and July"),
    ("0 0 * jan MON", "At 00:00, on Monday, in January"),  # names in any case
    # macros
    ("@hourly", "Every hour, on the hour"),
    ("@daily", "At 00:00"),
    ("@midnight", "At 00:00"),
    ("@weekly", "At 00:00, on Sunday"),
    ("@monthly", "At 00:00 on the 1st of the month"),
    ("@yearly", "At 00:00 on the 1st of the month, in January"),
    ("@annually", "At 00:00 on the 1st of the month, in January"),
    ("@DAILY", "At 00:00"),
    # parses, never fires (make_schedule refuses it; the words say why)
    ("0 0 30 2 *", "At 00:00 on the 30th of the month, in February (no date matches: never "
                   "fires)"),
]
# fmt: on


@pytest.mark.parametrize(("expr", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_cron_in_words(expr: str, expected: str) -> None:
    assert cron_in_words(expr) == expected


def test_invalid_expressions_raise_the_parsers_error() -> None:
    with pytest.raises(InvalidInput) as info:
        cron_in_words("0 25 * * *")
    assert info.value.field == "cron"
    assert "field 2 (hour) value 25" in str(info.value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=cron_exprs)
def test_every_valid_expression_has_words(expr: str) -> None:
    words = cron_in_words(expr)
    assert words
    assert words[0].isupper()
    assert "  " not in words
    assert not words.endswith((",", " "))


def test_durations() -> None:
    assert duration_in_words(timedelta(seconds=1)) == "1 second"
    assert duration_in_words(timedelta(seconds=90)) == "1 minute 30 seconds"
    assert duration_in_words(timedelta(hours=2)) == "2 hours"
    assert duration_in_words(timedelta(days=1, hours=1)) == "1 day 1 hour"
    assert duration_in_words(timedelta(milliseconds=1500)) == "1500 milliseconds"
    assert duration_in_words(timedelta(0)) == "0 seconds"


T = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_schedules_in_words() -> None:
    assert (
        schedule_in_words(CronSchedule("0 9 * * MON-FRI", timezone="Europe/Paris"))
        == "At 09:00, Monday through Friday (Europe/Paris)"
    )
    assert schedule_in_words(AtSchedule(T)) == "Once, at 2030-01-01T12:00:00Z"
    assert (
        schedule_in_words(EverySchedule(timedelta(minutes=5), T))
        == "Every 5 minutes, counted from 2030-01-01T12:00:00Z"
    )
    assert (
        schedule_in_words(EverySchedule(timedelta(minutes=1), T))
        == "Every minute, counted from 2030-01-01T12:00:00Z"
    )
    assert (
        schedule_in_words(EverySchedule(timedelta(seconds=5400), T))
        == "Every 1 hour 30 minutes, counted from 2030-01-01T12:00:00Z"
    )
    assert schedule_in_words(
        CronSchedule(
            "0 2 * * *",
            timezone="America/New_York",
            dst_gap="skip",
            dst_fold="both",
            start=T,
            end=T + timedelta(days=30),
            jitter=timedelta(seconds=30),
        )
    ) == (
        "At 02:00 (America/New_York); a time skipped by a clock change does not fire; a time "
        "that occurs twice fires both times; from 2030-01-01T12:00:00Z until "
        "2030-01-31T12:00:00Z; each fire delayed by up to 30 seconds"
    )
    assert schedule_in_words(EverySchedule(timedelta(hours=1), T, end=T + timedelta(days=1))) == (
        "Every hour, counted from 2030-01-01T12:00:00Z; until 2030-01-02T12:00:00Z"
    )
    assert schedule_in_words(CronSchedule("@daily", start=T)).endswith(
        "(UTC); from 2030-01-01T12:00:00Z"
    )


def test_dst_policy_in_words() -> None:
    assert dst_policy_in_words(CronSchedule("0 2 * * *")) == (
        "a time skipped by a clock change fires when the clock jumps; a time that occurs twice "
        "fires the first time"
    )
    assert "second time" in dst_policy_in_words(CronSchedule("0 2 * * *", dst_fold="last"))


_TIMES = re.compile(r"^At ((?:\d\d:\d\d(?::\d\d)?(?:, | and )?)+)(?:$|[ ,])")


def _values(low: int, high: int) -> st.SearchStrategy[str]:
    return st.lists(st.integers(low, high), min_size=1, max_size=3).map(
        lambda vs: ",".join(str(v) for v in vs)
    )


plain_times = st.one_of(
    st.tuples(_values(0, 59), _values(0, 23)).map(lambda t: f"{t[0]} {t[1]} * * MON"),
    st.tuples(_values(0, 59), _values(0, 59), _values(0, 23)).map(
        lambda t: f"{t[0]} {t[1]} {t[2]} L * *"
    ),
    cron_exprs,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=plain_times)
def test_listed_times_of_day_are_exactly_the_matching_ones(expr: str) -> None:
    """When the words list times of day, they are the expression's hours x minutes x seconds."""
    match = _TIMES.match(cron_in_words(expr))
    if match is None:
        return
    listed = {tuple(int(p) for p in t.split(":")) for t in re.split(r", | and ", match.group(1))}
    cron = parse_cron(expr)
    shows_seconds = any(len(t) == 3 for t in listed)
    expected = {
        (h, m, s) if shows_seconds else (h, m)
        for h in cron._hours
        for m in cron._minutes
        for s in cron._seconds
    }
    assert listed == expected


def test_the_examples_in_the_docs_are_what_the_code_says() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "schedules.md").read_text()
    section = page.split("## In words", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)`(?: in ([\w/]+))? \| (.+?) \|$", section, re.M)
    assert len(rows) >= 8
    for expr, zone, words in rows:
        if zone:
            assert schedule_in_words(CronSchedule(expr, timezone=zone)) == words
        else:
            assert cron_in_words(expr) == words
