"""``rq cron`` configuration for W2: ``BENCH_RQ_CRON_JOBS`` jobs, each every second.

Each job is handed the time its fire was due (RQ's own ``next_enqueue_time`` when it
enqueues it), so lag is measured against RQ's notion of when the fire should have happened,
as for Celery beat.
"""

from __future__ import annotations

import os
from typing import Any

from rq import cron
from rq.cron import CronJob

from bench.peers.rq_app import noop

_enqueue = CronJob.enqueue


def _enqueue_with_due(self: CronJob, connection: Any) -> Any:
    if self.next_enqueue_time is not None:
        self.kwargs = {"scheduled": self.next_enqueue_time.timestamp()}
    return _enqueue(self, connection)


CronJob.enqueue = _enqueue_with_due  # type: ignore[method-assign]

for i in range(int(os.environ.get("BENCH_RQ_CRON_JOBS", "0"))):
    cron.register(noop, queue_name="bench", args=(f"w2-{i}",), cron="* * * * * *", name=f"w2-{i}")
