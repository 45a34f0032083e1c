"""DatabaseClock: the database's time, advanced locally, re-read without blocking callers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from oncely.runtime.clock import DatabaseClock

DB_T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_reads_the_database_once_then_advances_by_the_monotonic_clock() -> None:
    reads: list[int] = []

    def read() -> datetime:
        reads.append(1)
        return DB_T0

    clock = DatabaseClock(read, resync=60)
    first = clock.now()
    time.sleep(0.05)
    second = clock.now()
    assert len(reads) == 1
    assert abs((first - DB_T0).total_seconds()) < 0.01
    assert timedelta(seconds=0.04) <= second - first < timedelta(seconds=0.5)


def test_a_stale_offset_is_refreshed_in_the_background_without_blocking() -> None:
    release = threading.Event()
    calls = 0

    def read() -> datetime:
        nonlocal calls
        calls += 1
        if calls == 1:
            return DB_T0
        release.wait(5)  # a slow database
        return DB_T0 + timedelta(hours=1)

    clock = DatabaseClock(read, resync=0.01)
    clock.now()
    time.sleep(0.03)
    started = time.monotonic()
    during = clock.now()  # stale: starts the background read, answers from the old offset
    assert time.monotonic() - started < 0.5
    assert during < DB_T0 + timedelta(minutes=1)
    release.set()
    deadline = time.monotonic() + 5
    while clock.now() < DB_T0 + timedelta(minutes=30) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert clock.now() >= DB_T0 + timedelta(hours=1)


def test_an_unreachable_database_keeps_the_last_offset() -> None:
    calls = 0

    def read() -> datetime:
        nonlocal calls
        calls += 1
        if calls == 1:
            return DB_T0
        raise ConnectionError("database down")

    clock = DatabaseClock(read, resync=0.01)
    before = clock.now()
    time.sleep(0.03)
    clock.now()
    time.sleep(0.1)
    after = clock.now()
    assert calls >= 2
    assert timedelta(0) < after - before < timedelta(seconds=1)


def test_a_sample_with_a_long_round_trip_is_discarded_and_the_offset_kept() -> None:
    from oncely.ports.clock import TimeSample

    samples: list[TimeSample] = []

    def read() -> TimeSample:
        sent = time.monotonic()
        if not samples:
            sample = TimeSample(DB_T0, sent, sent + 0.002)
        else:
            # An answer that took 10 s (a database outage): its time could be off by 5 s.
            sample = TimeSample(DB_T0 + timedelta(hours=1), sent - 10, sent)
        samples.append(sample)
        return sample

    clock = DatabaseClock(read, resync=60, max_round_trip=0.25)
    first = clock.now()
    assert clock.sync() is False
    assert clock.discarded == 1
    assert clock.now() - first < timedelta(seconds=1)


def test_the_sample_is_placed_at_the_end_of_its_round_trip_so_never_ahead() -> None:
    """The server read DB_T0 at some instant of a 0.2 s round trip that just ended: the
    clock assumes the latest (now), so it can lag the server by 0.2 s but never lead it."""
    from oncely.ports.clock import TimeSample

    def read() -> TimeSample:
        now = time.monotonic()
        return TimeSample(DB_T0, now - 0.2, now)

    clock = DatabaseClock(read, resync=60, max_round_trip=0.25)
    assert abs((clock.now() - DB_T0).total_seconds()) < 0.02
