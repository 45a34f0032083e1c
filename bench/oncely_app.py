"""The oncely app the benchmark's workers import (``--app bench.oncely_app:app``).

Its one task is the shared no-op: it records (key, scheduled time, start time) and returns.
It is ``async``: oncely runs coroutine tasks on the worker's event loop (sync ones go to a
thread pool), and a no-op has nothing to wait for.
"""

from __future__ import annotations

import oncely
from bench.common import record

app = oncely.App()


def fire_key(name: str, scheduled: float) -> str:
    return f"{name}@{round(scheduled)}"


@app.task("noop")
async def noop(ctx: oncely.TaskContext) -> None:
    scheduled = ctx.scheduled_for.timestamp()
    record(fire_key(ctx.job_name, scheduled), scheduled)
