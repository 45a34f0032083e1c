"""Cron expressions: parsing with precise errors, and matching on wall-clock (naive) time.

Design note
-----------
``parse_cron`` validates every field itself, so that an error names the field and the token
that is wrong, then hands a normalized 5-field expression to cronsim, which walks months, days,
hours and minutes the way Debian/Vixie cron does. Seconds (the optional leading sixth field) are
handled here, on top of cronsim's minute-level matches. Everything works on naive datetimes:
wall-clock time in no particular zone. Mapping wall-clock times to instants, with the DST rules,
is the job of ``oncely.domain.schedule``.

Day rule (Vixie cron): when both day-of-month and day-of-week are restricted, a day matches if
EITHER matches; when either field starts with ``*`` (``*``, ``*/2``, ``*,5``), a day must match
BOTH. cronsim implements this rule; we compute it from the text as written and set it on the
engine, because the normalized text handed to cronsim no longer starts with ``*``.

Where cronsim 2.8 differs from what oncely promises, this module fixes it:

* ``5-5/10`` means ``5`` in Vixie cron; cronsim 2.8 read it as ``5/10`` (5, 15, 25...). Every field
  is normalized to explicit values here, so cronsim never parses a step.
* cronsim has no ``15W`` (nearest weekday) and no ``L-3`` (third-last day) in day-of-month;
  when they are used, day-of-month matching is done here (``_DaySpec.matches``).
* ``0 0 30 2 *`` makes cronsim raise at construction; here it parses and never matches.

Extensions beyond Vixie cron, as in Quartz: ``5/10`` (from 5 to the field's end, step 10),
``L``, ``L-n``, ``LW``, ``nW`` in day-of-month, ``nL`` and ``n#k`` in day-of-week. ``nW`` never
crosses into another month (``1W`` on a Saturday 1st is Monday the 3rd) and only matches in
months that have day n. In day-of-week, ``7`` is Sunday like ``0``, and a range may end on
Sunday (``FRI-SUN``).
"""

from __future__ import annotations

import calendar
import copy
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import TypeVar

from cronsim import CronSim, CronSimError

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

    @property
    def needs_own_matcher(self) -> bool:
        """cronsim knows plain days, L and LW only."""
        return bool(self.nearest_weekday) or any(n > 0 for n in self.last_minus)

    def possible_in(self, month: int) -> bool:
        """Whether this field can match some day of ``month`` in some year."""
        longest = _MAX_DAYS_IN_MONTH[month]
        return (
            self.last_weekday
            or any(d <= longest for d in self.days | self.nearest_weekday)
            or any(n < longest for n in self.last_minus)
        )

    def matches(self, d: date) -> bool:
        if d.day in self.days:
            return True
        _, last = calendar.monthrange(d.year, d.month)
        if any(d.day == last - n for n in self.last_minus):
            return True
        weekday = d.weekday()  # Monday = 0
        if weekday >= 5:
            return False  # W and LW only ever pick a weekday
        if self.last_weekday and d.day == _nearest_weekday(d.year, d.month, last, last):
            return True
        return any(
            n <= last and d.day == _nearest_weekday(d.year, d.month, n, last)
            for n in self.nearest_weekday
        )


def _nearest_weekday(year: int, month: int, day: int, last: int) -> int:
    """The weekday (Mon-Fri) nearest to ``day``, without leaving the month (Quartz ``W``)."""
    weekday = calendar.weekday(year, month, day)
    if weekday == 5:  # Saturday: Friday before, unless that is in the previous month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday after, unless that is in the next month
        return day + 1 if day < last else day - 2
    return day


class _Engine(CronSim):
    """cronsim, with the day rule and day-of-month matching set by ``parse_cron``."""

    def __init__(self, expr: str, *, day_and: bool, dom: _DaySpec | None) -> None:
        super().__init__(expr, datetime(2000, 1, 1))
        self.day_and = day_and
        self._own_dom = dom

    def match_dom(self, d: date) -> bool:
        if self._own_dom is not None:
            return self._own_dom.matches(d)
        return super().match_dom(d)

    def next_after(self, start: datetime) -> datetime | None:
        """The first minute strictly after ``start`` (naive, second 0) that matches."""
        it = copy.copy(self)
        it.dt = start
        it.skip_initial_tick = False
        try:
            return next(it)
        except (StopIteration, OverflowError):
            return None


class CronExpr:
    """A parsed cron expression. Immutable; build it with ``parse_cron``."""

    __slots__ = ("_engine", "_hours", "_minutes", "_months", "_seconds", "has_seconds", "text")

    def __init__(
        self,
        text: str,
        *,
        seconds: frozenset[int],
        minutes: frozenset[int],
        hours: frozenset[int],
        months: frozenset[int],
        engine: _Engine | None,
        has_seconds: bool,
    ) -> None:
        self.text = text
        self.has_seconds = has_seconds
        self._seconds = tuple(sorted(seconds))
        self._minutes = minutes
        self._hours = hours
        self._months = months
        self._engine = engine  # None: no date can ever match

    def __repr__(self) -> str:
        return f"CronExpr({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronExpr) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @property
    def never_matches(self) -> bool:
        """True when no date can ever match (``0 0 30 2 *``)."""
        return self._engine is None

    def matches(self, dt: datetime) -> bool:
        """Whether the naive wall-clock time ``dt`` (microseconds ignored) matches."""
        _require_naive(dt)
        return dt.second in self._seconds and self._minute_matches(dt)

    def next_local(self, after: datetime) -> datetime | None:
        """The smallest naive time strictly after ``after`` that matches, or None when there is
        none within about 50 years."""
        _require_naive(after)
        if self._engine is None:
            return None
        current = after.replace(microsecond=0)
        minute = current.replace(second=0)
        if self._minute_matches(minute):
            i = bisect_right(self._seconds, current.second)
            if i < len(self._seconds):
                return current.replace(second=self._seconds[i])
        found = self._engine.next_after(minute)
        if found is None:
            return None
        return found.replace(second=self._seconds[0])

    def _minute_matches(self, dt: datetime) -> bool:
        return (
            self._engine is not None
            and dt.minute in self._minutes
            and dt.hour in self._hours
            and dt.month in self._months
            and self._engine.match_day(dt.date())
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
    dow_text = parse(5, _DOW, _parse_dow)

    day_and = parts[3].startswith("*") or parts[5].startswith("*")
    engine: _Engine | None = None
    if not day_and or any(dom.possible_in(m) for m in months):
        dom_text = "*" if dom.needs_own_matcher else _render_dom(dom)
        engine_expr = " ".join(
            (_render(minutes), _render(hours), dom_text, _render(months), dow_text)
        )
        try:
            engine = _Engine(
                engine_expr, day_and=day_and, dom=dom if dom.needs_own_matcher else None
            )
        except CronSimError as exc:  # pragma: no cover - our validation should catch all
            raise fail(f"not understood ({exc})") from None
    return CronExpr(
        text,
        seconds=seconds,
        minutes=minutes,
        hours=hours,
        months=months,
        engine=engine,
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


def _parse_dow(text: str) -> str:
    """Validate day-of-week; return it normalized for cronsim (0-6, ``d#k``, ``dL``)."""
    days: set[int] = set()
    special: list[str] = []
    for item in _items(text):
        if "#" in item:
            day_text, _, nth_text = item.partition("#")
            day = _value(day_text, _DOW, item) % 7
            if not _is_number(nth_text) or not 1 <= int(nth_text) <= 5:
                raise _FieldError(f'"{item}": the number after # must be 1-5')
            special.append(f"{day}#{int(nth_text)}")
        elif item == "L":
            raise _FieldError('"L" needs a day, as in 5L or FRIL (the last Friday of the month)')
        elif item.endswith("L") and "-" not in item and "/" not in item:
            special.append(f"{_value(item[:-1], _DOW, item) % 7}L")
        else:
            days |= {d % 7 for d in _range_item(item, _DOW)}
    return ",".join([*_render_items(frozenset(days)), *special])


def _render_dom(dom: _DaySpec) -> str:
    items = _render_items(dom.days)
    if 0 in dom.last_minus:
        items.append("L")
    if dom.last_weekday:
        items.append("LW")
    return ",".join(items)


def _render(values: frozenset[int]) -> str:
    return ",".join(_render_items(values))


def _render_items(values: frozenset[int]) -> list[str]:
    """Sorted values as compact runs (``0-5,10``): cronsim parses them faster than long lists."""
    runs: list[str] = []
    ordered = sorted(values)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return runs
