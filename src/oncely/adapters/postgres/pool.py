"""A small connection pool built for recovering from database outages at once.

Why not ``psycopg_pool``: its reconnection runs in background workers with an exponential
backoff that has no cap (1 s, 2 s, 4 s ... 16 s; measured: scheduling stalled 4.5 to 26 s
after a 35 s outage ended), a client waits up to the pool's ``timeout`` for it, and each
dead connection found by a checkout check costs the caller a backoff sleep too. oncely's
loops already retry on their own short, capped schedule; what they need from a pool is:

- **Connect on demand, in the caller's thread**, with a short ``connect_timeout``: while the
  server is down a checkout fails within milliseconds (connection refused) or
  ``connect_timeout`` (an unreachable host); the first checkout after the server is back gets
  a fresh connection. No background reconnection, hence no backoff to sit out.
- **A dead idle connection is never handed out**: at checkout an idle connection's socket is
  polled (no round trip). An idle autocommit connection has nothing to say, so a readable
  socket means the server hung up (shutdown, restart, a proxy cut); such a connection is
  checked with an empty query, and dropped if that fails. A restart of the server therefore
  costs no failed statement on a connection that was idle.
- **A bounded wait for a free connection** (``checkout_timeout``), and a connection that comes
  back broken or inside a transaction is closed rather than reused.

Connections are autocommit; the store opens transactions explicitly. Most recently returned
connections are reused first (LIFO), so the pool's idle tail can age without being polled.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

Conn = psycopg.Connection[TupleRow]

log = logging.getLogger(__name__)


class PoolTimeout(psycopg.OperationalError):
    """No connection became free within the checkout timeout."""


class PoolClosed(psycopg.OperationalError):
    """The pool was closed."""


class Pool:
    def __init__(
        self,
        conninfo: str,
        *,
        max_size: int,
        name: str,
        connect_timeout: float = 2.0,
        checkout_timeout: float = 5.0,
    ) -> None:
        self.conninfo = conninfo
        self.max_size = max_size
        self.name = name
        self.connect_timeout = connect_timeout
        self.checkout_timeout = checkout_timeout
        self._idle: list[Conn] = []
        self._size = 0  # idle + checked out + being connected
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        """Connections found dead at checkout or returned broken (for tests and status)."""

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Conn]:
        conn = self.getconn(timeout)
        try:
            yield conn
        finally:
            self.putconn(conn)

    def getconn(self, timeout: float | None = None) -> Conn:
        deadline = time.monotonic() + (self.checkout_timeout if timeout is None else timeout)
        while True:
            with self._cond:
                conn = self._reserve(deadline)
            if conn is None:
                return self._connect()
            if _alive(conn):
                return conn
            self._discard(conn)

    def _reserve(self, deadline: float) -> Conn | None:
        """Under the lock: an idle connection, or None after reserving room for a new one."""
        while True:
            if self._closed:
                raise PoolClosed(f"pool {self.name} is closed")
            if self._idle:
                return self._idle.pop()
            if self._size < self.max_size:
                self._size += 1
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolTimeout(f"pool {self.name}: no free connection (max {self.max_size})")
            self._cond.wait(remaining)

    def _connect(self) -> Conn:
        try:
            conn = psycopg.connect(
                self.conninfo,
                autocommit=True,
                # libpq counts whole seconds and at least 2.
                connect_timeout=max(2, round(self.connect_timeout)),
            )
        except BaseException:
            with self._cond:
                self._size -= 1
                self._cond.notify()
            raise
        return conn

    def putconn(self, conn: Conn) -> None:
        reusable = (
            not conn.closed
            and not conn.broken
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        if not reusable:
            self._discard(conn)
            return
        with self._cond:
            if self._closed:
                self._size -= 1
                close = True
            else:
                self._idle.append(conn)
                close = False
            self._cond.notify()
        if close:
            _close(conn)

    def _discard(self, conn: Conn) -> None:
        _close(conn)
        with self._cond:
            self._size -= 1
            self.dropped += 1
            self._cond.notify()

    def drop_idle(self) -> None:
        """Close every idle connection (after a failure that says the server went away)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._size -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            _close(conn)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._size -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            _close(conn)

    @property
    def size(self) -> int:
        return self._size


def _alive(conn: Conn) -> bool:
    if conn.closed or conn.broken:
        return False
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if not poller.poll(0):
        return True
    # Something arrived on an idle connection: most likely the server's goodbye (an admin
    # shutdown's FATAL) or end of file. Ask to be sure.
    try:
        conn.execute("")
    except psycopg.Error:
        return False
    return True


def _close(conn: Conn) -> None:
    with contextlib.suppress(Exception):
        conn.close()


__all__ = ["Pool", "PoolClosed", "PoolTimeout"]
