"""Micro-benchmark of the cron matcher's hot path: ``CronExpr.next_local`` and ``next_fire``.

Run: ``python -m bench.cron_next``. Prints, for a few typical and awkward expressions, the median
(over several runs) of the time per call, in microseconds. The scheduler computes a next fire for
every fire it materializes, so this is the number to keep from growing.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from oncely.domain.cron import parse_cron
from oncely.domain.schedule import CronSchedule, next_fire

EXPRESSIONS = [
    "* * * * *",
    "*/5 * * * * *",
    "0 9 * * MON-FRI",
    "0 0 1 * *",
    "0 0 L * *",
    "0 0 15W * *",
    "0 0 * * 5L",
    "0 0 * * MON#2",
    "0 0 13 * FRI",
    "0 0 29 2 *",
]
"""Each is followed from 2024 for CALLS fires (from 2024 again when the calendar ends)."""
CALLS = 2000
RUNS = 7


def _per_call_local(expr: str) -> float:
    cron = parse_cron(expr)
    samples = []
    for _ in range(RUNS):
        current = datetime(2024, 1, 1)
        begin = time.perf_counter()
        for _ in range(CALLS):
            found = cron.next_local(current)
            current = found if found is not None else datetime(2024, 1, 1)
        samples.append((time.perf_counter() - begin) / CALLS)
    return statistics.median(samples)


def _per_call_fire(expr: str, zone: str) -> float:
    schedule = CronSchedule(expr=expr, timezone=zone)
    samples = []
    for _ in range(RUNS):
        current = datetime(2024, 1, 1, tzinfo=UTC)
        begin = time.perf_counter()
        for _ in range(CALLS // 4):
            found = next_fire(schedule, current)
            current = found if found is not None else datetime(2024, 1, 1, tzinfo=UTC)
        samples.append((time.perf_counter() - begin) / (CALLS // 4))
    return statistics.median(samples)


def main() -> None:
    print(f"{'expression':<20} {'next_local µs':>14} {'next_fire NY µs':>16}")
    for expr in EXPRESSIONS:
        local = _per_call_local(expr) * 1e6
        fire = _per_call_fire(expr, "America/New_York") * 1e6
        print(f"{expr:<20} {local:>14.1f} {fire:>16.1f}")


if __name__ == "__main__":
    main()
