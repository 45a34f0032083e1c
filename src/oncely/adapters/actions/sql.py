"""The SQL action: one statement, one transaction, on a connection the server admin named.

Users never give a connection URL, only a name from ``ActionSettings.sql_connections``, so a job
cannot point the server at a database of its choosing, and no URL (with its password) is ever
stored with a job or written into an error.

Values are always bound, never formatted into the statement: ``%(name)s`` placeholders on
PostgreSQL (psycopg; a literal ``%`` is then written ``%%``), ``:name`` on SQLite. The statement
commits if it succeeds and rolls back if it fails or the attempt is cancelled. A connection is
opened per attempt: SQL jobs are rare next to the cost of a connect, and nothing is left to go
stale between fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from oncely.domain.actions import SqlAction
from oncely.domain.limits import cap_text
from oncely.ports.actions import ActionContext, ActionResult, ActionSettings

MAX_ROWS = 20
"""Result rows kept in the output; the statement's own effect is never limited."""

_CONNECT_TIMEOUT = 10


def _render(
    rowcount: int, columns: Sequence[str] | None, rows: Sequence[Sequence[Any]], more: bool
) -> str:
    # -1 is the drivers' "not known" (a SELECT on SQLite): say so rather than print a number.
    result: dict[str, Any] = {"rowcount": rowcount if rowcount >= 0 else None}
    if columns is not None:
        result["columns"] = list(columns)
        result["rows"] = [list(row) for row in rows]
        if more:
            result["truncated"] = f"only the first {MAX_ROWS} rows are shown"
    # default=str: dates, decimals, UUIDs and bytes read well enough as their str().
    return json.dumps(result, default=str, ensure_ascii=False)


def _sqlite_path(url: str) -> str:
    # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy spells them.
    return url[len("sqlite:///") :]


class _SqliteCall:
    """One statement in a worker thread, interruptible from the event loop."""

    def __init__(self, path: str, statement: str, params: Mapping[str, Any] | None) -> None:
        self._path = path
        self._statement = statement
        self._params = params
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._cancelled = False

    def run(self) -> str:
        conn = sqlite3.connect(self._path, timeout=_CONNECT_TIMEOUT, isolation_level=None)
        try:
            with self._lock:
                if self._cancelled:
                    raise sqlite3.OperationalError("interrupted")
                self._conn = conn
            conn.execute("BEGIN")
            try:
                params = dict(self._params) if self._params is not None else ()
                cursor = conn.execute(self._statement, params)
                columns = (
                    [d[0] for d in cursor.description] if cursor.description is not None else None
                )
                rows = cursor.fetchmany(MAX_ROWS + 1) if columns is not None else []
                # A SELECT has rowcount -1; its row count is what was fetched, at most.
                rowcount = cursor.rowcount
                # Changes (RETURNING included) are all made by the first step: closing is safe.
                cursor.close()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return _render(rowcount, columns, rows[:MAX_ROWS], len(rows) > MAX_ROWS)
        finally:
            with self._lock:
                self._conn = None
            conn.close()

    def interrupt(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._conn is not None:
                self._conn.interrupt()


class SqlExecutor:
    """Executes ``SqlAction``s on the connections configured in ``settings.sql_connections``."""

    kind = "sql"

    def __init__(self, settings: ActionSettings) -> None:
        self._settings = settings

    async def execute(self, action: SqlAction, ctx: ActionContext) -> ActionResult:
        url = self._settings.sql_connections.get(action.connection)
        if url is None:
            return ActionResult(
                ok=False,
                error=(
                    f"unknown SQL connection {action.connection!r}; "
                    "connections are configured by the server admin"
                ),
            )
        try:
            if url.startswith(("postgresql://", "postgres://")):
                output = await self._postgres(url, action)
            elif url.startswith("sqlite:///"):
                output = await self._sqlite(_sqlite_path(url), action)
            else:
                return ActionResult(
                    ok=False,
                    error=(
                        f"SQL connection {action.connection!r} has an unsupported URL scheme "
                        "(expected postgresql:// or sqlite:///)"
                    ),
                )
        except asyncio.CancelledError:
            raise
        except psycopg.Error as exc:
            code = f" [{exc.sqlstate}]" if exc.sqlstate else ""
            return ActionResult(ok=False, error=f"{type(exc).__name__}{code}: {exc}".strip())
        except Exception as exc:
            return ActionResult(ok=False, error=f"{type(exc).__name__}: {exc}")
        return ActionResult(ok=True, output=cap_text(output, self._settings.max_output_bytes))

    async def _postgres(self, url: str, action: SqlAction) -> str:
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=False, connect_timeout=_CONNECT_TIMEOUT
        )
        try:
            async with conn.cursor() as cursor:
                # No params, no placeholders: a bare % in the statement then means itself.
                params = dict(action.params) if action.params is not None else None
                await cursor.execute(action.statement, params)
                columns = (
                    [c.name for c in cursor.description] if cursor.description is not None else None
                )
                rows: list[Any] = await cursor.fetchmany(MAX_ROWS + 1) if columns else []
                rowcount = cursor.rowcount
            await conn.commit()
        except asyncio.CancelledError:
            # psycopg has already asked the server to cancel the query; closing rolls back.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._abandon(conn))
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.rollback()
            raise
        finally:
            if not conn.closed:
                await conn.close()
        return _render(rowcount, columns, rows[:MAX_ROWS], len(rows) > MAX_ROWS)

    @staticmethod
    async def _abandon(conn: psycopg.AsyncConnection[Any]) -> None:
        with contextlib.suppress(Exception):
            await conn.cancel_safe(timeout=5.0)
        await conn.close()

    @staticmethod
    async def _sqlite(path: str, action: SqlAction) -> str:
        call = _SqliteCall(path, action.statement, action.params)
        future = asyncio.ensure_future(asyncio.to_thread(call.run))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # A thread cannot be cancelled: interrupt the statement, then wait for its rollback.
            call.interrupt()
            while not future.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.shield(future)
            with contextlib.suppress(Exception):
                future.result()
            raise

    async def aclose(self) -> None:
        """Nothing pooled: every attempt closes its connection."""
