"""An App module for the CLI tests: `oncely up --app tests.acceptance.apps.cli_app:app`."""

from __future__ import annotations

import time

import oncely

app = oncely.App()


@app.task("greet")
def greet(ctx: oncely.TaskContext) -> str:
    return f"hello {(ctx.payload or {}).get('name', 'world')}"


@app.task("nap")
def nap(ctx: oncely.TaskContext) -> str:
    time.sleep((ctx.payload or {}).get("seconds", 1))
    return "rested"
