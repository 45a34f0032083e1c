"""The `oncely` command as a user runs it: real processes on a real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from oncely.adapters.sqlfile import load_migrations
from tests.acceptance.procs import ROOT, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cli:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            "ONCELY_STORE": f"sqlite:///{tmp / 'oncely.db'}",
            "PYTHONUNBUFFERED": "1",
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oncely.cli.main", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=60,
        )

    def json(self, *args: str) -> Any:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / "server.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "oncely.cli.main", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_bad_input_gets_a_clear_message_and_exit_code(cli: Cli) -> None:
    done = cli("jobs", "add", "bad", "--cron", "0 25 * * *", "--task", "greet")
    assert done.returncode == 2
    assert "field 2 (hour) value 25 is out of range 0-23" in done.stderr
    done = cli("jobs", "add", "bad", "--cron", "* * *", "--task", "greet")
    assert done.returncode == 2 and "expected 5 or 6 fields, got 3" in done.stderr
    done = cli("jobs", "add", "sh", "--every", "1m", "--shell", "rm -rf /")
    assert done.returncode == 2 and "shell actions are disabled" in done.stderr
    done = cli("jobs", "add", "j", "--every", "1m", "--task", "greet", "--payload", "{nope")
    assert done.returncode == 2 and "--payload is not valid JSON" in done.stderr
    assert cli("jobs", "show", "missing").returncode == 3
    assert cli("runs", "show", "not-a-run").returncode == 3
    assert cli.json("jobs", "list") == []


def test_job_lifecycle_through_the_cli(cli: Cli) -> None:
    newest = len(load_migrations("oncely.adapters.sqlite"))
    assert cli("db", "migrate").stdout.strip() == f"schema at version {newest}"
    job = cli.json(
        "jobs",
        "add",
        "greeter",
        "--cron",
        "0 9 * * MON-FRI",
        "--timezone",
        "Europe/Paris",
        "--task",
        "greet",
        "--payload",
        '{"name": "ann"}',
    )
    assert job["schedule"]["expr"] == "0 9 * * MON-FRI" and job["payload"] == {"name": "ann"}
    assert cli("jobs", "add", "greeter", "--every", "5m", "--task", "greet").returncode == 4
    replaced = cli.json("jobs", "add", "greeter", "--every", "5m", "--task", "greet", "--replace")
    assert replaced["id"] == job["id"] and replaced["version"] == 2
    assert cli.json("jobs", "pause", "greeter")["paused"] is True
    assert cli.json("jobs", "resume", "greeter")["paused"] is False
    assert [j["name"] for j in cli.json("jobs", "list")] == ["greeter"]
    run = cli.json("jobs", "trigger", "greeter")
    assert run["state"] == "queued" and run["manual"] is True
    listed = cli.json("runs", "list", "--job", "greeter")
    assert [r["id"] for r in listed] == [run["id"]]
    assert cli("runs", "requeue", run["id"]).returncode == 4  # only dead runs
    assert cli("runs", "cancel", run["id"]).returncode == 0
    shown = json.loads(cli("runs", "show", run["id"]).stdout)
    assert shown["state"] == "cancelled" and shown["attempts"] == []
    assert cli("jobs", "delete", "greeter").returncode == 0
    assert cli.json("jobs", "list") == []


def test_up_serves_health_runs_jobs_and_stops_on_sigterm(cli: Cli) -> None:
    port = free_port()
    server = cli.start("up", "--app", "tests.acceptance.apps.cli_app:app", "--port", str(port))
    try:
        wait_for(lambda: _get(port, "/healthz") == 200, 30, "/healthz")
        wait_for(lambda: _get(port, "/readyz") == 200, 30, "/readyz")
        # Ready means the store answers and the loops turn; a node may be ready before its
        # first claim commits (a node joining a cluster holds no shards at first), so the
        # lone node is given the time of its first claims to hold all 64.
        wait_for(lambda: _readyz(port)["scheduler"]["shards"] == 64, 30, "all 64 shards")
        ready = _readyz(port)
        assert ready["store"] == "sqlite"
        assert set(ready["components"]) == {"membership", "scheduler", "worker"}
        assert ready["member"]["roles"] == ["scheduler", "worker", "api"]
        cli(
            "jobs",
            "add",
            "hi",
            "--cron",
            "* * * * * *",
            "--task",
            "greet",
            "--payload",
            '{"name": "cli"}',
        )
        wait_for(
            lambda: len(cli.json("runs", "list", "--job", "hi", "--state", "succeeded")) >= 2,
            30,
            "two fires to run",
        )
        run = cli.json("runs", "list", "--job", "hi", "--state", "succeeded")[0]
        assert run["output"] == '"hello cli"'
        # A long run in flight at SIGTERM finishes within the grace period before exit. The nap
        # outlasts a few polls (each poll is a CLI process, 1-2 s on a loaded machine), so the
        # test sees it running rather than already done.
        cli("jobs", "add", "nap", "--every", "1h", "--task", "nap", "--payload", '{"seconds": 8}')
        napping = cli.json("jobs", "trigger", "nap")
        wait_for(lambda: _state(cli, napping["id"]) == "running", 20, "the nap to start")
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
        assert _state(cli, napping["id"]) == "succeeded"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_worker_and_scheduler_roles_on_sqlite(cli: Cli) -> None:
    sched = cli.start("scheduler")
    worker = cli.start(
        "worker", "--app", "tests.acceptance.apps.cli_app:app", "--queues", "default,heavy=1"
    )
    try:
        cli("jobs", "add", "heavy", "--every", "1h", "--task", "greet", "--queue", "heavy")
        run = cli.json("jobs", "trigger", "heavy")
        wait_for(lambda: _state(cli, run["id"]) == "succeeded", 30, "the heavy run")
    finally:
        for proc in (sched, worker):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0


def _state(cli: Cli, run_id: str) -> str:
    done = cli("runs", "show", run_id)
    return str(json.loads(done.stdout)["state"]) if done.returncode == 0 else "?"


def _readyz(port: int) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
    return body


def _get(port: int, path: str) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code
    except httpx.HTTPError:
        time.sleep(0.2)
        return 0


@pytest.mark.parametrize("component", ["scheduler", "worker", "membership"])
def test_a_component_that_dies_makes_the_process_exit_non_zero(
    tmp_path: Path, component: str
) -> None:
    """A loop that dies stops the whole process, in order, with a non-zero exit code: a
    supervisor (systemd, Kubernetes) restarts it instead of leaving it half alive."""
    cli = Cli(tmp_path)
    cli.env["ONCELY_TEST_CRASH"] = component
    port = free_port()
    server = cli.start("up", "--app", "tests.acceptance.apps.crash_app:app", "--port", str(port))
    try:
        wait_for(lambda: _get(port, "/readyz") == 200, 30, "/readyz")
        code = server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    log = (tmp_path / "server.log").read_text()
    assert code != 0, log
    assert f"component {component} died" in log and f"injected crash of the {component}" in log
    # It stopped in order: shard leases released and its member row deleted.
    import sqlite3

    db = sqlite3.connect(tmp_path / "oncely.db")
    assert db.execute("SELECT count(*) FROM leases").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM members").fetchone() == (0,)
    db.close()
