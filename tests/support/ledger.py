"""Reading the ledger the fault-test tasks write (tests/acceptance/apps/resilience_app.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    event: str  # start, end, cancelled
    run: str
    attempt: int
    token: int
    scheduled_for: float
    at: float
    pid: int


def read(folder: Path) -> list[Entry]:
    path = folder / "ledger"
    if not path.exists():
        return []
    return [Entry(**json.loads(line)) for line in path.read_text().splitlines() if line]


def starts(entries: list[Entry]) -> list[Entry]:
    return [e for e in entries if e.event == "start"]


def overlapping_attempts(entries: list[Entry], now: float) -> list[tuple[Entry, Entry]]:
    """Pairs of attempts of one run that were alive at the same time. An attempt is alive
    from its start to its end (or cancellation); one that never ended is alive until ``now``."""
    spans: dict[tuple[str, int], list[float]] = {}
    first: dict[tuple[str, int], Entry] = {}
    for e in entries:
        key = (e.run, e.token)
        if e.event == "start":
            spans[key] = [e.at, now]
            first[key] = e
        elif key in spans:
            spans[key][1] = e.at
    found = []
    keys = sorted(spans, key=lambda k: spans[k][0])
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if a[0] == b[0] and spans[b][0] < spans[a][1]:
                found.append((first[a], first[b]))
    return found
