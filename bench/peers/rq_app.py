"""RQ task for the benchmark (RQ imports it by its dotted path in the worker)."""

from __future__ import annotations

from bench.common import record
from bench.peers import key


def noop(name: str, scheduled: float) -> None:
    record(key(name, scheduled), scheduled)
