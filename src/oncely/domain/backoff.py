"""Retry delays: exponential backoff with full jitter."""

from __future__ import annotations

import random
from datetime import timedelta


def backoff_delay(
    failures: int, base_delay: float, max_delay: float, rand: random.Random | None = None
) -> timedelta:
    """The wait before the next attempt after ``failures`` failed attempts (1 for the first).

    Full jitter: uniform in ``[0, min(max_delay, base_delay * 2**failures)]`` (DESIGN §3:
    ``base_delay * 2**attempt``, ``attempt`` being the number of the attempt that failed). Spreading
    retries over the whole window is what keeps a thousand runs that failed together (a
    downstream outage) from retrying together and knocking it over again.
    """
    if failures < 1:
        raise ValueError("failures counts failed attempts and starts at 1")
    # Cap the exponent: 2**64 seconds is already far past any max_delay.
    ceiling = min(max_delay, base_delay * (2 ** min(failures, 64)))
    r = rand.random() if rand is not None else random.random()  # noqa: S311 - not crypto
    return timedelta(seconds=ceiling * r)
