"""procrastinate app for the benchmark: its own database, queue ``bench``, two tasks.

``noop`` is W1's one-shot task; ``tick`` is W2's periodic task, registered
``BENCH_PERIODIC_JOBS`` times (``periodic_id`` ``w2-<i>``) with a one-second cron, and
handed its scheduled ``timestamp`` by procrastinate.
"""

from __future__ import annotations

import os

import procrastinate

from bench.common import PG_DSN, record
from bench.peers import key

DATABASE = "bench_procrastinate"
DSN = PG_DSN.rsplit("/", 1)[0] + "/" + DATABASE

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=DSN))


@app.task(name="noop", queue="bench")
async def noop(name: str, scheduled: float) -> None:
    record(key(name, scheduled), scheduled)


@app.task(name="tick", queue="bench")
async def tick(timestamp: int, name: str) -> None:
    record(key(name, float(timestamp)), float(timestamp))


for _i in range(int(os.environ.get("BENCH_PERIODIC_JOBS", "0"))):
    app.periodic(cron="* * * * * *", periodic_id=f"w2-{_i}", task_kwargs={"name": f"w2-{_i}"})(tick)
