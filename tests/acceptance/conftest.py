from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from oncely.adapters.postgres import PostgresStore
from tests.acceptance.procs import Cluster


@pytest.fixture
def pg_store_url(pg_url: str, pg_schema: str) -> str:
    """A migrated schema with the effects table the acceptance tasks write to."""
    store = PostgresStore(pg_url, schema=pg_schema)
    store.migrate()
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{pg_schema}".effects (run_id uuid, job_id uuid, '
            "scheduled_for timestamptz, token bigint)"
        )
    sep = "&" if "?" in pg_url else "?"
    return f"{pg_url}{sep}schema={pg_schema}"


@pytest.fixture
def cluster(pg_store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    c = Cluster(pg_store_url, tmp_path)
    try:
        yield c
    finally:
        c.stop_all()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(c.logs())


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
