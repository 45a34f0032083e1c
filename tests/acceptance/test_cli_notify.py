"""``oncely notify`` as a real subprocess against a SQLite store: channels shown masked with
the secret printed once, rules, bad input refused with its field, missing jobs listed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from oncely.adapters.sqlite import SqliteStore
from oncely.domain.policy import Policy
from tests.contract.conftest import make_job

ROOT = Path(__file__).resolve().parents[2]


def _oncely(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "oncely.cli.main",
            "--store",
            f"sqlite:///{db}",
            "--owner",
            "alice",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_notify_commands(tmp_path: Path) -> None:
    db = tmp_path / "oncely.db"
    made = _oncely(
        db,
        "notify",
        "channels",
        "add",
        "ops",
        "https://93.184.216.34/hooks/very-secret-token",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    channel = json.loads(made.stdout)
    assert channel["url"] == "https://93.184.216.34/***" and len(channel["secret"]) >= 32
    listed = _oncely(db, "notify", "channels", "list")
    assert "very-secret-token" not in listed.stdout and "ops" in listed.stdout

    refused = _oncely(db, "notify", "channels", "add", "lo", "http://127.0.0.1:8080/x")
    assert refused.returncode == 2 and "(url)" in refused.stderr

    store = SqliteStore(str(db))
    now = datetime.now(UTC)
    store.job_create(make_job(owner="alice", name="nightly", policy=Policy(deadline=600)), now=now)
    rule = _oncely(
        db, "notify", "rules", "add", "ops", "--on", "deadman,dead", "--job", "nightly", "--json"
    )
    assert rule.returncode == 0, rule.stderr
    assert json.loads(rule.stdout)["events"] == ["dead", "deadman"]
    assert _oncely(db, "notify", "rules", "add", "ops", "--on", "often").returncode == 2

    assert "no job is missing" in _oncely(db, "notify", "missing").stdout
    store.deadman_sweep(now=now - timedelta(hours=1))
    store.deadman_sweep(now=now)
    missing = json.loads(_oncely(db, "notify", "missing", "--json").stdout)
    assert [m["name"] for m in missing] == ["nightly"] and missing[0]["overdue_seconds"] > 2000
    [n] = json.loads(_oncely(db, "notify", "list", "--json").stdout)
    assert n["event"] == "deadman" and n["job_name"] == "nightly" and n["state"] == "pending"
    shown = _oncely(db, "notify", "show", n["id"])
    assert shown.returncode == 0 and "deadman of nightly" in shown.stdout
    store.close()
