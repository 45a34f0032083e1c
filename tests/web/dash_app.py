"""Tasks for the dashboard's browser tests: `oncely up --app tests.web.dash_app:app`."""

from __future__ import annotations

import time

import oncely

app = oncely.App()


@app.task("greet")
def greet(ctx: oncely.TaskContext) -> str:
    time.sleep(0.3)
    return f"hello {(ctx.payload or {}).get('name', 'world')}"


@app.task("boom")
def boom(ctx: oncely.TaskContext) -> None:
    raise RuntimeError(f"boom: {(ctx.payload or {}).get('why', 'no reason')}")


@app.task("hostile")
def hostile(ctx: oncely.TaskContext) -> str:
    # Output a browser would run if the dashboard ever inserted it as HTML.
    return "<script>alert('out')</script><img src=x onerror=alert('img')>"
