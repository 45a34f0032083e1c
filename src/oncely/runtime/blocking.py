"""Running the synchronous store from the asyncio runtime.

The Store interface is synchronous (simple to implement, test and reason about); the runtime
is asyncio (HTTP actions, subprocesses, timers and cancellation compose there). Store calls
run on dedicated thread pools: the scheduler's, the worker's hot path (claims, heartbeats,
completions) and users' tasks (transactional ones included) each have their own, so a
hundred slow tasks can never starve the heartbeats that keep their leases alive, nor the
scheduler's shard leases.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class BlockingCaller:
    def __init__(self, threads: int, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop taking calls; with ``wait``, also wait for those running (a call stuck on an
        unreachable database would hold a caller that waits for it)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
