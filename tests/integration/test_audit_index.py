"""The audit log is read through an index in paging order, whatever the filter: a generic
(parameter-blind) PostgreSQL plan of each audit query is an index scan with no sort, and the
SQLite queries name their index (SQLite refuses to run them if it cannot use it)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from oncely.adapters.postgres import PostgresStore
from oncely.adapters.postgres.store import _ID_MAX, _TIME_MAX, _TIME_MIN
from oncely.adapters.postgres.store import Q as PG_QUERIES
from oncely.adapters.sqlite import SqliteStore
from oncely.adapters.sqlite.store import Q as SQLITE_QUERIES

QUERIES = ["audit_list_all", "audit_list_owner", "audit_list_target"]


@pytest.mark.parametrize("query", QUERIES)
def test_postgres_generic_plan_is_an_ordered_index_scan(
    pg_url: str, pg_schema: str, query: str
) -> None:
    store = PostgresStore(pg_url, schema=pg_schema)
    store.migrate()
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'SET search_path = "{pg_schema}"')
        conn.execute(
            "INSERT INTO audit_log (at, actor, owner, action, target_kind, target_id) "
            "SELECT now() - g * interval '1 s', 'a', 'o' || (g % 50), 'job.create', 'job', "
            "'j' || (g % 2000) FROM generate_series(1, 20000) g"
        )
        conn.execute("ANALYZE audit_log")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        params = {
            "owner": "o5",
            "target_kind": "job",
            "target_id": "j7",
            "since": _TIME_MIN,
            "until": _TIME_MAX,
            "before_at": _TIME_MAX,
            "before_id": _ID_MAX,
            "limit": 100,
        }
        with conn.cursor() as cur:
            cur.execute("EXPLAIN " + PG_QUERIES[query], params, prepare=True)
            plan = "\n".join(r[0] for r in cur.fetchall())
    assert "Index Scan Backward using audit_" in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.parametrize("query", QUERIES)
def test_sqlite_plan_uses_the_named_index_without_sorting(tmp_path: Path, query: str) -> None:
    store = SqliteStore(str(tmp_path / "o.db"))
    store.migrate()
    conn = store._conn()
    params = {
        "owner": "o5",
        "target_kind": "job",
        "target_id": "j7",
        "since": 0,
        "until": 2**62,
        "before_at": 2**62,
        "before_id": 2**62,
        "limit": 100,
    }
    plan = " | ".join(
        str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + SQLITE_QUERIES[query], params)
    )
    store.close()
    assert "USING INDEX audit_" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
