"""Hand-checked tables of UTC fires around DST transitions.

Every expected instant below was worked out by hand from the zone's published rules (the
comment on each block says which transition and how), not produced by the code under test.
Notation: local wall time -> UTC, with the offset used.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oncely.domain.schedule import CronSchedule, fires_between


def z(text: str) -> datetime:
    """'2024-03-10 07:00' or '2024-03-10 07:00:30' as an aware UTC datetime."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


Row = tuple[str, str, str, str, str, list[str]]  # zone, expr, gap, fold, after, expected fires

# fmt: off
ROWS: list[Row] = [
    # -- America/New_York, spring forward: Sun 2024-03-10 02:00 EST (-5) -> 03:00 EDT (-4),
    #    at 07:00Z. Local 02:00-02:59 does not exist. The end of the gap is 03:00 EDT = 07:00Z.
    # 02:30 on the 9th is EST: 07:30Z (before `after`). On the 10th it does not exist: shift
    # fires at 07:00Z. On the 11th it is EDT: 06:30Z.
    ("America/New_York", "30 2 * * *", "shift", "first", "2024-03-09 12:00",
     ["2024-03-10 07:00", "2024-03-11 06:30"]),
    ("America/New_York", "30 2 * * *", "skip", "first", "2024-03-09 12:00",
     ["2024-03-11 06:30", "2024-03-12 06:30"]),
    # 01:30 is before the gap: 01:30 EST = 06:30Z on the 10th, 01:30 EDT = 05:30Z on the 11th.
    ("America/New_York", "30 1 * * *", "shift", "first", "2024-03-09 12:00",
     ["2024-03-10 06:30", "2024-03-11 05:30"]),
    # Hourly: 01:00 EST = 06:00Z; 02:00 does not exist and shifts to 07:00Z, which is also
    # 03:00 EDT: one fire, not two; 04:00 EDT = 08:00Z. With skip the same instants fire
    # (07:00Z is 03:00 EDT anyway).
    ("America/New_York", "0 * * * *", "shift", "first", "2024-03-10 05:30",
     ["2024-03-10 06:00", "2024-03-10 07:00", "2024-03-10 08:00"]),
    ("America/New_York", "0 * * * *", "skip", "first", "2024-03-10 05:30",
     ["2024-03-10 06:00", "2024-03-10 07:00", "2024-03-10 08:00"]),
    # Every 30 s: 01:59:30 EST = 06:59:30Z, then 02:00:00-02:59:30 all shift to 07:00:00Z,
    # which is also 03:00:00 EDT, then 03:00:30 EDT = 07:00:30Z.
    ("America/New_York", "*/30 * * * * *", "shift", "first", "2024-03-10 06:59:00",
     ["2024-03-10 06:59:30", "2024-03-10 07:00:00", "2024-03-10 07:00:30"]),
    # Every 30 s but only in hour 2: the whole hour is missing. shift: one fire at the end of
    # the gap (07:00:00Z), then 02:00:00 EDT on the 11th = 06:00:00Z. skip: straight to the 11th.
    ("America/New_York", "*/30 * 2 * * *", "shift", "first", "2024-03-10 06:00",
     ["2024-03-10 07:00:00", "2024-03-11 06:00:00", "2024-03-11 06:00:30"]),
    ("America/New_York", "*/30 * 2 * * *", "skip", "first", "2024-03-10 06:00",
     ["2024-03-11 06:00:00", "2024-03-11 06:00:30"]),
    # -- America/New_York, fall back: Sun 2024-11-03 02:00 EDT (-4) -> 01:00 EST (-5), at
    #    06:00Z. Local 01:00-01:59 occurs twice: EDT 05:00Z-05:59Z, then EST 06:00Z-06:59Z.
    # 01:30 on the 2nd is EDT: 05:30Z (before `after`). On the 3rd: 05:30Z (EDT) and 06:30Z
    # (EST). On the 4th: EST, 06:30Z.
    ("America/New_York", "30 1 * * *", "shift", "first", "2024-11-02 12:00",
     ["2024-11-03 05:30", "2024-11-04 06:30"]),
    ("America/New_York", "30 1 * * *", "shift", "last", "2024-11-02 12:00",
     ["2024-11-03 06:30", "2024-11-04 06:30"]),
    ("America/New_York", "30 1 * * *", "shift", "both", "2024-11-02 12:00",
     ["2024-11-03 05:30", "2024-11-03 06:30", "2024-11-04 06:30"]),
    # After the first 01:30 (05:30Z), "both" still has the second 01:30 (06:30Z) to come.
    ("America/New_York", "30 1 * * *", "shift", "both", "2024-11-03 05:30",
     ["2024-11-03 06:30", "2024-11-04 06:30"]),
    # And from the middle of the first pass (01:45 EDT = 05:45Z) too.
    ("America/New_York", "30 1 * * *", "shift", "both", "2024-11-03 05:45",
     ["2024-11-03 06:30", "2024-11-04 06:30"]),
    # 02:30 exists once (EST): 07:30Z.
    ("America/New_York", "30 2 * * *", "shift", "first", "2024-11-02 12:00",
     ["2024-11-03 07:30", "2024-11-04 07:30"]),
    # Hourly from 23:30 EDT on the 2nd (03:30Z): 00:00 EDT = 04:00Z; 01:00 EDT = 05:00Z and/or
    # 01:00 EST = 06:00Z; 02:00 EST = 07:00Z.
    ("America/New_York", "0 * * * *", "shift", "first", "2024-11-03 03:30",
     ["2024-11-03 04:00", "2024-11-03 05:00", "2024-11-03 07:00"]),
    ("America/New_York", "0 * * * *", "shift", "last", "2024-11-03 03:30",
     ["2024-11-03 04:00", "2024-11-03 06:00", "2024-11-03 07:00"]),
    ("America/New_York", "0 * * * *", "shift", "both", "2024-11-03 03:30",
     ["2024-11-03 04:00", "2024-11-03 05:00", "2024-11-03 06:00", "2024-11-03 07:00"]),
    # With seconds: 01:30:00 and 01:30:30, each in EDT (05:30Z) and/or EST (06:30Z).
    ("America/New_York", "0,30 30 1 * * *", "shift", "first", "2024-11-03 00:00",
     ["2024-11-03 05:30:00", "2024-11-03 05:30:30", "2024-11-04 06:30:00"]),
    ("America/New_York", "0,30 30 1 * * *", "shift", "last", "2024-11-03 00:00",
     ["2024-11-03 06:30:00", "2024-11-03 06:30:30", "2024-11-04 06:30:00"]),
    ("America/New_York", "0,30 30 1 * * *", "shift", "both", "2024-11-03 00:00",
     ["2024-11-03 05:30:00", "2024-11-03 05:30:30", "2024-11-03 06:30:00",
      "2024-11-03 06:30:30"]),
    # -- Europe/London: BST starts Sun 2024-03-31 01:00 GMT (+0) -> 02:00 BST (+1) at 01:00Z,
    #    ends Sun 2024-10-27 02:00 BST -> 01:00 GMT at 01:00Z.
    # 01:30 on 30 March is GMT: 01:30Z. On the 31st it does not exist (shift: 01:00Z). On
    # 1 April it is BST: 00:30Z.
    ("Europe/London", "30 1 * * *", "shift", "first", "2024-03-30 00:00",
     ["2024-03-30 01:30", "2024-03-31 01:00", "2024-04-01 00:30"]),
    ("Europe/London", "30 1 * * *", "skip", "first", "2024-03-30 00:00",
     ["2024-03-30 01:30", "2024-04-01 00:30"]),
    # 01:30 on 27 October: BST 00:30Z, then GMT 01:30Z.
    ("Europe/London", "30 1 * * *", "shift", "first", "2024-10-26 12:00",
     ["2024-10-27 00:30", "2024-10-28 01:30"]),
    ("Europe/London", "30 1 * * *", "shift", "last", "2024-10-26 12:00",
     ["2024-10-27 01:30", "2024-10-28 01:30"]),
    ("Europe/London", "30 1 * * *", "shift", "both", "2024-10-26 12:00",
     ["2024-10-27 00:30", "2024-10-27 01:30", "2024-10-28 01:30"]),
    # -- Australia/Lord_Howe: +10:30 standard, +11 summer, a 30-minute shift.
    # October: first Sunday, 2024-10-06 02:00 LHST -> 02:30 LHDT, at 02:00-10:30 = 10-05 15:30Z.
    # 02:15 on the 5th (LHST) = 10-04 15:45Z; on the 6th it does not exist (shift: 15:30Z);
    # on the 7th (LHDT) = 10-06 15:15Z.
    ("Australia/Lord_Howe", "15 2 * * *", "shift", "first", "2024-10-04 12:00",
     ["2024-10-04 15:45", "2024-10-05 15:30", "2024-10-06 15:15"]),
    ("Australia/Lord_Howe", "15 2 * * *", "skip", "first", "2024-10-04 12:00",
     ["2024-10-04 15:45", "2024-10-06 15:15"]),
    # Every 15 minutes in hour 2 on the 6th: 02:00 and 02:15 shift to 15:30Z, which is also
    # 02:30 LHDT; 02:45 LHDT = 15:45Z.
    ("Australia/Lord_Howe", "*/15 2 6 10 *", "shift", "first", "2024-10-05 12:00",
     ["2024-10-05 15:30", "2024-10-05 15:45"]),
    ("Australia/Lord_Howe", "*/15 2 6 10 *", "skip", "first", "2024-10-05 12:00",
     ["2024-10-05 15:30", "2024-10-05 15:45"]),
    # April: first Sunday, 2024-04-07 02:00 LHDT -> 01:30 LHST, at 02:00-11:00 = 04-06 15:00Z.
    # Local 01:30-01:59 occurs twice. 01:45: LHDT 04-06 14:45Z, LHST 04-06 15:15Z.
    # The 6th (LHDT): 04-05 14:45Z. The 8th (LHST): 04-07 15:15Z.
    ("Australia/Lord_Howe", "45 1 * * *", "shift", "first", "2024-04-05 12:00",
     ["2024-04-05 14:45", "2024-04-06 14:45", "2024-04-07 15:15"]),
    ("Australia/Lord_Howe", "45 1 * * *", "shift", "last", "2024-04-05 12:00",
     ["2024-04-05 14:45", "2024-04-06 15:15", "2024-04-07 15:15"]),
    ("Australia/Lord_Howe", "45 1 * * *", "shift", "both", "2024-04-05 12:00",
     ["2024-04-05 14:45", "2024-04-06 14:45", "2024-04-06 15:15", "2024-04-07 15:15"]),
    # 01:15 is not in the repeated half hour: once, LHDT, 04-06 14:15Z. In 2025 summer time
    # ends on Sunday 6 April, so 7 April 2025 is LHST: 01:15-10:30 = 04-06 14:45Z.
    ("Australia/Lord_Howe", "15 1 7 4 *", "shift", "both", "2024-04-05 12:00",
     ["2024-04-06 14:15", "2025-04-06 14:45"]),
    # -- Pacific/Chatham: +12:45 standard, +13:45 summer.
    # September: last Sunday, 2024-09-29 02:45 CHAST -> 03:45 CHADT, at 09-28 14:00Z.
    # 03:00 on the 28th (CHAST) = 09-27 14:15Z; on the 29th it does not exist (shift: 14:00Z);
    # on the 30th (CHADT) = 09-29 13:15Z.
    ("Pacific/Chatham", "0 3 * * *", "shift", "first", "2024-09-27 12:00",
     ["2024-09-27 14:15", "2024-09-28 14:00", "2024-09-29 13:15"]),
    ("Pacific/Chatham", "0 3 * * *", "skip", "first", "2024-09-27 12:00",
     ["2024-09-27 14:15", "2024-09-29 13:15"]),
    # April: first Sunday, 2024-04-07 03:45 CHADT -> 02:45 CHAST, at 04-06 14:00Z. Local
    # 02:45-03:44 occurs twice. 03:00: CHADT 04-06 13:15Z, CHAST 04-06 14:15Z. In 2025 summer
    # time ends on 6 April, so 7 April 2025 is CHAST: 03:00-12:45 = 04-06 14:15Z.
    ("Pacific/Chatham", "0 3 7 4 *", "shift", "first", "2024-04-06 00:00",
     ["2024-04-06 13:15", "2025-04-06 14:15"]),
    ("Pacific/Chatham", "0 3 7 4 *", "shift", "last", "2024-04-06 00:00",
     ["2024-04-06 14:15", "2025-04-06 14:15"]),
    ("Pacific/Chatham", "0 3 7 4 *", "shift", "both", "2024-04-06 00:00",
     ["2024-04-06 13:15", "2024-04-06 14:15", "2025-04-06 14:15"]),
    # -- Antarctica/Troll: +00 in winter, +02 in summer; changes at 01:00 UTC on the EU dates.
    # 2024-03-31 01:00Z: local 01:00 -> 03:00, a two-hour gap. 01:30 and 02:30 both shift to
    # 01:00Z; one fire. 01:30 on the 30th (+00) = 01:30Z; on 1 April (+02) = 03-31 23:30Z.
    ("Antarctica/Troll", "30 1,2 * * *", "shift", "first", "2024-03-30 12:00",
     ["2024-03-31 01:00", "2024-03-31 23:30", "2024-04-01 00:30"]),
    ("Antarctica/Troll", "30 1,2 * * *", "skip", "first", "2024-03-30 12:00",
     ["2024-03-31 23:30", "2024-04-01 00:30"]),
    # 2024-10-27 01:00Z: local 03:00 -> 01:00. Local 01:00-02:59 occurs twice: first at +02
    # (10-26 23:00Z-00:59Z), then at +00 (01:00Z-02:59Z). Hourly from 00:30 local (22:30Z):
    # 01:00 -> 23:00Z / 01:00Z; 02:00 -> 00:00Z / 02:00Z; 03:00 (+00) -> 03:00Z.
    ("Antarctica/Troll", "0 * * * *", "shift", "first", "2024-10-26 22:30",
     ["2024-10-26 23:00", "2024-10-27 00:00", "2024-10-27 03:00"]),
    ("Antarctica/Troll", "0 * * * *", "shift", "last", "2024-10-26 22:30",
     ["2024-10-27 01:00", "2024-10-27 02:00", "2024-10-27 03:00"]),
    ("Antarctica/Troll", "0 * * * *", "shift", "both", "2024-10-26 22:30",
     ["2024-10-26 23:00", "2024-10-27 00:00", "2024-10-27 01:00", "2024-10-27 02:00",
      "2024-10-27 03:00"]),
    # "both" from inside the first pass (01:30 local first = 23:30Z): next is 02:00 first
    # (00:00Z), then the repeated 01:00 (01:00Z).
    ("Antarctica/Troll", "0 * * * *", "shift", "both", "2024-10-26 23:30",
     ["2024-10-27 00:00", "2024-10-27 01:00", "2024-10-27 02:00"]),
    # -- Pacific/Apia skipped Friday 2011-12-30 entirely: Thu 29 Dec 24:00 (-10) became Sat
    #    31 Dec 00:00 (+14), at 12-30 10:00Z. Noon on the 29th (-10) = 12-29 22:00Z; noon on
    #    the 30th does not exist (shift: 12-30 10:00Z); noon on the 31st (+14) = 12-30 22:00Z.
    ("Pacific/Apia", "0 12 * * *", "shift", "first", "2011-12-29 12:00",
     ["2011-12-29 22:00", "2011-12-30 10:00", "2011-12-30 22:00"]),
    ("Pacific/Apia", "0 12 * * *", "skip", "first", "2011-12-29 12:00",
     ["2011-12-29 22:00", "2011-12-30 22:00"]),
    # -- Asia/Pyongyang moved from +09 to +08:30 on 2015-08-15 00:00 (clocks back to 14
    #    August 23:30, at 08-14 15:00Z), and back to +09 on 2018-05-04 23:30 (clocks forward
    #    to 5 May 00:00, at 05-04 15:00Z). Permanent offset changes, not DST.
    # 23:45 on 14 Aug 2015 occurs at +09 (14:45Z) and at +08:30 (15:15Z).
    ("Asia/Pyongyang", "45 23 14 8 *", "shift", "both", "2015-08-14 00:00",
     ["2015-08-14 14:45", "2015-08-14 15:15", "2016-08-14 15:15"]),
    # 23:45 on 4 May 2018 does not exist (shift: 15:00Z); on 5 May (+09) = 14:45Z.
    ("Asia/Pyongyang", "45 23 * * *", "shift", "first", "2018-05-04 00:00",
     ["2018-05-04 15:00", "2018-05-05 14:45"]),
    ("Asia/Pyongyang", "45 23 * * *", "skip", "first", "2018-05-04 00:00",
     ["2018-05-05 14:45", "2018-05-06 14:45"]),
    # -- UTC: no transitions. 2024-03-08 is a Friday; the next weekdays are Mon 11, Tue 12.
    ("UTC", "0 9 * * MON-FRI", "shift", "first", "2024-03-08 12:00",
     ["2024-03-11 09:00", "2024-03-12 09:00"]),
    ("UTC", "*/30 * * * * *", "skip", "both", "2024-03-10 07:00",
     ["2024-03-10 07:00:30", "2024-03-10 07:01:00"]),
]
# fmt: on


@pytest.mark.parametrize(
    ("zone", "expr", "gap", "fold", "after", "expected"),
    ROWS,
    ids=[f"{r[0]}|{r[1]}|{r[2]}|{r[3]}|{r[4]}" for r in ROWS],
)
def test_dst_table(
    zone: str, expr: str, gap: str, fold: str, after: str, expected: list[str]
) -> None:
    sched = CronSchedule(expr=expr, timezone=zone, dst_gap=gap, dst_fold=fold)  # type: ignore[arg-type]
    got = fires_between(sched, z(after), z("2100-01-01 00:00"), len(expected))
    assert got == [z(e) for e in expected]
