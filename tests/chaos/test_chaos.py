"""The chaos suite as tests: a short run in every CI build, the long one on demand.

The short run (about 75 s in all: 45 s of faults, each kind drawn about once or twice) uses
2 schedulers and 2 workers; the long one is ``python -m tests.chaos --duration 600`` or
``pytest --run-slow tests/chaos``. Either way a failure prints the checker's report with the
seed that drew its faults (``ONCELY_CHAOS_SEED=N`` replays the draw). The run needs no shared
server: it starts a PostgreSQL of its own (the binaries must be installed, as for
tests/acceptance/test_outage_recovery.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.harness import Options, run


def _seed() -> int | None:
    value = os.environ.get("ONCELY_CHAOS_SEED")
    return int(value) if value else None


def _run(duration: float, nodes: int, tmp_path: Path) -> None:
    report = run(
        Options(
            duration=duration,
            schedulers=nodes,
            workers=nodes,
            seed=_seed(),
            log_dir=tmp_path / "logs",
            drain_timeout=60,
        )
    )
    print(report.text())
    assert report.ok, report.text()
    figures = report.figures
    assert figures["duplicates"] == 0
    assert figures["lost"] == 0
    assert figures["overlapping attempts"] == 0
    assert int(str(figures["fires expected"])) > 0


@pytest.mark.timeout(240)
def test_short_chaos_run_keeps_every_guarantee(tmp_path: Path) -> None:
    _run(45, 2, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_ten_minute_chaos_run_keeps_every_guarantee(tmp_path: Path) -> None:
    _run(600, 3, tmp_path)
