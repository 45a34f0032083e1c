"""Schedules in words: "At 09:00, Monday through Friday (Europe/Paris)", "Every 10 seconds".

Design note
-----------
The text is built from the expression *as written* (``MON-FRI`` reads "Monday through Friday",
``*/15`` reads "every 15 minutes"), after ``parse_cron`` has validated it, so the words follow
the author's intent while the meaning stays the one ``oncely.domain.cron`` gives the expression:

* ``5/10`` runs from 5 to the field's end (Quartz); ``5-5/10`` is just 5; ``7`` is Sunday;
  ``FRI-SUN`` wraps to Sunday.
* A step that does not divide its field evenly (``*/7`` minutes: ..., 49, 56, then 0) is not
  "every 7 minutes" across the hour, so its values are listed instead.
* Day rule (Vixie cron): when both day fields are restricted and neither starts with ``*``, a day
  matches if EITHER matches ("on the 1st of the month or on Monday"); when one starts with
  ``*`` (``*/2``), a day must match BOTH ("on every 2nd day of the month, if it is a Monday").

Nothing here decides when a schedule fires; that is ``oncely.domain.schedule``'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from oncely.domain.cron import MACROS, parse_cron
from oncely.domain.schedule import AtSchedule, CronSchedule, EverySchedule, Schedule

__all__ = ["cron_in_words", "dst_policy_in_words", "duration_in_words", "schedule_in_words"]

_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MONTH_NUMBERS = {name[:3].upper(): i + 1 for i, name in enumerate(_MONTHS)}
_DAY_NUMBERS = {name[:3].upper(): i for i, name in enumerate(_DAYS)}
_NTH = ["", "first", "second", "third", "fourth", "fifth"]
_MAX_LISTED_TIMES = 8


@dataclass(frozen=True)
class _Item:
    """One comma-separated item of a field: ``*``, ``v``, ``a-b``, each with an optional step.

    ``low``/``high`` are the bounds the item covers (a value has low == high)."""

    star: bool
    low: int
    high: int
    step: int  # 1 when no step was written

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    @property
    def single(self) -> bool:
        return len(self.values()) == 1


def _number(token: str, names: dict[str, int] | None) -> int:
    if names is not None and token in names:
        return names[token]
    return int(token)


def _item(text: str, low: int, high: int, names: dict[str, int] | None = None) -> _Item:
    """An item of a field ``parse_cron`` has already accepted."""
    body, slash, step_text = text.partition("/")
    step = int(step_text) if slash else 1
    if body == "*":
        item = _Item(True, low, high, step)
    elif "-" in body:
        a_text, _, b_text = body.partition("-")
        a, b = _number(a_text, names), _number(b_text, names)
        if names is _DAY_NUMBERS and b == 0 and a > 0:
            b = 7  # FRI-SUN
        item = _Item(False, a, b, step)
    else:
        a = _number(body, names)
        item = _Item(False, a, high if slash else a, step)
    values = item.values()
    if len(values) == 1:
        return _Item(False, values[0], values[0], 1)
    if item.step == 1 and item.low == low and item.high == high:
        return _Item(True, low, high, 1)  # 0-59 is every minute
    return item


def _items(text: str, low: int, high: int, names: dict[str, int] | None = None) -> list[_Item]:
    return _normalized([_item(t, low, high, names) for t in text.split(",")], low, high)


def _normalized(items: list[_Item], low: int, high: int) -> list[_Item]:
    """One item as written; several are read as the set of values they cover (``*`` in a
    list covers everything, duplicates go): the whole field, one stepped range, or runs."""
    if len(items) <= 1:
        return items
    values = sorted({v for item in items for v in item.values()})
    if len(values) == high - low + 1:
        return [_Item(True, low, high, 1)]
    steps = {b - a for a, b in pairwise(values)}
    if len(values) >= 3 and len(steps) == 1:
        step = steps.pop()
        whole = values[0] == low and values[-1] + step > high
        return [_Item(whole and step > 1, values[0], values[-1], step)]
    out: list[_Item] = []
    for a, b in _runs(values):
        if b - a >= 2:
            out.append(_Item(False, a, b, 1))
        else:
            out.extend(_Item(False, v, v, 1) for v in range(a, b + 1))
    return out


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _evenly(item: _Item, low: int, high: int) -> bool:
    """``*/n`` where n divides the field's span: the same gap across the field's wrap."""
    return item.star and (high - low + 1) % item.step == 0


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


# -- time of day -----------------------------------------------------------------------------


def _sub_hour_phrase(items: list[_Item], unit: str, high: int) -> str:
    """Seconds or minutes, as the leading clause: "every 10 seconds", "at minutes 0 and 30"."""
    if len(items) > 1 and all(i.single or (not i.star and i.step == 1) for i in items):
        listed = [str(i.low) if i.single else f"{i.low} through {i.high}" for i in items]
        return f"at {unit}s {_join(listed)}"
    phrases: list[str] = []
    values: list[int] = []
    for item in items:
        if item.single:
            values.append(item.low)
        elif item.star and item.step == 1:
            phrases.append(f"every {unit}")
        elif _evenly(item, 0, high):
            phrases.append(f"every {item.step} {unit}s")
        elif item.star:
            values.extend(item.values())
        elif item.step == 1:
            phrases.append(f"every {unit} from {unit} {item.low} through {item.high}")
        else:
            last = item.values()[-1]
            phrases.append(f"every {item.step} {unit}s from {unit} {item.low} through {last}")
    if values:
        ordered = sorted(set(values))
        shown = _join([str(v) for v in ordered])
        phrases.insert(0, f"at {unit}s {shown}" if len(ordered) > 1 else f"at {unit} {shown}")
    return _join(phrases)


def _during_phrase(items: list[_Item], unit: str, high: int) -> str:
    """Minutes restricting a seconds clause: "during minutes 0 through 4"."""
    parts: list[str] = []
    values: list[int] = []
    for item in items:
        if item.single:
            values.append(item.low)
        elif _evenly(item, 0, high) and item.step > 1:
            parts.append(f"every {_ordinal(item.step)} {unit}")
        elif item.star:
            values.extend(item.values())
        elif item.step == 1:
            parts.append(f"{unit}s {item.low} through {item.high}")
        else:
            parts.append(
                f"every {_ordinal(item.step)} {unit} from {item.low} through {item.values()[-1]}"
            )
    if values:
        ordered = sorted(set(values))
        shown = _join([str(v) for v in ordered])
        parts.insert(0, f"{unit}s {shown}" if len(ordered) > 1 else f"{unit} {shown}")
    return "during " + _join(parts)


def _hours_phrase(items: list[_Item]) -> str:
    """Hours restricting a sub-hour clause: "from 09:00 through 17:59"."""
    parts: list[str] = []
    values: list[int] = []
    for item in items:
        if item.single:
            values.append(item.low)
        elif _evenly(item, 0, 23):
            parts.append(f"during every {_ordinal(item.step)} hour")
        elif item.star:
            values.extend(item.values())
        elif item.step == 1:
            parts.append(f"from {item.low:02d}:00 through {item.high:02d}:59")
        else:
            last = item.values()[-1]
            parts.append(
                f"during every {_ordinal(item.step)} hour from {item.low:02d}:00 "
                f"through {last:02d}:59"
            )
    if values:
        ordered = sorted(set(values))
        if len(ordered) == 1:
            h = ordered[0]
            parts.insert(0, f"from {h:02d}:00 through {h:02d}:59")
        else:
            parts.insert(0, "during the " + _join([f"{h:02d}:00" for h in ordered]) + " hours")
    return _join(parts)


def _hours_with_fixed_minute(items: list[_Item], minute: int, second: str) -> str:
    """The hours of a schedule firing once an hour at a fixed minute (and second)."""

    def at(h: int) -> str:
        return f"{h:02d}:{minute:02d}{second}"

    if len(items) == 1:
        item = items[0]
        mark = f"on the hour{second and f' (second {int(second[1:])})'}" if minute == 0 else ""
        where = mark or f"at minute {minute}{second and f', second {int(second[1:])}'}"
        if item.star and item.step == 1:
            return f"Every hour, {where}"
        if _evenly(item, 0, 23):
            return f"Every {item.step} hours, {where}, from {at(0)}"
        if not item.star:
            last = item.values()[-1]
            every = "Every hour" if item.step == 1 else f"Every {item.step} hours"
            return f"{every} from {at(item.low)} through {at(last)}"
    values = sorted({v for item in items for v in item.values()})
    return "At " + _join([at(h) for h in values])


def _time_phrase(seconds: str | None, minutes: str, hours: str) -> str:
    sec_items = _items(seconds, 0, 59) if seconds is not None else [_Item(False, 0, 0, 1)]
    min_items = _items(minutes, 0, 59)
    hour_items = _items(hours, 0, 23)
    sec_fixed = len(sec_items) == 1 and sec_items[0].single
    min_fixed = len(min_items) == 1 and min_items[0].single

    # A short list of times of day: "At 09:00 and 17:30".
    if all(i.single for i in (*sec_items, *min_items, *hour_items)):
        count = len({i.low for i in sec_items}) * len({i.low for i in min_items})
        count *= len({i.low for i in hour_items})
        if count <= _MAX_LISTED_TIMES:
            secs = sorted({i.low for i in sec_items})
            show_seconds = secs != [0]
            times = sorted(
                (h, m, s)
                for h in {i.low for i in hour_items}
                for m in {i.low for i in min_items}
                for s in secs
            )
            return "At " + _join(
                [f"{h:02d}:{m:02d}" + (f":{s:02d}" if show_seconds else "") for h, m, s in times]
            )

    if sec_fixed and min_fixed:
        second = sec_items[0].low
        return _hours_with_fixed_minute(
            hour_items, min_items[0].low, f":{second:02d}" if second else ""
        )

    clauses: list[str] = []
    if not sec_fixed:
        clauses.append(_sub_hour_phrase(sec_items, "second", 59))
        if not (len(min_items) == 1 and min_items[0].star and min_items[0].step == 1):
            clauses.append(_during_phrase(min_items, "minute", 59))
    else:
        clauses.append(_sub_hour_phrase(min_items, "minute", 59))
        if sec_items[0].low:
            clauses[-1] += f", at second {sec_items[0].low}"
    if not (len(hour_items) == 1 and hour_items[0].star and hour_items[0].step == 1):
        clauses.append(_hours_phrase(hour_items))
    text = ", ".join(clauses)
    return text[0].upper() + text[1:]


# -- days and months -------------------------------------------------------------------------


def _dom_phrase(text: str) -> str | None:
    """Day-of-month as a noun phrase ("the 1st and 15th of the month"); None for every day."""
    parts: list[str] = []
    plain: list[_Item] = []
    for part in text.split(","):
        if part == "L":
            parts.append("the last day")
        elif part == "LW":
            parts.append("the last weekday")
        elif part.startswith("L-"):
            n = int(part[2:])
            # L-1 is the day before the last: the 2nd-last.
            parts.append("the last day" if n == 0 else f"the {_ordinal(n + 1)}-last day")
        elif part.endswith("W"):
            parts.append(f"the weekday nearest the {_ordinal(int(part[:-1]))}")
        else:
            plain.append(_item(part, 1, 31))
    listed: list[tuple[int, str]] = []  # days and plain ranges, read as one list
    for item in _normalized(plain, 1, 31):
        if item.single:
            listed.append((item.low, _ordinal(item.low)))
        elif item.star and item.step == 1:
            return None
        elif item.star:
            parts.append(f"every {_ordinal(item.step)} day starting on the 1st")
        elif item.step == 1:
            listed.append((item.low, f"{_ordinal(item.low)} through {_ordinal(item.high)}"))
        else:
            last = item.values()[-1]
            parts.append(
                f"every {_ordinal(item.step)} day from the {_ordinal(item.low)} "
                f"through the {_ordinal(last)}"
            )
    if listed:
        parts.insert(0, "the " + _join([words for _, words in sorted(listed)]))
    return _join(parts) + " of the month"


def _runs(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][1] + 1 == v:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def _named_set(values: list[int], names: list[str]) -> str:
    """Consecutive runs of three or more read "X through Y"; others are listed."""
    words: list[str] = []
    for a, b in _runs(values):
        if b - a >= 2:
            words.append(f"{names[a]} through {names[b]}")
        else:
            words.extend(names[v] for v in range(a, b + 1))
    return _join(words)


def _dow_phrase(text: str) -> tuple[str | None, bool]:
    """Day-of-week as a phrase, and whether it holds only plain days. None: every day."""
    plain: set[int] = set()
    special: list[str] = []
    for part in text.split(","):
        if "#" in part:
            day_text, _, nth = part.partition("#")
            day = _number(day_text, _DAY_NUMBERS) % 7
            special.append(f"the {_NTH[int(nth)]} {_DAYS[day]} of the month")
        elif part.endswith("L"):
            day = _number(part[:-1], _DAY_NUMBERS) % 7
            special.append(f"the last {_DAYS[day]} of the month")
        else:
            plain |= {v % 7 for v in _item(part, 0, 7, _DAY_NUMBERS).values()}
    if len(plain) == 7:
        return None, True
    # Monday first, so that a weekend reads "Saturday and Sunday" and FRI-SUN stays a run.
    monday_first = sorted(plain, key=lambda d: (d + 6) % 7)
    names = [_DAYS[(i + 1) % 7] for i in range(7)]
    words = _named_set([(d + 6) % 7 for d in monday_first], names) if plain else ""
    special = list(dict.fromkeys(special))  # 3L,3L reads once
    return _join([w for w in (words, *special) if w]), not special


def _month_phrase(text: str) -> str | None:
    values: set[int] = set()
    for part in text.split(","):
        values |= set(_item(part, 1, 12, _MONTH_NUMBERS).values())
    if len(values) == 12:
        return None
    return "in " + _named_set(sorted(v - 1 for v in values), _MONTHS)


def _day_phrase(dom: str, dow: str) -> str:
    dom_words = _dom_phrase(dom)
    dow_words, dow_plain = _dow_phrase(dow)
    day_and = dom.startswith("*") or dow.startswith("*")
    if dom_words is None and dow_words is None:
        return ""
    if not day_and and (dom_words is None or dow_words is None):
        return ""  # either may match, and one matches every day
    if dow_words is None:
        return f" on {dom_words}"
    dow_only = f"on {dow_words}" if not dow_plain or " through " not in dow_words else dow_words
    if dom_words is None:
        return f", {dow_only}"
    if day_and:
        return f" on {dom_words}, if it is {_article(dow_words, dow_plain)}"
    return f" on {dom_words} or on {_article(dow_words, dow_plain, any_of=True)}"


def _article(dow_words: str, plain: bool, *, any_of: bool = False) -> str:
    if not plain:
        return dow_words
    if " through " in dow_words or " and " in dow_words:
        return f"any of {dow_words}" if any_of else f"a day from {dow_words}"
    return f"a {dow_words}"


# -- public ----------------------------------------------------------------------------------


def cron_in_words(expr: str) -> str:
    """An English description of a cron expression (raises ``InvalidInput`` if it is invalid).

    ``"0 9 * * MON-FRI"`` -> ``"At 09:00, Monday through Friday"``."""
    cron = parse_cron(expr)
    text = cron.text
    parts = (MACROS[text.lower()] if text.startswith("@") else text).upper().split()
    seconds = parts.pop(0) if len(parts) == 6 else None
    minutes, hours, dom, month, dow = parts
    words = _time_phrase(seconds, minutes, hours) + _day_phrase(dom, dow)
    month_words = _month_phrase(month)
    if month_words is not None:
        words += f", {month_words}"
    if cron.never_matches:
        words += " (no date matches: never fires)"
    return words


def duration_in_words(value: timedelta) -> str:
    """``timedelta(seconds=5400)`` -> ``"1 hour 30 minutes"``."""
    micros = value // timedelta(microseconds=1)
    if micros <= 0:
        return "0 seconds"
    words: list[str] = []
    for unit, size in (("day", 86_400_000_000), ("hour", 3_600_000_000), ("minute", 60_000_000)):
        count, micros = divmod(micros, size)
        if count:
            words.append(_plural(count, unit))
    if micros:
        if micros % 1_000_000 == 0:
            words.append(_plural(micros // 1_000_000, "second"))
        elif micros % 1000 == 0:
            words.append(_plural(micros // 1000, "millisecond"))
        else:
            words.append(f"{micros / 1_000_000:g} seconds")
    return " ".join(words)


def _every_words(interval: timedelta) -> str:
    text = duration_in_words(interval)
    return "Every " + (text[2:] if text.startswith("1 ") and " " not in text[2:] else text)


def dst_policy_in_words(schedule: CronSchedule) -> str:
    """What a DST change does to this schedule's fires, in words."""
    gap = {
        "shift": "a time skipped by a clock change fires when the clock jumps",
        "skip": "a time skipped by a clock change does not fire",
    }[schedule.dst_gap]
    fold = {
        "first": "a time that occurs twice fires the first time",
        "last": "a time that occurs twice fires the second time",
        "both": "a time that occurs twice fires both times",
    }[schedule.dst_fold]
    return f"{gap}; {fold}"


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def schedule_in_words(schedule: Schedule) -> str:
    """Any schedule in words, with its zone, non-default DST policy, bounds and jitter."""
    if isinstance(schedule, AtSchedule):
        return f"Once, at {_instant(schedule.at)}"
    if isinstance(schedule, EverySchedule):
        text = f"{_every_words(schedule.interval)}, counted from {_instant(schedule.anchor)}"
    else:
        text = f"{cron_in_words(schedule.expr)} ({schedule.timezone})"
        if schedule.dst_gap != "shift" or schedule.dst_fold != "first":
            text += f"; {dst_policy_in_words(schedule)}"
    if schedule.start is not None and schedule.end is not None:
        text += f"; from {_instant(schedule.start)} until {_instant(schedule.end)}"
    elif schedule.start is not None:
        text += f"; from {_instant(schedule.start)}"
    elif schedule.end is not None:
        text += f"; until {_instant(schedule.end)}"
    if schedule.jitter:
        text += f"; each fire delayed by up to {duration_in_words(schedule.jitter)}"
    return text
