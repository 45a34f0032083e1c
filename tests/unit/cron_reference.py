"""An independent, brute-force reference for cron matching and DST resolution.

Written from the rules, not from ``oncely.domain.cron`` or cronsim: it parses fields itself and
scans. It is slow on purpose (it favours obviously-right over fast) and only accepts valid
expressions; the differential tests compare oncely against it.

Rules implemented:
- fields ``[sec] min hour dom month dow``; macros; names (JAN.., SUN..), dow 0-7 with 7 = Sunday;
- items ``*``, ``n``, ``a-b``, with ``/step``; ``n/step`` runs to the field's maximum; in
  day-of-week a range may end on Sunday (``FRI-SUN`` = 5-7);
- day-of-month ``L``, ``L-n``, ``LW``, ``nW`` (nearest weekday in the same month, only in months
  that have day n); day-of-week ``d#k`` (k-th d of the month), ``dL`` (last d of the month);
- Vixie day rule: if the day-of-month or the day-of-week field starts with ``*``, both must
  match; otherwise either may match.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

DayTest = Callable[[date], bool]


def _num(token: str, names: list[str] | None, base: int) -> int:
    if names and token in names:
        return names.index(token) + base
    return int(token)


def _values(item: str, lo: int, hi: int, names: list[str] | None = None, base: int = 0) -> set[int]:
    if "/" in item:
        body, step_text = item.split("/")
        step = int(step_text)
    else:
        body, step = item, 1
    if body == "*":
        a, b = lo, hi
    elif "-" in body:
        x, y = body.split("-")
        a, b = _num(x, names, base), _num(y, names, base)
        if names is DAYS and b == 0 and a > 0:
            b = 7
    else:
        a = _num(body, names, base)
        b = hi if "/" in item else a
    out = set()
    v = a
    while v <= b:
        out.add(v)
        v += step
    return out


def _cron_dow(d: date) -> int:
    return (d.weekday() + 1) % 7  # Sunday = 0


def _last(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def _dom_test(item: str) -> DayTest:
    if item == "L":
        return lambda d: d.day == _last(d)
    if item.startswith("L-"):
        n = int(item[2:])
        return lambda d: d.day == _last(d) - n
    if item == "LW":

        def last_weekday(d: date) -> bool:
            day = _last(d)
            while date(d.year, d.month, day).weekday() >= 5:
                day -= 1
            return d.day == day

        return last_weekday
    if item.endswith("W"):
        n = int(item[:-1])

        def nearest(d: date) -> bool:
            last = _last(d)
            if n > last:
                return False
            weekdays = [x for x in range(1, last + 1) if date(d.year, d.month, x).weekday() < 5]
            return d.day == min(weekdays, key=lambda x: (abs(x - n), x))

        return nearest
    days = _values(item, 1, 31)
    return lambda d: d.day in days


def _dow_test(item: str) -> DayTest:
    if "#" in item:
        x, k = item.split("#")
        dow, nth = _num(x, DAYS, 0) % 7, int(k)
        return lambda d: _cron_dow(d) == dow and (d.day - 1) // 7 + 1 == nth
    if item.endswith("L") and len(item) > 1:
        dow = _num(item[:-1], DAYS, 0) % 7
        return lambda d: _cron_dow(d) == dow and d.day + 7 > _last(d)
    days = {v % 7 for v in _values(item, 0, 7, DAYS, 0)}
    return lambda d: _cron_dow(d) in days


class Ref:
    """A parsed expression."""

    def __init__(self, expr: str) -> None:
        text = expr.strip()
        if text.startswith("@"):
            text = MACROS[text.lower()]
        parts = text.upper().split()
        if len(parts) == 5:
            parts = ["0", *parts]
        assert len(parts) == 6, expr
        sec, minute, hour, dom, month, dow = parts

        def field(text: str, lo: int, hi: int, names: list[str] | None = None, base: int = 0):
            out: set[int] = set()
            for item in text.split(","):
                out |= _values(item, lo, hi, names, base)
            return out

        self.seconds = field(sec, 0, 59)
        self.minutes = field(minute, 0, 59)
        self.hours = field(hour, 0, 23)
        self.months = field(month, 1, 12, MONTHS, 1)
        self.dom_tests = [_dom_test(item) for item in dom.split(",")]
        self.dow_tests = [_dow_test(item) for item in dow.split(",")]
        self.both_days = dom.startswith("*") or dow.startswith("*")

    def day_matches(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom_ok = any(test(d) for test in self.dom_tests)
        dow_ok = any(test(d) for test in self.dow_tests)
        return (dom_ok and dow_ok) if self.both_days else (dom_ok or dow_ok)

    def minute_matches(self, dt: datetime) -> bool:
        return dt.minute in self.minutes and dt.hour in self.hours and self.day_matches(dt.date())

    def matches(self, dt: datetime) -> bool:
        return dt.second in self.seconds and self.minute_matches(dt)

    def next_local(self, after: datetime) -> datetime | None:
        """Day by day, then hour, minute and second inside each matching day; gives up after
        the 50th year following ``after``'s (as oncely's matcher does)."""
        after = after.replace(microsecond=0)
        day = after.date()
        hours, minutes, seconds = sorted(self.hours), sorted(self.minutes), sorted(self.seconds)
        while day.year <= after.year + 50:
            if self.day_matches(day):
                for h in hours:
                    if day == after.date() and h < after.hour:
                        continue
                    for m in minutes:
                        if day == after.date() and (h, m) < (after.hour, after.minute):
                            continue
                        for s in seconds:
                            candidate = datetime.combine(day, time(h, m, s))
                            if candidate > after:
                                return candidate
            if day == date.max:
                return None
            day += timedelta(days=1)
        return None


_cache: dict[str, Ref] = {}


def ref(expr: str) -> Ref:
    if expr not in _cache:
        _cache[expr] = Ref(expr)
    return _cache[expr]


def matches(expr: str, dt: datetime) -> bool:
    return ref(expr).matches(dt)


def next_local(expr: str, after: datetime) -> datetime | None:
    return ref(expr).next_local(after)


# -- DST reference ---------------------------------------------------------------------------

MINUTE = timedelta(minutes=1)
MAX_FOLD = timedelta(hours=3)  # no zone used in the tests goes back by more than this
MAX_OFFSET = timedelta(hours=16)  # |UTC offset| stays below this


def wall(zone: ZoneInfo, instant: datetime) -> datetime:
    """Wall-clock time at a naive-UTC instant."""
    return instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def next_fire(expr: str, tz: str, gap: str, fold: str, after: datetime) -> datetime | None:
    """The first fire strictly after ``after`` (aware), by scanning UTC minute by minute.

    Assumes whole-minute offsets and transitions (true for 1990-2090). For each UTC minute:
    if the clock jumped forward into it, the wall minutes jumped over are checked (``shift``
    fires at the first instant after the jump); if its wall minute matches, the instant fires
    unless the fold policy excludes it: the other instants showing the same wall minute are
    found by checking every UTC minute within 3 hours."""
    zone = ZoneInfo(tz)
    r = ref(expr)
    after_n = after.astimezone(UTC).replace(tzinfo=None)
    u = after_n.replace(second=0, microsecond=0)
    seconds = sorted(r.seconds)
    while True:
        # Skip ahead: no fire can come before the next wall-clock match minus the offset.
        t = r.next_local(wall(zone, u) - MAX_FOLD - timedelta(hours=1))
        if t is None:
            return None
        jump = (t - MAX_OFFSET).replace(second=0)
        u = max(u, jump)
        prev_wall = wall(zone, u - MINUTE)
        for _ in range(30 * 60):
            w = wall(zone, u)
            found: list[datetime] = []
            if w > prev_wall + MINUTE and gap == "shift":
                skipped = prev_wall + MINUTE
                while skipped < w:
                    if r.minute_matches(skipped):
                        found.append(u)
                        break
                    skipped += MINUTE
            if r.minute_matches(w):
                ok = True  # "both": every occurrence fires
                if fold != "both":
                    others = [
                        u + k * MINUTE
                        for k in range(-180, 181)
                        if k != 0 and wall(zone, u + k * MINUTE) == w
                    ]
                    ok = (
                        all(o > u for o in others)
                        if fold == "first"
                        else all(o < u for o in others)
                    )
                if ok:
                    found.extend(u + timedelta(seconds=s) for s in seconds)
            later = [f for f in found if f > after_n]
            if later:
                return min(later).replace(tzinfo=UTC)
            prev_wall = w
            u += MINUTE
