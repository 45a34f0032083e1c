"""See time before it happens: the next fires of a schedule, and what DST changes do to them.

Design note
-----------
The fires come from ``oncely.domain.schedule.next_fire``, the function the scheduler uses, so a
preview can never disagree with what will happen. The DST flags are added afterwards, from the
zone's clock changes (found by scanning its UTC offset) and the cron expression's wall-clock
matches inside each change (``CronExpr.next_local``, oncely's one cron matcher):

* a clock change forward at instant ``t`` (offset ``b`` -> ``a``, ``a > b``) removes the wall
  times [t+b, t+a). Matches there fire at ``t`` under ``shift`` ("shifted"; "merged" when the
  wall time at ``t`` is itself a match, so the two fires are one), or not at all under ``skip``
  ("skipped", listed in the preview as an entry that does not fire);
* a clock change back (``a < b``) repeats the wall times [t+a, t+b): the instants
  [t-(b-a), t) are their first pass and [t, t+(b-a)) their second. A fire in either is flagged
  "fold-first" or "fold-second", with what the policy ``first``/``last``/``both`` made of it.

``at`` and ``every`` schedules count absolute time: no clock change affects them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from oncely.domain.cron import CronExpr, parse_cron
from oncely.domain.schedule import (
    AtSchedule,
    CronSchedule,
    EverySchedule,
    Schedule,
    _zone,
    next_fire,
)

__all__ = [
    "ClockChange",
    "DstDay",
    "DstFlag",
    "PreviewEntry",
    "clock_changes",
    "dst_days",
    "preview",
]

DstFlag = Literal["shifted", "merged", "skipped", "fold-first", "fold-second"]

MAX_PREVIEW = 1000
"""The most fires one preview lists."""
_SCAN_STEP = timedelta(hours=6)
_MAX_MATCHES = 10_000  # wall-clock matches looked at inside one clock change
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class ClockChange:
    """The zone's clock changes at ``at`` (UTC) from offset ``before`` to ``after``."""

    at: datetime
    before: timedelta
    after: timedelta

    @property
    def forward(self) -> bool:
        return self.after > self.before

    @property
    def walls(self) -> tuple[datetime, datetime]:
        """The wall times (naive, [start, end)) that do not exist or that occur twice."""
        naive = self.at.replace(tzinfo=None)
        low, high = sorted((naive + self.before, naive + self.after))
        return low, high

    def describe(self) -> str:
        naive = self.at.replace(tzinfo=None)
        old, new = naive + self.before, naive + self.after
        verb = "jump forward" if self.forward else "go back"
        return (
            f"clocks {verb} from {old:%H:%M} to {new:%H:%M}, "
            f"UTC{_offset(self.before)} to UTC{_offset(self.after)}"
        )


@dataclass(frozen=True)
class PreviewEntry:
    """One fire, or (``fires`` False) one a clock change prevented.

    ``utc`` is the instant (for a skipped one: the clock change); ``local`` is that instant in
    the zone; ``wall`` the wall-clock time the schedule asked for, which differs from ``local``
    when a fire was shifted out of a gap. ``dst`` flags a clock change's effect, ``note``
    explains it."""

    utc: datetime
    local: datetime
    wall: datetime
    fires: bool = True
    dst: DstFlag | None = None
    note: str | None = None


@dataclass(frozen=True)
class DstDay:
    """A day on which a clock change makes the schedule behave differently."""

    day: date
    change: ClockChange
    flag: DstFlag
    walls: tuple[datetime, ...]  # the schedule's wall times in the gap or fold (naive)
    instants: tuple[datetime, ...]  # when they fire (UTC), after the policy
    note: str


def _offset(value: timedelta) -> str:
    minutes = int(value.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _utcoffset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def clock_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[ClockChange]:
    """The changes of the zone's UTC offset in (start, end], in order. (Offsets are scanned
    every 6 hours: zones do not change twice within that.)"""
    changes: list[ClockChange] = []
    current = start.astimezone(UTC)
    offset = _utcoffset(zone, current)
    while current < end:
        probe = min(current + _SCAN_STEP, end)
        probe_offset = _utcoffset(zone, probe)
        if probe_offset != offset:
            low, high = current, probe  # offset at low is `offset`, at high it is not
            while high - low > _SECOND:
                mid = low + (high - low) / 2
                mid = mid.replace(microsecond=0) if mid - low >= _SECOND else low + _SECOND
                if _utcoffset(zone, mid) == offset:
                    low = mid
                else:
                    high = mid
            changes.append(ClockChange(high, offset, _utcoffset(zone, high)))
        current, offset = probe, probe_offset
    return changes


def _matches_between(expr: CronExpr, start: datetime, end: datetime) -> list[datetime]:
    """The expression's wall-clock matches in [start, end) (naive)."""
    found: list[datetime] = []
    cursor: datetime | None = start - _SECOND
    while len(found) < _MAX_MATCHES:
        cursor = expr.next_local(cursor) if cursor is not None else None
        if cursor is None or cursor >= end:
            break
        found.append(cursor)
    return found


def _in_bounds(schedule: CronSchedule, instant: datetime) -> bool:
    return (schedule.start is None or instant >= schedule.start) and (
        schedule.end is None or instant <= schedule.end
    )


def _walls_text(walls: list[datetime]) -> str:
    fmt = "%H:%M:%S" if any(w.second for w in walls) else "%H:%M"
    if len(walls) <= 3:
        shown = [f"{w:{fmt}}" for w in walls]
        return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f"{len(walls)} times from {walls[0]:{fmt}} to {walls[-1]:{fmt}}"


@dataclass(frozen=True)
class _Effect:
    change: ClockChange
    walls: list[datetime]


def _effects(schedule: CronSchedule, start: datetime, end: datetime) -> list[_Effect]:
    """Each clock change in (start, end] (padded by the fold's width) with the schedule's wall
    times inside it."""
    zone = _zone(schedule.timezone)
    expr = parse_cron(schedule.expr)
    pad = timedelta(hours=3)  # a fold's first pass starts before its change
    effects = []
    for change in clock_changes(zone, start - pad, end + pad):
        low, high = change.walls
        walls = _matches_between(expr, low, high)
        if walls:
            effects.append(_Effect(change, walls))
    return effects


def preview(
    schedule: Schedule,
    after: datetime,
    count: int = 10,
    *,
    until: datetime | None = None,
    zone: str | None = None,
) -> list[PreviewEntry]:
    """The next ``count`` fires strictly after ``after`` (fewer if the schedule ends first, or
    reaches ``until``), each flagged when a clock change affects it, plus entries
    (``fires=False``) for fires the ``skip`` policy drops in between. ``zone`` shows
    ``at``/``every`` fires in a zone (a cron schedule is always shown in its own)."""
    if not 1 <= count <= MAX_PREVIEW:
        raise ValueError(f"count must be 1-{MAX_PREVIEW}")
    after = after.astimezone(UTC)
    fires: list[datetime] = []
    current = after
    while len(fires) < count:
        found = next_fire(schedule, current)
        if found is None or (until is not None and found > until):
            break
        fires.append(found)
        current = found
    if not isinstance(schedule, CronSchedule):
        shown_in = _zone(zone or "UTC")
        return [PreviewEntry(f, f.astimezone(shown_in), _naive(f, shown_in)) for f in fires]

    tz = _zone(schedule.timezone)
    entries = {f: _plain(f, tz) for f in fires}
    horizon = fires[-1] if len(fires) == count else _far(after, fires, until)
    skipped: list[PreviewEntry] = []
    expr = parse_cron(schedule.expr)
    for effect in _effects(schedule, after, horizon):
        change, walls = effect.change, effect.walls
        day = f"{change.at.astimezone(tz):%Y-%m-%d}"
        if change.forward:
            if change.at not in entries and not (
                schedule.dst_gap == "skip" and after < change.at <= horizon
            ):
                continue
            what = f"{_walls_text(walls)} do{'es' if len(walls) == 1 else ''} not exist on {day}"
            if schedule.dst_gap == "shift":
                local_at = change.at.astimezone(tz)
                if expr.matches(_naive(change.at, tz)):
                    flag: DstFlag = "merged"
                    note = f"{what} ({change.describe()}): one fire at {local_at:%H:%M}"
                else:
                    flag = "shifted"
                    note = f"{what} ({change.describe()}): shifted to {local_at:%H:%M}"
                entries[change.at] = PreviewEntry(
                    change.at, local_at, walls[0], dst=flag, note=note
                )
            elif _in_bounds(schedule, change.at):
                skipped.append(
                    PreviewEntry(
                        change.at,
                        change.at.astimezone(tz),
                        walls[0],
                        fires=False,
                        dst="skipped",
                        note=f"{what} ({change.describe()}): skipped (dst_gap=skip)",
                    )
                )
            continue
        width = change.before - change.after
        for instant in list(entries):
            wall = _naive(instant, tz)
            if not (change.at - width <= instant < change.at + width) or wall not in walls:
                continue
            first = instant < change.at
            policy = {
                "first": "fires the first time only",
                "last": "fires the second time only",
                "both": "fires both times",
            }[schedule.dst_fold]
            entries[instant] = PreviewEntry(
                instant,
                instant.astimezone(tz),
                wall,
                dst="fold-first" if first else "fold-second",
                note=(
                    f"{wall:%H:%M} occurs twice on {day} ({change.describe()}); "
                    f"{policy} (dst_fold={schedule.dst_fold})"
                ),
            )
    return sorted([*entries.values(), *skipped], key=lambda e: (e.utc, e.fires))


def _far(after: datetime, fires: list[datetime], until: datetime | None) -> datetime:
    """The preview's horizon when it stopped before ``count`` fires: ``until``, or the last
    fire of a schedule that ended."""
    if until is not None:
        return max(until.astimezone(UTC), after)
    return fires[-1] if fires else after


def _naive(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _plain(instant: datetime, zone: ZoneInfo) -> PreviewEntry:
    return PreviewEntry(instant, instant.astimezone(zone), _naive(instant, zone))


def dst_days(schedule: Schedule, year: int) -> list[DstDay]:
    """The days of ``year`` (in the schedule's zone) on which a clock change moves, skips,
    merges or doubles a fire, or picks one of a time's two occurrences. Empty for ``at`` and
    ``every`` schedules: they count absolute time."""
    if isinstance(schedule, AtSchedule | EverySchedule):
        return []
    zone = _zone(schedule.timezone)
    expr = parse_cron(schedule.expr)
    start = datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC)
    days: list[DstDay] = []
    for change in clock_changes(zone, start, end):
        low, high = change.walls
        walls = _matches_between(expr, low, high)
        if not walls:
            continue
        day = change.at.astimezone(zone).date()
        shown = _walls_text(walls)
        if change.forward:
            instants: tuple[datetime, ...]
            if schedule.dst_gap == "skip":
                flag: DstFlag = "skipped"
                instants = ()
                note = f"{shown}: skipped"
            else:
                local_at = change.at.astimezone(zone)
                instants = (change.at,)
                if expr.matches(_naive(change.at, zone)):
                    flag = "merged"
                    note = f"{shown}: one fire at {local_at:%H:%M}, with that time's own"
                else:
                    flag = "shifted"
                    note = f"{shown}: shifted to {local_at:%H:%M}"
            if not instants and not _in_bounds(schedule, change.at):
                continue
            if instants and not any(_in_bounds(schedule, i) for i in instants):
                continue
        else:
            width = change.before - change.after
            firsts = [w - change.before for w in walls]
            seconds = [w - change.after for w in walls]
            picked = {"first": firsts, "last": seconds, "both": firsts + seconds}[schedule.dst_fold]
            instants = tuple(sorted(i.replace(tzinfo=UTC) for i in picked))
            instants = tuple(i for i in instants if _in_bounds(schedule, i))
            if not instants:
                continue
            flag = "fold-second" if schedule.dst_fold == "last" else "fold-first"
            what = {
                "first": "fire once, the first time",
                "last": "fire once, the second time",
                "both": "fire twice",
            }[schedule.dst_fold]
            verb = "occurs" if len(walls) == 1 else "occur"
            note = f"{shown} {verb} twice ({_plural_minutes(width)} repeated): {what}"
        days.append(
            DstDay(day, change, flag, tuple(walls), instants, f"{change.describe()}; {note}")
        )
    return days


def _plural_minutes(width: timedelta) -> str:
    minutes = int(width.total_seconds()) // 60
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"
