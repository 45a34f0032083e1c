"""``rq cron`` configuration for W2 and W6: ``BENCH_RQ_CRON_JOBS`` jobs, each every second
(``w2-<i>``, ``w6-<i>`` in W6: bench.peers.job_names).

Each job is handed the time its fire was due (RQ's own ``next_enqueue_time`` when it
enqueues it), so lag is measured against RQ's notion of when the fire should have happened,
as for Celery beat.
"""

from __future__ import annotations

import os
from typing import Any

from rq import cron
from rq.cron import CronJob

from bench.peers import job_names
from bench.peers.rq_app import noop

_enqueue = CronJob.enqueue


def _enqueue_with_due(self: CronJob, connection: Any) -> Any:
    if self.next_enqueue_time is not None:
        self.kwargs = {"scheduled": self.next_enqueue_time.timestamp()}
    return _enqueue(self, connection)


CronJob.enqueue = _enqueue_with_due  # type: ignore[method-assign]

for name in job_names(int(os.environ.get("BENCH_RQ_CRON_JOBS", "0"))):
    cron.register(noop, queue_name="bench", args=(name,), cron="* * * * * *", name=name)
