"""Dramatiq app for the benchmark: Redis broker, one no-op actor (no retries, no results)."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.common import REDIS_URL, record
from bench.peers import key

broker = RedisBroker(url=REDIS_URL)
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="noop", queue_name="bench", max_retries=0)
def noop(name: str, scheduled: float) -> None:
    record(key(name, scheduled), scheduled)
