"""The REST API workload (bench/api.py) end to end at tiny sizes, on both stores.

Behaviour only, never speed: a real ``oncely api`` process is started, jobs are created one
by one and through the crontab import with an API key, the seeded listings answer 200, the
report names every row, and the workload's database is gone afterwards.
"""

from __future__ import annotations

import glob
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from bench import api


def _schemas(prefix: str) -> list[str]:
    with psycopg.connect(api.PG, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.timeout(240)
def test_tiny_api_workload_on_both_stores(tmp_path: Path) -> None:
    prefix = f"oncely_apibench_t{uuid.uuid4().hex[:6]}"
    out = tmp_path / "api.md"
    argv = ["--prefix", prefix, "--jobs", "200", "--runs", "2000", "--create", "20",
            "--clients", "2", "--repeat", "3", "--deep", "2", "--out", str(out)]
    assert api.main(argv) == 0
    report = out.read_text(encoding="utf-8")
    assert "**Load average (1 min) during the run:**" in report
    for store in ("## SQLite", "## PostgreSQL"):
        section = report.split(store, 1)[1].split("\n## ", 1)[0]
        for row in ("create one by one, 1 client", "create one by one, 2 clients",
                    "bulk: crontab import, 20 lines", "jobs: first page", "jobs: cursor page 3",
                    "jobs: name_contains=000042", "runs: state=dead", "runs: one job"):
            assert f"| {row}" in section, (store, row, section)
        assert "seeded 200 jobs" in section and "2,000 runs" in section
    # Its own schema and temporary directory are removed; nobody else's are touched.
    assert _schemas(prefix) == []
    assert glob.glob(f"{tempfile.gettempdir()}/{prefix}_*") == []
