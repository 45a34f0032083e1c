"""Cron expressions: parsing with precise errors, and matching on wall-clock (naive) time.

Design note
-----------
``parse_cron`` validates every field itself, so that an error names the field and the token
that is wrong, and computes each field as a set of values. Matching is done here too, with no
cron library: ``next_local`` takes the matching days of a month as one small sorted tuple
(computed once per (year, month) and kept in a bounded cache on the expression), then the
hours, minutes and seconds of a day by bisection. Month by month, the search is a few lookups
per call whatever the expression, and it gives up after the 50th year following the start
(so an expression such as ``0 0 */31 * MON#5``, which no date satisfies, answers None in a few
milliseconds). Everything works on naive datetimes: wall-clock time in no particular zone.
Mapping wall-clock times to instants, with the DST rules, is the job of
``oncely.domain.schedule``.

Day rule (Vixie cron): when both day-of-month and day-of-week are restricted, a day matches if
EITHER matches; when either field starts with ``*`` (``*``, ``*/2``, ``*,5``), a day must match
BOTH. The rule is decided from the text as written.

Semantics promised, checked against an independent reference (tests/unit/cron_reference.py):

* ``5-5/10`` means ``5`` (a range with a step), as in Vixie cron.
* ``0 0 30 2 *`` parses and never matches (``never_matches`` says so; schedules refuse it).

Extensions beyond Vixie cron, as in Quartz: ``5/10`` (from 5 to the field's end, step 10),
``L``, ``L-n``, ``LW``, ``nW`` in day-of-month, ``nL`` and ``n#k`` in day-of-week. ``nW`` never
crosses into another month (``1W`` on a Saturday 1st is Monday the 3rd) and only matches in
months that have day n. In day-of-week, ``7`` is Sunday like ``0``, and a range may end on
Sunday (``FRI-SUN``).
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TypeVar

from oncely.domain.errors import InvalidInput

__all__ = ["MACROS", "MAX_CRON_CHARS", "CronExpr", "parse_cron"]

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = {
    name: i + 1
    for i, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAY_NAMES = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_T = TypeVar("_T")
_MAX_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_DOW = _Field("day-of-week", 0, 7, _DAY_NAMES)


class _FieldError(Exception):
    """A problem in one field; ``parse_cron`` adds the expression and the field's position."""


@dataclass(frozen=True)
class _DaySpec:
    """A parsed day-of-month field."""

    days: frozenset[int]  # plain days 1..31
    last_minus: frozenset[int]  # L-n: n days before the last day (L is L-0)
    nearest_weekday: frozenset[int]  # nW
    last_weekday: bool  # LW

    def possible_in(self, month: int) -> bool:
        """Whether this field can match some day of ``month`` in some year."""
        longest = _MAX_DAYS_IN_MONTH[month]
        return (
            self.last_weekday
            or any(d <= longest for d in self.days | self.nearest_weekday)
            or any(n < longest for n in self.last_minus)
        )

    def days_in(self, year: int, month: int, last: int) -> set[int]:
        """The days of that month this field matches."""
        out = {d for d in self.days if d <= last}
        out.update(last - n for n in self.last_minus if n < last)
        if self.last_weekday:
            out.add(_nearest_weekday(year, month, last, last))
        out.update(
            _nearest_weekday(year, month, n, last) for n in self.nearest_weekday if n <= last
        )
        return out


def _nearest_weekday(year: int, month: int, day: int, last: int) -> int:
    """The weekday (Mon-Fri) nearest to ``day``, without leaving the month (Quartz ``W``)."""
    weekday = calendar.weekday(year, month, day)
    if weekday == 5:  # Saturday: Friday before, unless that is in the previous month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday after, unless that is in the next month
        return day + 1 if day < last else day - 2
    return day


@dataclass(frozen=True)
class _WeekdaySpec:
    """A parsed day-of-week field; days are 0-6, Sunday = 0."""

    days: frozenset[int]
    nth: frozenset[tuple[int, int]]  # d#k: the k-th such day of the month
    last: frozenset[int]  # dL: the last such day of the month

    def days_in(self, first_weekday: int, last: int) -> set[int]:
        """The days of a month whose 1st is ``first_weekday`` (Monday = 0) that match."""
        # Day n of the month is cron weekday (first_weekday + n) % 7 (Sunday = 0).
        out = {n for n in range(1, last + 1) if (first_weekday + n) % 7 in self.days}
        for day, k in self.nth:
            n = 1 + (day - first_weekday - 1) % 7 + 7 * (k - 1)
            if n <= last:
                out.add(n)
        for day in self.last:
            first = 1 + (day - first_weekday - 1) % 7
            out.add(first + 7 * ((last - first) // 7))
        return out


_MONTH_CACHE_SIZE = 256
"""Matching-day tuples kept per expression: about 20 years of months for a busy one."""


class CronExpr:
    """A parsed cron expression. Immutable (but for a cache); build it with ``parse_cron``."""

    __slots__ = (
        "_day_and",
        "_dom",
        "_dow",
        "_first_hour",
        "_first_minute",
        "_hours",
        "_minutes",
        "_month_days",
        "_months",
        "_never",
        "_seconds",
        "has_seconds",
        "text",
    )

    def __init__(
        self,
        text: str,
        *,
        seconds: frozenset[int],
        minutes: frozenset[int],
        hours: frozenset[int],
        dom: _DaySpec,
        months: frozenset[int],
        dow: _WeekdaySpec,
        day_and: bool,
        has_seconds: bool,
    ) -> None:
        self.text = text
        self.has_seconds = has_seconds
        self._seconds = tuple(sorted(seconds))
        self._minutes = tuple(sorted(minutes))
        self._hours = tuple(sorted(hours))
        self._first_minute = self._minutes[0]
        self._first_hour = self._hours[0]
        self._months = months
        self._dom = dom
        self._dow = dow
        self._day_and = day_and
        # With AND, a day-of-month that no month in the field can have rules out every date.
        self._never = day_and and not any(dom.possible_in(m) for m in months)
        self._month_days: dict[tuple[int, int], tuple[int, ...]] = {}

    def __repr__(self) -> str:
        return f"CronExpr({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronExpr) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @property
    def never_matches(self) -> bool:
        """True when no date can ever match (``0 0 30 2 *``)."""
        return self._never

    def matches(self, dt: datetime) -> bool:
        """Whether the naive wall-clock time ``dt`` (microseconds ignored) matches."""
        _require_naive(dt)
        return dt.second in self._seconds and self._minute_matches(dt)

    def next_local(self, after: datetime) -> datetime | None:
        """The smallest naive time strictly after ``after`` that matches, or None when there is
        none up to the end of the 50th year following ``after``'s."""
        _require_naive(after)
        if self._never:
            return None
        current = after.replace(microsecond=0)
        seconds = self._seconds
        if current.second < seconds[-1] and self._minute_matches(current):
            return current.replace(second=seconds[bisect_right(seconds, current.second)])
        year, month, day = current.year, current.month, current.day
        if month in self._months:
            days = self.days_of(year, month)
            if day in days:
                later = self._later_in_day(current.hour, current.minute)
                if later is not None:
                    return datetime(year, month, day, later[0], later[1], seconds[0])
            i = bisect_right(days, day)
            if i < len(days):
                return self._first_of_day(year, month, days[i])
        last_year = min(year + 50, 9999)
        while True:
            month += 1
            if month > 12:
                month = 1
                year += 1
                if year > last_year:
                    return None
            if month in self._months:
                days = self.days_of(year, month)
                if days:
                    return self._first_of_day(year, month, days[0])

    def days_of(self, year: int, month: int) -> tuple[int, ...]:
        """The matching days of a month (ignoring the month field), ascending."""
        key = (year, month)
        found = self._month_days.get(key)
        if found is None:
            first_weekday, last = calendar.monthrange(year, month)
            dom = self._dom.days_in(year, month, last)
            dow = self._dow.days_in(first_weekday, last)
            found = tuple(sorted(dom & dow if self._day_and else dom | dow))
            if len(self._month_days) >= _MONTH_CACHE_SIZE:
                self._month_days.clear()  # months are asked for in order: no need for LRU
            self._month_days[key] = found
        return found

    def _first_of_day(self, year: int, month: int, day: int) -> datetime:
        return datetime(year, month, day, self._first_hour, self._first_minute, self._seconds[0])

    def _later_in_day(self, hour: int, minute: int) -> tuple[int, int] | None:
        """The first (hour, minute) of the fields strictly after ``hour:minute``."""
        if hour in self._hours:
            i = bisect_right(self._minutes, minute)
            if i < len(self._minutes):
                return hour, self._minutes[i]
        j = bisect_right(self._hours, hour)
        if j < len(self._hours):
            return self._hours[j], self._first_minute
        return None

    def _minute_matches(self, dt: datetime) -> bool:
        return (
            not self._never
            and dt.minute in self._minutes
            and dt.hour in self._hours
            and dt.month in self._months
            and dt.day in self.days_of(dt.year, dt.month)
        )


def _require_naive(dt: datetime) -> None:
    if dt.tzinfo is not None:
        raise ValueError("cron matching works on naive (wall-clock) datetimes")


# -- parsing ---------------------------------------------------------------------------------


MAX_CRON_CHARS = 1000


def parse_cron(expr: str) -> CronExpr:
    """Parse a cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 fields
    with a leading second, or a macro (``@hourly``...). Raises ``InvalidInput(field="cron")``
    naming the field and token at fault. Results are cached: parsing the same text is free."""
    if not isinstance(expr, str):
        raise InvalidInput("a cron expression must be a string", field="cron")
    if len(expr) > MAX_CRON_CHARS:
        raise InvalidInput(
            f"the cron expression is longer than {MAX_CRON_CHARS} characters", field="cron"
        )
    return _parse(" ".join(expr.split()))


@lru_cache(maxsize=4096)
def _parse(text: str) -> CronExpr:
    if not text:
        raise InvalidInput("the cron expression is empty", field="cron")

    def fail(detail: str) -> InvalidInput:
        return InvalidInput(f'invalid cron "{text}": {detail}', field="cron")

    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            known = ", ".join(MACROS)
            raise fail(f"unknown macro {text}; known macros are {known}")
        parts = macro.split()
    else:
        parts = text.upper().split()
    if len(parts) not in (5, 6):
        raise fail(f"expected 5 or 6 fields, got {len(parts)}")
    has_seconds = len(parts) == 6
    if not has_seconds:
        parts = ["0", *parts]
    offset = 0 if has_seconds else -1  # position of a field in the text as written

    def parse(index: int, field: _Field, parser: Callable[[str], _T]) -> _T:
        try:
            return parser(parts[index])
        except _FieldError as exc:
            raise fail(f"field {index + 1 + offset} ({field.name}) {exc}") from None

    seconds = parse(0, _SECOND, lambda text: _parse_plain(text, _SECOND))
    minutes = parse(1, _MINUTE, lambda text: _parse_plain(text, _MINUTE))
    hours = parse(2, _HOUR, lambda text: _parse_plain(text, _HOUR))
    dom = parse(3, _DOM, _parse_dom)
    months = parse(4, _MONTH, lambda text: _parse_plain(text, _MONTH))
    dow = parse(5, _DOW, _parse_dow)

    return CronExpr(
        text,
        seconds=seconds,
        minutes=minutes,
        hours=hours,
        dom=dom,
        months=months,
        dow=dow,
        day_and=parts[3].startswith("*") or parts[5].startswith("*"),
        has_seconds=has_seconds,
    )


def _items(text: str) -> list[str]:
    items = text.split(",")
    if any(item == "" for item in items):
        raise _FieldError(f'has an empty list item in "{text}"')
    return items


def _value(token: str, field: _Field, item: str) -> int:
    if field.names is not None and token in field.names:
        return field.names[token]
    if not _is_number(token):
        raise _FieldError(_not_a_value(token, field, item))
    value = int(token)
    if not field.low <= value <= field.high:
        raise _FieldError(f"value {value} is out of range {field.low}-{field.high}")
    return value


def _is_number(token: str) -> bool:
    return token.isascii() and token.isdecimal()


_SPECIAL = re.compile(r"L(W|-\d*)?|W|\d+[LW]|[A-Z]{3}L|.*#.*")


def _not_a_value(token: str, field: _Field, item: str) -> str:
    if token == "":
        return f'"{item}" is missing a value'
    if _SPECIAL.fullmatch(token):
        combined = ", and cannot be combined with ranges or steps" if token != item else ""
        if field is _DOM and "#" not in token:
            return f'"{item}": in day-of-month, L and W are written L, L-3, LW or 15W{combined}'
        if field is _DOW and "W" not in token:
            return f'"{item}": in day-of-week, L and # are written 5L or MON#2{combined}'
        char = "#" if "#" in token else "W" if "W" in token else "L"
        where = {
            "#": "day-of-week (MON#2)",
            "W": "day-of-month (15W, LW)",
            "L": "day-of-month (L, L-3, LW) and day-of-week (5L)",
        }[char]
        return f'"{item}": {char} is only allowed in {where}'
    if token.startswith("?"):
        return '"?" is not supported; use *'
    # A part of a range or step is shown with the item it is in: "*" alone says little.
    where = f' in "{item}"' if token != item else ""
    if field is _MONTH:
        return f'"{token}"{where} is not a month number (1-12) or name (JAN-DEC)'
    if field is _DOW:
        return f'"{token}"{where} is not a day-of-week number (0-7) or name (SUN-SAT)'
    return f'"{token}"{where} is not a number'


def _step(text: str, item: str, field: _Field) -> int:
    if not _is_number(text):
        raise _FieldError(f'step "{text}" in "{item}" is not a number')
    step = int(text)
    if not 1 <= step <= field.high:
        raise _FieldError(f'step {step} in "{item}" is out of range 1-{field.high}')
    return step


def _range_item(item: str, field: _Field) -> set[int]:
    """``*``, ``n`` or ``a-b``, with an optional ``/step`` (``n/step`` runs to the end)."""
    body, slash, step_text = item.partition("/")
    step = _step(step_text, item, field) if slash else 1
    if body == "*":
        low, high = field.low, field.high
    elif "-" in body:
        start_text, _, end_text = body.partition("-")
        low, high = _value(start_text, field, item), _value(end_text, field, item)
        if field is _DOW and high == 0 and low > 0:
            high = 7  # FRI-SUN
        if low > high:
            raise _FieldError(
                f"range {body} is backwards; to wrap around write "
                f"{start_text}-{field.high},{field.low}-{end_text}"
            )
    else:
        low = _value(body, field, item)
        high = field.high if slash else low
    return set(range(low, high + 1, step))


def _parse_plain(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in _items(text):
        values |= _range_item(item, field)
    return frozenset(values)


def _parse_dom(text: str) -> _DaySpec:
    days: set[int] = set()
    last_minus: set[int] = set()
    nearest: set[int] = set()
    last_weekday = False
    for item in _items(text):
        if item == "L":
            last_minus.add(0)
        elif item == "LW":
            last_weekday = True
        elif item.startswith("L-"):
            n = item[2:]
            if not _is_number(n) or not 0 <= int(n) <= 30:
                raise _FieldError(f'"{item}": the number after L- must be 0-30')
            last_minus.add(int(n))
        elif item.endswith("W"):
            day = item[:-1]
            if not _is_number(day):
                raise _FieldError(f'"{item}": W takes one day number, as in 15W (or LW)')
            nearest.add(_value(day, _DOM, item))
        else:
            days |= _range_item(item, _DOM)
    return _DaySpec(frozenset(days), frozenset(last_minus), frozenset(nearest), last_weekday)


def _parse_dow(text: str) -> _WeekdaySpec:
    days: set[int] = set()
    nth: set[tuple[int, int]] = set()
    last: set[int] = set()
    for item in _items(text):
        if "#" in item:
            day_text, _, nth_text = item.partition("#")
            day = _value(day_text, _DOW, item) % 7
            if not _is_number(nth_text) or not 1 <= int(nth_text) <= 5:
                raise _FieldError(f'"{item}": the number after # must be 1-5')
            nth.add((day, int(nth_text)))
        elif item == "L":
            raise _FieldError('"L" needs a day, as in 5L or FRIL (the last Friday of the month)')
        elif item.endswith("L") and "-" not in item and "/" not in item:
            last.add(_value(item[:-1], _DOW, item) % 7)
        else:
            days |= {d % 7 for d in _range_item(item, _DOW)}
    return _WeekdaySpec(frozenset(days), frozenset(nth), frozenset(last))
