"""Tasks for the fault tests (imported by workers via --app).

Every task appends one line per attempt to ``<payload.dir>/ledger`` (``O_APPEND``: one write
per line, nothing torn, nothing lost if the process dies): ``start`` when it begins, ``end``
when its effect is done, with the wall-clock time (the test's machine clock, the same one
the PostgreSQL server reads). The test reads the ledger: lag is start - scheduled_for, and
two attempts of a run alive at once show as overlapping start/end pairs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any

import oncely

app = oncely.App()


def note(ctx: oncely.TaskContext, event: str) -> None:
    line = json.dumps(
        {
            "event": event,
            "run": ctx.run_id,
            "attempt": ctx.attempt,
            "token": ctx.fencing_token,
            "scheduled_for": ctx.scheduled_for.timestamp(),
            "at": time.time(),
            "pid": os.getpid(),
        }
    )
    fd = os.open(os.path.join(ctx.payload["dir"], "ledger"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@app.task("stamp", transactional=True)
def stamp(ctx: oncely.TaskContext) -> str:
    """A quick transactional task: the per-second job whose lag the tests watch."""
    note(ctx, "start")
    note(ctx, "end")
    return "stamped"


@app.task("slow_sleep", transactional=True)
def slow_sleep(ctx: oncely.TaskContext) -> str:
    """Python code that takes long inside the completing transaction."""
    note(ctx, "start")
    time.sleep(ctx.payload["seconds"])
    note(ctx, "end")
    return "slept"


@app.task("slow_sql", transactional=True)
def slow_sql(ctx: oncely.TaskContext) -> str:
    """A statement that runs long inside the completing transaction."""
    note(ctx, "start")
    conn: Any = ctx.connection
    seconds = float(ctx.payload["seconds"])
    if isinstance(conn, sqlite3.Connection):
        # SQLite has no sleep: count long enough (about 10 M rows a second here).
        conn.execute(
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?) "
            "SELECT count(*) FROM c",
            (int(seconds * 20_000_000),),
        ).fetchone()
    else:
        conn.execute("SELECT pg_sleep(%s)", (seconds,))
    note(ctx, "end")
    return "queried"


@app.task("steady")
def steady(ctx: oncely.TaskContext) -> str:
    """A plain (not transactional) task that takes a while: its outcome waits in the outbox."""
    note(ctx, "start")
    time.sleep(float((ctx.payload or {}).get("seconds", 0)))
    note(ctx, "end")
    return "done"


@app.task("steady_async")
async def steady_async(ctx: oncely.TaskContext) -> str:
    """Like ``steady`` but cancellable: a worker that stops trusting its lease cancels it,
    and the ledger shows it ended (``cancelled``) before the lease could move."""
    import asyncio

    note(ctx, "start")
    try:
        await asyncio.sleep(float((ctx.payload or {}).get("seconds", 0)))
    except asyncio.CancelledError:
        note(ctx, "cancelled")
        raise
    note(ctx, "end")
    return "done"


@app.task("stamp_db", transactional=True)
def stamp_db(ctx: oncely.TaskContext) -> str:
    """Record the start by the database server's clock (for processes whose own clock is
    wrong on purpose): a row in ``stamps``, which the test created in the store's schema."""
    ctx.connection.execute(
        "INSERT INTO stamps (run_id, scheduled_for, at) VALUES (%s, %s, clock_timestamp())",
        (ctx.run_id, ctx.scheduled_for),
    )
    return "stamped"
