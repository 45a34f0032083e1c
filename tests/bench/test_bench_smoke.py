"""The benchmark suite's smallest smoke run: oncely on SQLite and PostgreSQL, quick sizes.

Behaviour only, never speed: the suite runs end to end, writes its report, and oncely neither
duplicated nor lost a run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_quick_oncely_run_writes_a_report_without_dups_or_losses(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--peers",
            "oncely",
            "--only",
            "W1,W2,W5",
            "--no-plots",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "# oncely benchmarks" in report
    assert "**Machine:**" in report
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
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


def test_readme_headline_is_the_committed_results() -> None:
    from bench.headline import README, committed_headline, with_headline

    readme = README.read_text(encoding="utf-8")
    assert with_headline(readme, committed_headline()) == readme, (
        "README's headline table is stale: run `python -m bench.headline --write`"
    )
