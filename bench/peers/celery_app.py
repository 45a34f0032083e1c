"""Celery app for the benchmark: Redis broker, no result backend, one no-op task.

Beat's schedule (W2, W6) is built from ``BENCH_BEAT_JOBS`` (a count): entries ``w2-<i>``
(``w6-<i>`` in W6: bench.peers.job_names) that run every second. ``NominalScheduler`` is
beat's own persistent scheduler that also hands each task the time the entry was due (its
last run plus its interval), so lag is measured against beat's notion of when the fire
should have happened.
"""

from __future__ import annotations

import copy
import os
from datetime import timedelta

from celery import Celery
from celery.beat import PersistentScheduler

from bench.common import REDIS_URL, record
from bench.peers import job_names, key

app = Celery("bench", broker=REDIS_URL)
app.conf.update(
    task_ignore_result=True,
    task_default_queue="bench",
    broker_connection_retry_on_startup=True,
    # ETA tasks sit in the worker until due: make sure Redis does not redeliver them meanwhile.
    broker_transport_options={"visibility_timeout": 3600},
    worker_prefetch_multiplier=int(os.environ.get("BENCH_CELERY_PREFETCH", "4")),
    timezone="UTC",
    enable_utc=True,
    beat_schedule={
        name: {"task": "noop", "schedule": timedelta(seconds=1), "args": ()}
        for name in job_names(int(os.environ.get("BENCH_BEAT_JOBS", "0")))
    },
)


@app.task(name="noop")
def noop(name: str, scheduled: float) -> None:
    record(key(name, scheduled), scheduled)


class NominalScheduler(PersistentScheduler):
    def apply_async(self, entry, producer=None, advance=True, **kwargs):  # type: ignore[no-untyped-def]
        due = entry.last_run_at + entry.schedule.run_every
        # A copy: mutating the entry beat keeps would make its schedule differ from the
        # snapshot tick() compares against, and beat would rebuild its heap on every tick.
        sent = copy.copy(entry)
        sent.args = (entry.name, due.timestamp())
        return super().apply_async(sent, producer=producer, advance=advance, **kwargs)
