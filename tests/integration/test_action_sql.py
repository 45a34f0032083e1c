"""SQL actions against a real PostgreSQL server and a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from oncely.adapters.actions import SqlExecutor
from oncely.domain.actions import SqlAction
from oncely.ports.actions import ActionContext, ActionResult, ActionSettings

CTX = ActionContext(
    run_id="run_01HXYZ",
    job_id="job_42",
    job_name="nightly",
    owner="alice",
    attempt=1,
    fencing_token=9,
    scheduled_for=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
)


def run(settings: ActionSettings, action: SqlAction) -> ActionResult:
    return asyncio.run(SqlExecutor(settings).execute(action, CTX))


def output(result: ActionResult) -> dict[str, Any]:
    assert result.ok, result
    assert result.output is not None
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_unknown_connection_name() -> None:
    result = run(ActionSettings(), SqlAction(connection="reporting", statement="SELECT 1"))
    assert result == ActionResult(
        ok=False,
        error="unknown SQL connection 'reporting'; connections are configured by the server admin",
    )


def test_unsupported_url_never_shows_the_url() -> None:
    settings = ActionSettings(sql_connections={"db": "mysql://app:s3cret@db.internal/app"})
    result = run(settings, SqlAction(connection="db", statement="SELECT 1"))
    assert not result.ok
    assert result.error is not None and "unsupported URL scheme" in result.error
    assert "s3cret" not in result.error


# PostgreSQL


@pytest.fixture
def pg(pg_url: str, pg_schema: str) -> tuple[ActionSettings, str]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{pg_schema}".items (id int PRIMARY KEY, name text NOT NULL, '
            "price numeric, seen timestamptz)"
        )
    return ActionSettings(sql_connections={"main": pg_url}), f'"{pg_schema}".items'


def pg_count(pg_url: str, table: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.postgres
def test_postgres_insert_with_bound_params_commits(
    pg: tuple[ActionSettings, str], pg_url: str
) -> None:
    settings, table = pg
    action = SqlAction(
        connection="main",
        statement=f"INSERT INTO {table} (id, name, price, seen) "
        "VALUES (%(id)s, %(name)s, %(price)s, now()) RETURNING id, name, price",
        params={"id": 1, "name": "Robert'); DROP TABLE items;--", "price": "9.50"},
    )
    data = output(run(settings, action))
    assert data == {
        "rowcount": 1,
        "columns": ["id", "name", "price"],
        "rows": [[1, "Robert'); DROP TABLE items;--", "9.50"]],
    }
    assert pg_count(pg_url, table) == 1


@pytest.mark.postgres
def test_postgres_select_shows_at_most_20_rows(pg: tuple[ActionSettings, str]) -> None:
    settings, table = pg
    fill = SqlAction(
        connection="main",
        statement=f"INSERT INTO {table} (id, name) "
        "SELECT g, 'n' || g FROM generate_series(1, 25) g",
    )
    assert output(run(settings, fill)) == {"rowcount": 25}
    data = output(run(settings, SqlAction("main", f"SELECT id FROM {table} ORDER BY id")))
    assert data["rows"] == [[i] for i in range(1, 21)]
    assert data["rowcount"] == 25
    assert "truncated" in data


@pytest.mark.postgres
def test_postgres_literal_percent_without_params(pg: tuple[ActionSettings, str]) -> None:
    settings, _ = pg
    data = output(run(settings, SqlAction("main", "SELECT 'a%b' AS v, 7 % 3 AS m")))
    assert data["rows"] == [["a%b", 1]]


@pytest.mark.postgres
def test_postgres_error_rolls_back(pg: tuple[ActionSettings, str], pg_url: str) -> None:
    settings, table = pg
    # One statement that writes a row before failing: none of it may stay.
    action = SqlAction(
        "main",
        f"WITH ins AS (INSERT INTO {table} (id, name) VALUES (1, 'a') RETURNING id) "
        "SELECT 1 / (id - 1) FROM ins",
    )
    result = run(settings, action)
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("DivisionByZero [22012]: division by zero")
    assert pg_count(pg_url, table) == 0


@pytest.mark.postgres
def test_postgres_connection_failure_is_a_result() -> None:
    settings = ActionSettings(sql_connections={"down": "postgresql://postgres@127.0.0.1:1/x"})
    result = run(settings, SqlAction("down", "SELECT 1"))
    assert not result.ok
    assert result.error is not None and result.error.startswith("OperationalError")


@pytest.mark.postgres
def test_postgres_cancel_stops_the_query_and_rolls_back(
    pg: tuple[ActionSettings, str], pg_url: str
) -> None:
    settings, table = pg
    tag = f"oncely_cancel_{uuid.uuid4().hex}"
    action = SqlAction(
        "main",
        f"/* {tag} */ WITH ins AS (INSERT INTO {table} (id, name) VALUES (1, 'a') RETURNING id) "
        "SELECT pg_sleep(30) FROM ins",
    )

    def running() -> int:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                (f"%{tag}%",),
            ).fetchone()
            assert row is not None
            return int(row[0])

    async def main() -> None:
        task = asyncio.ensure_future(SqlExecutor(settings).execute(action, CTX))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if await asyncio.to_thread(running):
                break
        else:
            raise AssertionError("the query never started")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 10
    for _ in range(50):  # the server notices the cancel within moments
        if running() == 0:
            break
        time.sleep(0.05)
    assert running() == 0
    assert pg_count(pg_url, table) == 0


# SQLite


@pytest.fixture
def lite(tmp_path: Path) -> tuple[ActionSettings, Path]:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    return ActionSettings(sql_connections={"lite": f"sqlite:///{path}"}), path


def lite_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])


def test_sqlite_insert_commits(lite: tuple[ActionSettings, Path]) -> None:
    settings, path = lite
    action = SqlAction(
        "lite", "INSERT INTO items (id, name) VALUES (:id, :name)", {"id": 1, "name": "a"}
    )
    assert output(run(settings, action)) == {"rowcount": 1}
    assert lite_count(path) == 1


def test_sqlite_returning_and_select(lite: tuple[ActionSettings, Path]) -> None:
    settings, path = lite
    insert = SqlAction(
        "lite", "INSERT INTO items (name) VALUES (:n) RETURNING id, name", {"n": "x"}
    )
    assert output(run(settings, insert))["rows"] == [[1, "x"]]
    fill = SqlAction(
        "lite",
        "INSERT INTO items (name) SELECT 'n' || value FROM json_each(:names)",
        {"names": json.dumps(list(range(30)))},
    )
    assert output(run(settings, fill)) == {"rowcount": 30}
    data = output(run(settings, SqlAction("lite", "SELECT id FROM items ORDER BY id")))
    assert data["rows"] == [[i] for i in range(1, 21)]
    assert data["rowcount"] is None  # SQLite does not count a SELECT's rows
    assert "truncated" in data
    assert lite_count(path) == 31


def test_sqlite_error_rolls_back(lite: tuple[ActionSettings, Path]) -> None:
    settings, path = lite
    action = SqlAction("lite", "INSERT INTO items (id, name) VALUES (1, 'a'), (1, 'b')")
    result = run(settings, action)
    assert not result.ok
    assert result.error is not None and result.error.startswith("IntegrityError")
    assert lite_count(path) == 0


def test_sqlite_runs_one_statement_only(lite: tuple[ActionSettings, Path]) -> None:
    settings, path = lite
    action = SqlAction("lite", "INSERT INTO items (name) VALUES ('a'); DROP TABLE items")
    result = run(settings, action)
    assert not result.ok
    assert result.error is not None and "one statement" in result.error
    assert lite_count(path) == 0


def test_sqlite_cancel_interrupts_the_statement(lite: tuple[ActionSettings, Path]) -> None:
    settings, path = lite
    endless = SqlAction(
        "lite",
        "INSERT INTO items (name) WITH RECURSIVE c(x) AS "
        "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT 'n' || x FROM c",
    )

    async def main() -> None:
        task = asyncio.ensure_future(SqlExecutor(settings).execute(endless, CTX))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 3
    assert lite_count(path) == 0
