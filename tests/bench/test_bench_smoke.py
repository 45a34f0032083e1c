"""The benchmark suite's smallest smoke run: oncely on SQLite and PostgreSQL, quick sizes.

Behaviour only, never speed: the suite runs end to end, writes its report, and oncely neither
duplicated nor lost a run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.peers import PEERS

ROOT = Path(__file__).resolve().parents[2]


def run_quick(out: Path, peers: str, only: str, timeout: float) -> dict[str, Any]:
    """``python -m bench --quick`` into ``out``; its results.json once it exited cleanly."""
    argv = ["-m", "bench", "--quick", "--peers", peers, "--only", only, "--no-plots"]
    proc = subprocess.run(
        [sys.executable, *argv, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data: dict[str, Any] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.timeout(180)
def test_quick_oncely_run_writes_a_report_without_dups_or_losses(tmp_path: Path) -> None:
    out = tmp_path / "results"
    data = run_quick(out, "oncely", "W1,W2,W5", timeout=170)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "# oncely benchmarks" in report
    assert "**Machine:**" in report
    oncely = [r for r in data["results"] if r["system"] == "oncely"]
    stores = {r["store"] for r in oncely}
    assert {"SQLite burst", "SQLite steady"} <= stores, stores
    if "PostgreSQL" not in data["meta"]["skipped"]:
        assert {r["workload"] for r in oncely} >= {"W1", "W2", "W5"}
    for r in oncely:
        assert r["error"] is None, r
        assert r["ran"] == r["expected"] > 0, r
        assert r["duplicates"] == 0, r
        assert r["lost"] == 0, r
    assert not (out / "tmp").exists()

    from bench.headline import headline

    table = headline(data["results"])
    assert "| W1 burst" in table and "| W5 embedded" in table, table


@pytest.mark.timeout(180)
def test_quick_peak_run_reports_lag_over_time_cpu_and_rows_per_fire(tmp_path: Path) -> None:
    """W6 at smoke size: every fire once, and the cost figures it exists for are there."""
    out = tmp_path / "results"
    data = run_quick(out, "oncely", "W6", timeout=170)
    if "PostgreSQL" in data["meta"]["skipped"]:
        pytest.skip("no PostgreSQL")
    [r] = [r for r in data["results"] if r["workload"] == "W6"]
    assert r["error"] is None, r
    assert r["ran"] == r["expected"] > 0 and r["duplicates"] == 0 and r["lost"] == 0, r
    extra = r["extra"]
    assert sum(p["ran"] for p in extra["timeline"]) == r["ran"], extra["timeline"]
    assert extra["cpu_oncely_cores"] > 0 and extra["cpu_postgres_cores"] > 0, extra
    assert set(extra["cpu_by_process"]) == {"scheduler", "worker0", "worker1"}, extra
    assert extra["rows_by_table"]["runs"]["ins"] > 0, extra
    assert extra["rows_per_fire"] > 0 and extra["wal_bytes_per_fire"] > 0, extra
    assert "## W6" in (out / "report.md").read_text(encoding="utf-8")


def test_readme_headline_is_the_committed_results() -> None:
    from bench.headline import README, committed_headline, with_headline

    readme = README.read_text(encoding="utf-8")
    assert with_headline(readme, committed_headline()) == readme, (
        "README's headline table is stale: run `python -m bench.headline --write`"
    )


@pytest.mark.timeout(420)
def test_quick_peer_run_drives_every_peer_end_to_end(tmp_path: Path) -> None:
    """The peers' harness still works: each installed peer runs W1 (and W2 if it schedules)."""
    out = tmp_path / "results"
    data = run_quick(out, ",".join(PEERS), "W1,W2", timeout=400)
    skipped = data["meta"]["skipped"]
    # The peers are installed by scripts/install; PostgreSQL and Redis run on these machines.
    assert not set(skipped) & set(PEERS), skipped
    ran = {(r["workload"], r["system"]): r for r in data["results"]}
    for system in PEERS:
        for workload in ("W1", "W2"):
            if f"{workload} {system}" in skipped:
                continue
            r = ran[(workload, system)]
            assert r["error"] is None, r
            # W1 has every peer's whole quick burst run; W2 only that each fired (peers miss).
            if workload == "W1":
                assert r["ran"] == r["expected"] > 0, r
            else:
                assert r["ran"] > 0, r


@pytest.mark.timeout(150)
def test_quick_outage_workload_reports_recovery_and_no_duplicates(tmp_path: Path) -> None:
    """W7's harness: one short outage of its own PostgreSQL (never the shared one) is measured
    and reported, and oncely ran no fire twice."""
    out = tmp_path / "results"
    data = run_quick(out, "oncely", "W7", timeout=140)
    if "W7" in data["meta"]["skipped"]:
        pytest.skip(data["meta"]["skipped"]["W7"])
    [r] = [r for r in data["results"] if r["workload"] == "W7"]
    assert r["error"] is None, r
    e = r["extra"]
    assert e["trials"] == 1, e
    for field in ("shards_s", "first_started_s", "on_time_s"):
        assert len(e[field]) == 1 and e[field][0] >= 0, (field, e)
    assert e["outage_fires_ran_late"] > 0, e
    assert r["duplicates"] == 0, r
    assert e["lost_attempts"] == 0, e
    assert e["started_early"] == 0, e
    assert "## W7 — recovery after a database outage" in (out / "report.md").read_text("utf-8")
