"""Schedules: when a job fires. Pure functions from a schedule and an instant to instants.

Design note
-----------
Three kinds: ``cron`` (a cron expression read in an IANA time zone), ``at`` (one instant) and
``every`` (``anchor + k * interval`` for k = 0, 1, 2...: absolute time, no zone, no DST; an anchor
in the future is the first fire). ``cron`` and ``every`` may be bounded by ``start`` and ``end``
(both inclusive) and carry a ``jitter``: a delay in ``[0, jitter]`` added to the due time of
each fire, derived from a hash of (job, fire) so that re-materializing a fire gives it the same
delay. Every instant returned is an aware UTC datetime.

DST. No library is asked to turn a local time into an instant. ``CronExpr.next_local`` yields
wall-clock matches (naive), and ``_resolve`` maps each one to the instants at which the zone's
clock shows it, by trying both of zoneinfo's offsets (fold=0/1) and keeping those that
round-trip. Zero instants: the time is in a gap (spring forward); the policy ``shift`` fires at
the end of the gap (the transition instant), ``skip`` does not fire. Two instants: the time
occurs twice (fall back); the policy ``first``, ``last`` or ``both`` picks. Several wall times
can land on one instant (every minute of a gap shifts to the transition); each instant is
returned once, and instants strictly increase.

``_next_cron`` walks wall-clock matches in order. Instants are not monotonic in wall time inside
a fold (with ``both``, 01:00's second occurrence comes after 01:30's first), so each fold and
gap met is handled as a whole: the search jumps to the one match that can still come next,
which bounds the work to a few steps per call whatever the expression.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from oncely.domain.cron import parse_cron
from oncely.domain.errors import InvalidInput

__all__ = [
    "AtSchedule",
    "CronSchedule",
    "DstFold",
    "DstGap",
    "EverySchedule",
    "Schedule",
    "describe",
    "fires_between",
    "format_interval",
    "initial_fire",
    "jitter_offset",
    "make_schedule",
    "next_fire",
    "parse_interval",
    "schedule_from_dict",
    "schedule_to_dict",
]

DstGap = Literal["shift", "skip"]
"""What a local time in a spring-forward gap does: fire at the end of the gap, or not at all."""
DstFold = Literal["first", "last", "both"]
"""What a local time that occurs twice (fall back) does: fire at the first, the last or both."""

MAX_JITTER = timedelta(days=1)
MAX_INTERVAL = timedelta(days=36_600)
_SECOND = timedelta(seconds=1)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class CronSchedule:
    expr: str
    timezone: str = "UTC"
    dst_gap: DstGap = "shift"
    dst_fold: DstFold = "first"
    start: datetime | None = None
    end: datetime | None = None
    jitter: timedelta = timedelta(0)
    kind: Literal["cron"] = "cron"


@dataclass(frozen=True)
class AtSchedule:
    at: datetime
    kind: Literal["at"] = "at"


@dataclass(frozen=True)
class EverySchedule:
    interval: timedelta
    anchor: datetime
    start: datetime | None = None
    end: datetime | None = None
    jitter: timedelta = timedelta(0)
    kind: Literal["every"] = "every"


Schedule = CronSchedule | AtSchedule | EverySchedule


# -- next fire -------------------------------------------------------------------------------


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    """The first fire strictly after ``after`` (aware), within [start, end]; None if none."""
    after = _aware_utc(after, "after")
    if isinstance(schedule, AtSchedule):
        return schedule.at if schedule.at > after else None
    if schedule.start is not None and schedule.start > after:
        after = schedule.start - _MICROSECOND  # the start itself may fire
    if isinstance(schedule, EverySchedule):
        found = _next_every(schedule, after)
    else:
        try:
            found = _next_cron(schedule, after)
        except OverflowError:  # the end of the calendar (year 9999)
            found = None
    if found is None or (schedule.end is not None and found > schedule.end):
        return None
    return found


def initial_fire(schedule: Schedule, now: datetime) -> datetime | None:
    """The first fire of a new (or resumed) job. An ``at`` job keeps its instant even when it
    has passed: the misfire policy decides what happens to it."""
    if isinstance(schedule, AtSchedule):
        return schedule.at
    return next_fire(schedule, now)


def fires_between(
    schedule: Schedule, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """The fires in (after, until], at most ``limit`` of them, in order."""
    fires: list[datetime] = []
    current = after
    while len(fires) < limit:
        found = next_fire(schedule, current)
        if found is None or found > until:
            break
        fires.append(found)
        current = found
    return fires


def jitter_offset(schedule: Schedule, job_id: str, scheduled_for: datetime) -> timedelta:
    """A delay in [0, jitter], the same every time it is asked for the same (job, fire)."""
    jitter = schedule.jitter if not isinstance(schedule, AtSchedule) else timedelta(0)
    if jitter <= timedelta(0):
        return timedelta(0)
    key = f"{job_id}|{_aware_utc(scheduled_for, 'scheduled_for').isoformat()}"
    digest = hashlib.sha256(key.encode()).digest()
    span = jitter // _MICROSECOND + 1
    return timedelta(microseconds=int.from_bytes(digest[:8], "big") % span)


def _next_every(schedule: EverySchedule, after: datetime) -> datetime | None:
    anchor, interval = schedule.anchor, schedule.interval
    k = 0 if after < anchor else (after - anchor) // interval + 1
    try:
        return anchor + k * interval
    except OverflowError:
        return None


@dataclass(frozen=True)
class _Resolved:
    """The instants (naive UTC, ascending) at which a zone's clock shows one wall time.

    None, one, or two (a fold). For a gap or a fold, ``transition`` is the instant the offset
    changes, and [wall_start, wall_end) the wall times that do not exist or occur twice."""

    instants: tuple[datetime, ...]
    transition: datetime | None = None
    wall_start: datetime | None = None
    wall_end: datetime | None = None


def _wall(zone: ZoneInfo, instant: datetime) -> datetime:
    """The wall-clock time (naive) in ``zone`` at ``instant`` (naive UTC)."""
    return instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _resolve(zone: ZoneInfo, wall: datetime) -> _Resolved:
    candidates = set()
    for fold in (0, 1):
        offset = wall.replace(tzinfo=zone, fold=fold).utcoffset()
        assert offset is not None
        candidates.add(wall - offset)
    if len(candidates) == 1:
        # zoneinfo gives the two sides of a transition for a time in a gap or a fold, so one
        # offset for both folds means an ordinary time.
        return _Resolved((candidates.pop(),))
    instants = tuple(sorted(u for u in candidates if _wall(zone, u) == wall))
    if len(instants) == 1:
        return _Resolved(instants)
    lo, hi = min(candidates), max(candidates)
    if not instants:  # a gap: the clock jumps over ``wall`` somewhere in (lo, hi]
        transition = _first_second(lo, hi, lambda x: _wall(zone, x) > wall)
    else:  # a fold: the clock goes back to ``wall`` somewhere in (lo, hi]
        transition = _first_second(lo, hi, lambda x: _wall(zone, x) <= wall)
    before = _wall(zone, transition - _SECOND) + _SECOND
    after = _wall(zone, transition)
    return _Resolved(instants, transition, min(before, after), max(before, after))


def _first_second(lo: datetime, hi: datetime, predicate: Callable[[datetime], bool]) -> datetime:
    """The first whole second in (lo, hi] where ``predicate`` (false at lo, true at hi) holds."""
    low, high = 0, int((hi - lo).total_seconds())
    while high - low > 1:
        mid = (low + high) // 2
        if predicate(lo + timedelta(seconds=mid)):
            high = mid
        else:
            low = mid
    return lo + timedelta(seconds=high)


def _next_cron(
    schedule: CronSchedule, after_aware: datetime, horizon: datetime | None = None
) -> datetime | None:
    """The next fire; with ``horizon`` (naive wall time), None once matches pass it."""
    expr = parse_cron(schedule.expr)
    # Fires are whole seconds: "strictly after 10:00:00.5" is "strictly after 10:00:00".
    after = after_aware.replace(tzinfo=None, microsecond=0)
    if schedule.timezone in _TRANSITIONLESS:
        # No gaps, no folds: every wall time is one instant, the UTC one. (The hot path: a
        # scheduler computes this once per fire, 10,000 times a second at the peak.)
        wall = expr.next_local(after)
        if wall is None or (horizon is not None and wall > horizon):
            return None
        return _utc(wall)
    zone = _zone(schedule.timezone)
    wall_after = _wall(zone, after)
    cursor = wall_after  # the next wall-clock match is searched strictly after this
    here = _resolve(zone, wall_after)
    if len(here.instants) == 2 and after < here.instants[1] and here.wall_start is not None:
        # ``after`` is in the first pass of a fold: the second pass, still to come, repeats
        # every wall time from the start of the fold.
        cursor = here.wall_start - _SECOND

    best: datetime | None = None

    def done(candidate: datetime) -> datetime:
        return candidate if best is None else min(best, candidate)

    for _ in range(1000):
        wall = expr.next_local(cursor)
        if wall is None or (horizon is not None and wall > horizon):
            break
        r = _resolve(zone, wall)
        if len(r.instants) == 1:
            # No instant from a later wall time can come before this one.
            if r.instants[0] > after:
                return _utc(done(r.instants[0]))
            cursor = max(wall, wall_after)  # not expected (see the design note): keep moving
            continue
        assert r.transition is not None
        assert r.wall_start is not None
        assert r.wall_end is not None
        if not r.instants:  # a gap: every match in it maps to the transition, or to nothing
            if schedule.dst_gap == "shift" and r.transition > after:  # (always after, in fact)
                return _utc(done(r.transition))
            cursor = max(wall, r.wall_end - _SECOND)
            continue
        first, second = r.instants
        policy = schedule.dst_fold
        # First-pass instants come first and grow with the wall time; then second-pass ones.
        if policy != "last" and first > after:
            return _utc(done(first))
        if policy != "first" and second > after:
            best = done(second)
            if policy == "last":
                return _utc(best)
        offset_before = r.wall_end - r.transition
        offset_after = r.wall_start - r.transition
        if policy != "last" and (policy == "first" or best is not None):
            # Jump to the first wall time whose first-pass instant is after ``after``.
            cursor = max(wall, min(after, r.transition - _SECOND) + offset_before)
        else:
            # Jump to the first wall time whose second-pass instant is after ``after``. (The
            # search starts where that is already so: a fallback that keeps the loop moving.)
            cursor = max(wall, min(after + offset_after, r.wall_end - _SECOND))
    return None if best is None else _utc(best)


_TRANSITIONLESS = frozenset({"UTC", "Etc/UTC"})
"""Zone names whose wall clock is UTC's (the default zone, and its alias)."""


def _utc(naive: datetime) -> datetime:
    return naive.replace(tzinfo=UTC)


def _aware_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return value.astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise InvalidInput(
            f'unknown time zone "{name}": use an IANA name such as "Europe/Paris" or "UTC"',
            field="timezone",
        ) from None


# -- building schedules ----------------------------------------------------------------------

_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d|w)\s*", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION_HELP = "use seconds (30) or units such as 90s, 5m, 1h30m, 2d or 500ms"


def parse_interval(text: str) -> timedelta:
    """Parse an interval: ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``, ``"1500ms"``, or plain
    seconds ``"30"``. It must be at least one second."""
    interval = _parse_duration(text, "every")
    _check_interval(interval, text)
    return interval


def _check_interval(interval: timedelta, shown: object) -> None:
    if interval < _SECOND:
        raise InvalidInput(f'interval "{shown}" must be at least 1 second', field="every")
    if interval > MAX_INTERVAL:
        raise InvalidInput(f'interval "{shown}" is longer than 100 years', field="every")


def _parse_duration(text: str, field: str) -> timedelta:
    if not isinstance(text, str):
        raise InvalidInput(f"{field} must be a string, got {type(text).__name__}", field=field)
    stripped = text.strip()
    if not stripped:
        raise InvalidInput(f"{field} is empty: {_DURATION_HELP}", field=field)
    if re.fullmatch(r"-?(?:\d+(?:\.\d+)?|\.\d+)", stripped):
        return _seconds(float(stripped), text, field)
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(stripped):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        position = match.end()
    if position != len(stripped):
        raise InvalidInput(f'invalid {field} "{text}": {_DURATION_HELP}', field=field)
    return _seconds(total, text, field)


def _seconds(value: float, shown: object, field: str) -> timedelta:
    if not math.isfinite(value) or abs(value) > MAX_INTERVAL.total_seconds() * 10:
        raise InvalidInput(f'{field} "{shown}" is out of range', field=field)
    return timedelta(seconds=value)


def format_interval(interval: timedelta) -> str:
    """``timedelta(seconds=5400)`` -> ``"1h30m"``; the inverse of ``parse_interval``."""
    micros = interval // _MICROSECOND
    if micros <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000)):
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    if micros % 1_000_000 == 0:
        if micros:
            parts.append(f"{micros // 1_000_000}s")
    elif micros % 1000 == 0:
        parts.append(f"{micros // 1000}ms")
    else:
        parts.append(f"{micros / 1_000_000:g}s")
    return "".join(parts)


def make_schedule(
    *,
    cron: str | None = None,
    at: datetime | str | None = None,
    every: timedelta | float | str | None = None,
    timezone: str = "UTC",
    dst_gap: str = "shift",
    dst_fold: str = "first",
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    jitter: timedelta | float | str | None = None,
    anchor: datetime | str | None = None,
    now: datetime,
) -> Schedule:
    """Build and validate a schedule from user input; raise ``InvalidInput`` naming the field.

    Exactly one of ``cron``, ``at`` (an aware datetime or ISO 8601 text with an offset) and
    ``every`` (a timedelta, seconds, or text such as ``"5m"``). ``anchor`` (every) defaults to
    ``now`` truncated to the second."""
    given = [n for n, v in (("cron", cron), ("at", at), ("every", every)) if v is not None]
    if len(given) != 1:
        got = f" (got {' and '.join(given)})" if given else ""
        raise InvalidInput(f"give exactly one of cron, at or every{got}", field="schedule")
    now = _aware_utc(now, "now")
    zone_name = _check_timezone(timezone)
    if dst_gap not in ("shift", "skip"):
        raise InvalidInput(f'dst_gap "{dst_gap}" must be "shift" or "skip"', field="dst_gap")
    if dst_fold not in ("first", "last", "both"):
        raise InvalidInput(
            f'dst_fold "{dst_fold}" must be "first", "last" or "both"', field="dst_fold"
        )
    start_at = _instant(start, "start") if start is not None else None
    end_at = _instant(end, "end") if end is not None else None
    if start_at is not None and end_at is not None and start_at >= end_at:
        raise InvalidInput(
            f"start ({start_at.isoformat()}) must be before end ({end_at.isoformat()})",
            field="end",
        )
    jitter_td = _jitter(jitter)

    if at is not None:
        for name, value, default in (
            ("timezone", zone_name, "UTC"),
            ("dst_gap", dst_gap, "shift"),
            ("dst_fold", dst_fold, "first"),
        ):
            if value != default:
                raise InvalidInput(
                    f"{name} applies to cron schedules; an at schedule is one instant",
                    field=name,
                )
        for name, value2 in (("start", start_at), ("end", end_at)):
            if value2 is not None:
                raise InvalidInput(f"{name} does not apply to an at schedule", field=name)
        if jitter_td:
            raise InvalidInput("jitter does not apply to an at schedule", field="jitter")
        if anchor is not None:
            raise InvalidInput("anchor applies to every schedules only", field="anchor")
        return AtSchedule(at=_instant(at, "at"))

    if every is not None:
        if zone_name != "UTC" or dst_gap != "shift" or dst_fold != "first":
            raise InvalidInput(
                "timezone and DST policies apply to cron schedules; every counts absolute "
                "time (use cron for wall-clock times)",
                field="timezone" if zone_name != "UTC" else "dst_gap",
            )
        interval = _interval(every)
        anchor_at = _instant(anchor, "anchor") if anchor is not None else now.replace(microsecond=0)
        return EverySchedule(
            interval=interval, anchor=anchor_at, start=start_at, end=end_at, jitter=jitter_td
        )

    if anchor is not None:
        raise InvalidInput("anchor applies to every schedules only", field="anchor")
    assert cron is not None
    expr = parse_cron(cron)
    if expr.never_matches:
        raise InvalidInput(
            f'cron "{expr.text}" never fires: no date matches its day and month fields',
            field="cron",
        )
    schedule = CronSchedule(
        expr=expr.text,
        timezone=zone_name,
        dst_gap=cast(DstGap, dst_gap),
        dst_fold=cast(DstFold, dst_fold),
        start=start_at,
        end=end_at,
        jitter=jitter_td,
    )
    _check_fires_under_skip(schedule, now)
    return schedule


NEVER_FIRES_HORIZON_YEARS = 100
"""How far ahead a cron schedule with ``dst_gap="skip"`` is searched for a fire when it is made.

With ``skip``, a time in a spring-forward gap does not fire, so an expression whose every match
falls in a gap (``30 2 * 3 0#2`` in America/New_York: 02:30 on the second Sunday of March) never
fires. Searching without a bound takes hundreds of milliseconds, which any API caller could
repeat at will; a century is enough for any schedule people mean (DST rules repeat yearly), and
the search takes a step per year in the worst case (a few milliseconds)."""


def _check_fires_under_skip(schedule: CronSchedule, now: datetime) -> None:
    if schedule.dst_gap != "skip":
        return  # every wall-clock match then gives an instant: never_matches said enough
    after = now if schedule.start is None else max(now, schedule.start - _MICROSECOND)
    zone = _zone(schedule.timezone)
    wall_after = _wall(zone, after.replace(tzinfo=None, microsecond=0))
    try:
        horizon = wall_after.replace(year=wall_after.year + NEVER_FIRES_HORIZON_YEARS)
    except ValueError:  # 29 February, or the end of the calendar
        horizon = datetime.max if wall_after.year > 9000 else wall_after + timedelta(days=36_525)
    try:
        if _next_cron(schedule, after, horizon) is not None:
            return
    except OverflowError:  # the end of the calendar
        return
    years = NEVER_FIRES_HORIZON_YEARS
    if parse_cron(schedule.expr).next_local(wall_after) is None:
        # Not a DST matter: the expression itself matches nothing for decades.
        raise InvalidInput(
            f'cron "{schedule.expr}" never fires: no time matches it in the next 50 years',
            field="cron",
        )
    raise InvalidInput(
        f'cron "{schedule.expr}" never fires in {schedule.timezone} with dst_gap "skip": '
        f"every time it matches in the next {years} years falls in a daylight-saving gap "
        '(a wall-clock time the clock skips); use dst_gap "shift" to fire at the end of the '
        "gap instead, or choose another time",
        field="dst_gap",
    )


def _check_timezone(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput("timezone must be an IANA name such as Europe/Paris", field="timezone")
    _zone(name)
    return name


def _interval(every: timedelta | float | str) -> timedelta:
    if isinstance(every, bool):
        raise InvalidInput("every must be an interval, not a boolean", field="every")
    if isinstance(every, timedelta):
        interval = every
    elif isinstance(every, int | float):
        interval = _seconds(float(every), every, "every")
    else:
        interval = _parse_duration(every, "every")
    _check_interval(interval, every if isinstance(every, str) else format_interval(interval))
    return interval


def _jitter(jitter: timedelta | float | str | None) -> timedelta:
    if jitter is None:
        return timedelta(0)
    if isinstance(jitter, bool):
        raise InvalidInput("jitter must be a duration, not a boolean", field="jitter")
    if isinstance(jitter, timedelta):
        value = jitter
    elif isinstance(jitter, int | float):
        value = _seconds(float(jitter), jitter, "jitter")
    else:
        value = _parse_duration(jitter, "jitter")
    if value < timedelta(0):
        raise InvalidInput(f'jitter "{jitter}" must not be negative', field="jitter")
    if value >= MAX_JITTER:
        raise InvalidInput(f'jitter "{jitter}" must be less than one day', field="jitter")
    return value


def _instant(value: datetime | str, field: str) -> datetime:
    """An aware datetime, or ISO 8601 text with an offset ('Z' is fine), as UTC."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f'{field} "{value}" is not an ISO 8601 date-time such as 2030-06-01T09:00:00Z',
                field=field,
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise InvalidInput(f"{field} must be a date-time, got {type(value).__name__}", field=field)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidInput(
            f'{field} "{value}" has no UTC offset: add one, as in '
            f"{parsed.replace(microsecond=0).isoformat()}Z or "
            f"{parsed.replace(microsecond=0).isoformat()}+02:00",
            field=field,
        )
    return parsed.astimezone(UTC)


# -- storage and display ---------------------------------------------------------------------


def schedule_to_dict(schedule: Schedule) -> dict[str, Any]:
    """A JSON-compatible dict (ISO 8601 strings, seconds as floats); ``schedule_from_dict``
    gives the same schedule back."""
    if isinstance(schedule, AtSchedule):
        return {"kind": "at", "at": schedule.at.isoformat()}
    bounds = {
        "start": _iso(schedule.start),
        "end": _iso(schedule.end),
        "jitter": schedule.jitter.total_seconds(),
    }
    if isinstance(schedule, EverySchedule):
        return {
            "kind": "every",
            "interval": schedule.interval.total_seconds(),
            "anchor": schedule.anchor.isoformat(),
            **bounds,
        }
    return {
        "kind": "cron",
        "expr": schedule.expr,
        "timezone": schedule.timezone,
        "dst_gap": schedule.dst_gap,
        "dst_fold": schedule.dst_fold,
        **bounds,
    }


def schedule_from_dict(data: dict[str, Any]) -> Schedule:
    """The inverse of ``schedule_to_dict``. Raises ``InvalidInput`` on a malformed dict."""
    try:
        return _from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"malformed schedule: {exc!s}", field="schedule") from None


def _from_dict(data: dict[str, Any]) -> Schedule:
    kind = data["kind"]
    if kind == "at":
        return AtSchedule(at=_from_iso(data["at"]))
    start, end = _from_iso_opt(data.get("start")), _from_iso_opt(data.get("end"))
    jitter = timedelta(seconds=float(data.get("jitter") or 0))
    if kind == "every":
        return EverySchedule(
            interval=timedelta(seconds=float(data["interval"])),
            anchor=_from_iso(data["anchor"]),
            start=start,
            end=end,
            jitter=jitter,
        )
    if kind != "cron":
        raise ValueError(f"unknown kind {kind!r}")
    gap, fold = data.get("dst_gap", "shift"), data.get("dst_fold", "first")
    if gap not in ("shift", "skip") or fold not in ("first", "last", "both"):
        raise ValueError(f"bad DST policy {gap!r}/{fold!r}")
    return CronSchedule(
        expr=str(data["expr"]),
        timezone=str(data.get("timezone", "UTC")),
        dst_gap=gap,
        dst_fold=fold,
        start=start,
        end=end,
        jitter=jitter,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _from_iso_opt(text: str | None) -> datetime | None:
    return None if text is None else _from_iso(text)


def describe(schedule: Schedule) -> str:
    """Short text for people: ``cron 0 9 * * MON-FRI (Europe/Paris)``, ``every 5m``..."""
    if isinstance(schedule, AtSchedule):
        return f"at {_short_iso(schedule.at)}"
    if isinstance(schedule, EverySchedule):
        text = f"every {format_interval(schedule.interval)}"
    else:
        text = f"cron {schedule.expr} ({schedule.timezone})"
        if schedule.dst_gap != "shift" or schedule.dst_fold != "first":
            text += f" dst {schedule.dst_gap}/{schedule.dst_fold}"
    if schedule.start is not None:
        text += f" from {_short_iso(schedule.start)}"
    if schedule.end is not None:
        text += f" until {_short_iso(schedule.end)}"
    if schedule.jitter:
        text += f" jitter {format_interval(schedule.jitter)}"
    return text


def _short_iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
