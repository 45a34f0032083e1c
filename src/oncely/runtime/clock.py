"""Clocks.

``DatabaseClock`` is what makes guarantee 5 ("one clock") hold on PostgreSQL: every node
reads the database server's time, so a node whose own wall clock is off neither fires early
nor steals leases. Asking the database on every decision would cost a round trip each, so it
samples the database's clock now and then and advances it with the local *monotonic* clock,
which a wrong wall-clock setting or an NTP step does not move.

A sample is only as good as its round trip: it is timed around the query alone (never the
wait for a connection, which lasts as long as a database outage), placed at the end of the
round trip so the clock never runs ahead of the server's (it lags by at most the round trip),
and one slower than ``max_round_trip`` is discarded.
Tests: tests/unit/test_clock.py, tests/integration/test_postgres_recovery.py, and
tests/acceptance/test_skewed_clocks.py (processes whose own clocks are minutes off).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from oncely.ports.clock import TimeSample

log = logging.getLogger("oncely.clock")


class SystemClock:
    """The local wall clock. Right for the embedded SQLite deployment (one machine)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class DatabaseClock:
    """The database server's clock, advanced locally by the monotonic clock between samples.

    The offset is re-sampled every ``resync`` seconds. A sample is the server's
    ``clock_timestamp()``, and only the query is timed: the connection is taken first, so a
    wait for a pooled connection (long during a database outage) cannot be mistaken for
    network delay. The server read its clock at some instant of the round trip, at the
    latest when its answer came back: placing the sample there makes this clock a lower
    bound of the server's, behind by at most the round trip, *never ahead* (a run is never
    started early for it; the midpoint would halve the error but could be ahead by half
    the round trip). A sample whose round trip is longer than ``max_round_trip`` is
    discarded and the old offset kept, so the lag stays small.

    Only the first sample is taken in the caller's thread: later ones go to a background
    thread, since ``now()`` is called on event loops that must not block on a database
    round trip (the old offset, minutes old at most, is as good meanwhile).
    """

    def __init__(
        self,
        read_db_time: Callable[[], TimeSample | datetime],
        *,
        resync: float = 30.0,
        max_round_trip: float = 0.25,
        retry: float = 1.0,
    ) -> None:
        self._read = read_db_time
        self._resync = resync
        self._max_rtt = max_round_trip
        self._retry = retry
        self._lock = threading.Lock()
        self._base: datetime | None = None
        self._base_mono = 0.0
        self._base_rtt = float("inf")
        self._resyncing = False
        self._next_sync = 0.0
        self.discarded = 0
        """Samples thrown away for a long round trip (observable in tests and status)."""

    def _sample(self) -> TimeSample:
        before = time.monotonic()
        value = self._read()
        if isinstance(value, TimeSample):
            return value
        # A bare time: the whole call is the round trip.
        return TimeSample(value, before, time.monotonic())

    def sync(self) -> bool:
        """Take one sample; return whether it was kept."""
        sample = self._sample()
        mono = sample.received
        with self._lock:
            if sample.round_trip > self._max_rtt and self._base is not None:
                self.discarded += 1
                self._next_sync = time.monotonic() + self._retry
                log.info(
                    "database clock sample discarded: round trip %.3f s; keeping the last offset",
                    sample.round_trip,
                )
                return False
            self._base = sample.db_time
            self._base_mono = mono
            self._base_rtt = sample.round_trip
            # A first sample that had to be kept although slow is replaced soon.
            slow = sample.round_trip > self._max_rtt
            self._next_sync = time.monotonic() + (self._retry if slow else self._resync)
            return True

    def now(self) -> datetime:
        mono = time.monotonic()
        if self._base is None:
            self.sync()
            mono = time.monotonic()
        elif mono > self._next_sync:
            self._resync_in_background()
        with self._lock:
            assert self._base is not None
            return self._base + timedelta(seconds=mono - self._base_mono)

    def _resync_in_background(self) -> None:
        with self._lock:
            if self._resyncing:
                return
            self._resyncing = True

        def resync() -> None:
            try:
                self.sync()
            except Exception:
                # The database is unreachable: keep the last offset; the next call retries.
                log.warning("could not read the database clock; keeping the last offset")
                with self._lock:
                    self._next_sync = time.monotonic() + self._retry
            finally:
                with self._lock:
                    self._resyncing = False

        threading.Thread(target=resync, name="oncely-clock-sync", daemon=True).start()


class FrozenClock:
    """A clock that moves only when told to; for tests of code that reads time."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)
