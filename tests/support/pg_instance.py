"""The ``own_pg`` fixture: a PostgreSQL server of the test's own (bench/pg_instance.py).

The shared server on 5432 must never be restarted by a test; outage tests run this one, on a
free port, in a temporary directory. The server itself lives in ``bench.pg_instance`` so the
benchmark's outage workload (W7) runs the same one.

Usage::

    url = own_pg.url                  # postgresql://postgres@127.0.0.1:PORT/postgres
    own_pg.stop("fast")               # or "immediate" (a crash: no shutdown checkpoint)
    own_pg.start()                    # returns once it accepts connections
    own_pg.restart(pause=0.2)         # stop, wait, start
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.pg_instance import BIN, PgInstance, PgUnavailable, free_port

__all__ = ["BIN", "PgInstance", "free_port", "own_pg"]


@pytest.fixture
def own_pg() -> Iterator[PgInstance]:
    try:
        instance = PgInstance.create()
    except PgUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield instance
    finally:
        instance.destroy()
