"""Listings walk an index: the query plans of job and run searches (each variant) never scan
the jobs or runs table. Checked with EXPLAIN on both stores (PostgreSQL with sequential scans
priced out, so a plan that needs one still shows it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from oncely.adapters.postgres.store import Q as PG
from oncely.adapters.sqlite.store import Q as LITE
from oncely.ports.store import Store

T = datetime(2030, 1, 1, tzinfo=UTC)
ID = "01a23fe8-c8a8-7197-9cda-403d5aac7be8"

JOB_PARAMS: dict[str, Any] = {
    "owner": "alice",
    "limit": 50,
    "after_name": "m",
    "after_id": ID,
    "name_contains": "report",
    "paused": None,
    "queue": "default",
    "action_kind": "http",
    "last_outcome": "dead",
}
RUN_PARAMS: dict[str, Any] = {
    "owner": "alice",
    "job_id": ID,
    "states": None,
    "since": None,
    "until": None,
    "worker": "worker:host",
    "before_at": None,
    "before_id": None,
    "limit": 50,
}
QUERIES = [
    "job_search_owner",
    "job_search_all",
    "run_search_job",
    "run_search_owner",
    "run_search_all",
]


def _params(name: str, dialect: str) -> dict[str, Any]:
    params = dict(JOB_PARAMS if name.startswith("job") else RUN_PARAMS)
    if dialect == "sqlite":
        params["paused"] = None
        if "before_at" in params:
            params["states"] = json.dumps(["dead"])
    else:
        params["states"] = ["dead"] if "states" in params else None
        if "before_at" in params:
            params["before_at"], params["before_id"] = T, ID
    return params


@pytest.mark.parametrize("name", QUERIES)
def test_searches_never_scan_a_table(store: Store, name: str) -> None:
    if store.dialect == "sqlite":
        conn = store._conn()  # type: ignore[attr-defined]
        plan = [
            str(row[3])
            for row in conn.execute("EXPLAIN QUERY PLAN " + LITE[name], _params(name, "sqlite"))
        ]
        scans = [line for line in plan if line.startswith("SCAN") and "INDEX" not in line]
        assert scans == [], plan
        assert not [line for line in plan if "TEMP B-TREE" in line], plan  # no sort: in order
    else:
        with store._pool.connection() as conn, conn.transaction():  # type: ignore[attr-defined]
            conn.execute("SET LOCAL enable_seqscan = off")
            rows = conn.execute("EXPLAIN " + PG[name], _params(name, "postgresql")).fetchall()
        plan = [str(r[0]) for r in rows]
        assert not [line for line in plan if "Seq Scan" in line], "\n".join(plan)
