"""The clock port: every scheduling decision reads time through one of these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...


@dataclass(frozen=True)
class TimeSample:
    """One reading of a reference clock (the database server's), timed by the reader.

    ``db_time`` was read on the server while the query was in flight; ``sent`` and
    ``received`` are the reader's ``time.monotonic()`` just before the query went out and just
    after its answer came back: the time spent *waiting for a connection* is not in between,
    so the round trip (``received - sent``) bounds the sample's error (by half of it)."""

    db_time: datetime
    sent: float
    received: float

    @property
    def round_trip(self) -> float:
        return self.received - self.sent
