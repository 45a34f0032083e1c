"""An in-process sliding-window counter, for login attempts.

Per process: with several API processes behind a balancer, a client gets up to the limit
from each. That bounds password guessing well enough (argon2 makes each guess costly too);
a shared limit would need a shared store, which the login path should not depend on.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindow:
    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again if it is at its limit now, else None."""
        with self._lock:
            hits = self._recent(key, self._clock())
            if hits is None or len(hits) < self.limit:
                return None
            return max(1, math.ceil(hits[0] + self.window - self._clock()))

    def add(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            hits = self._recent(key, now)
            if hits is None:
                hits = self._hits[key] = deque()
                # Bounded memory under a flood of distinct keys: forget the stalest.
                while len(self._hits) > self._max_keys:
                    self._hits.popitem(last=False)
            hits.append(now)
            self._hits.move_to_end(key)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits
