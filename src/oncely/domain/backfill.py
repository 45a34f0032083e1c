"""Backfills: a job's fires of a past period, created as runs, once.

Design note
-----------
A backfilled fire IS the fire (job_id, scheduled_for): it is inserted as an ordinary run of
that fire under the store's unique key, so a fire that already has a run (it ran at the time,
or an earlier backfill made it) is left alone, and backfilling a window twice creates nothing
new. The runs are due oldest first, spaced by 1/rate from the moment the backfill is made (a
rate of 2 per second makes them due at now, now+0.5 s, now+1 s...), so a backfill of 10,000
fires does not land on the workers at once; they are claimed as any run is, under the job's
overlap policy, queue and priority. A backfill record lists what was asked and what was
created; cancelling it cancels its runs that have not started (``pending``) and leaves the
others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from oncely.domain.errors import InvalidInput

__all__ = ["DEFAULT_RATE", "MAX_RATE", "Backfill", "BackfillState", "due_times", "validate_rate"]

BackfillState = Literal["active", "cancelled"]
DEFAULT_RATE = 1.0
"""Runs per second a backfill makes due unless told otherwise."""
MAX_RATE = 1000.0
MIN_RATE = 1 / 86_400


@dataclass(frozen=True)
class Backfill:
    id: str
    owner: str
    job_id: str
    start: datetime
    end: datetime
    rate: float
    fires: int
    """Fires of the schedule in [start, end]."""
    created: int
    """Runs created: the fires that had no run yet."""
    state: BackfillState
    created_at: datetime
    created_by: str | None = None
    cancelled_at: datetime | None = None
    cancelled: int = 0
    """Runs cancelled with the backfill (those not started yet)."""


def validate_rate(rate: float) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise InvalidInput("rate must be a number of runs per second", field="rate")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidInput(
            f"rate must be between one run a day ({MIN_RATE:.6f}) and {MAX_RATE:g} runs per second",
            field="rate",
        )
    return float(rate)


def due_times(fires: Sequence[datetime], *, now: datetime, rate: float) -> list[datetime]:
    """When each fire's run becomes due: oldest first, spaced by 1/rate from ``now``."""
    step = timedelta(seconds=1 / validate_rate(rate))
    return [now + i * step for i in range(len(fires))]
