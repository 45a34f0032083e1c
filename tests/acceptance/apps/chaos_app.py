"""Tasks used by the multi-process acceptance tests (imported by workers via --app)."""

from __future__ import annotations

import time
from pathlib import Path

import oncely

app = oncely.App()


@app.task("record", transactional=True)
def record(ctx: oncely.TaskContext) -> str:
    """Write one effect row in the store's own database, in the completing transaction."""
    ctx.connection.execute(
        "INSERT INTO effects (run_id, job_id, scheduled_for, token) VALUES (%s, %s, %s, %s)",
        (ctx.run_id, ctx.job_id, ctx.scheduled_for, ctx.fencing_token),
    )
    delay = (ctx.payload or {}).get("sleep", 0)
    if delay:
        time.sleep(delay)
    return "recorded"


@app.task("sleepy")
def sleepy(ctx: oncely.TaskContext) -> str:
    """Leave a marker when an attempt starts and when it ends, sleeping in between."""
    folder = Path(ctx.payload["dir"])
    (folder / f"{ctx.run_id}.{ctx.attempt}.started").write_text(str(ctx.fencing_token))
    time.sleep(ctx.payload["seconds"])
    (folder / f"{ctx.run_id}.{ctx.attempt}.finished").write_text(str(ctx.fencing_token))
    return "slept"


@app.task("slow_record", transactional=True)
def slow_record(ctx: oncely.TaskContext) -> str:
    """Sleep first, then write: a worker frozen mid-sleep writes late, under a stale token."""
    folder = Path(ctx.payload["dir"])
    (folder / f"{ctx.run_id}.{ctx.attempt}.started").write_text(str(ctx.fencing_token))
    time.sleep(ctx.payload["seconds"])
    ctx.connection.execute(
        "INSERT INTO effects (run_id, job_id, scheduled_for, token) VALUES (%s, %s, %s, %s)",
        (ctx.run_id, ctx.job_id, ctx.scheduled_for, ctx.fencing_token),
    )
    (folder / f"{ctx.run_id}.{ctx.attempt}.finished").write_text(str(ctx.fencing_token))
    return "recorded late"
