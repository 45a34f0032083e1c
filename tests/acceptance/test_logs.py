"""What an on-call engineer reads: `oncely --log-format json up` (a real process, a real
SQLite file, real HTTP targets on loopback) logs a dead run at WARNING with run, job,
attempt, token and node, logs nothing per successful HTTP call, and `oncely runs list`
shows the run's last error."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.acceptance.procs import wait_for
from tests.acceptance.test_cli import Cli, free_port


class Target(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        status = 200 if self.path == "/ok" else 503
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_dead_run_is_a_warning_success_is_silent_and_runs_list_shows_the_error(
    tmp_path: Path, target: str
) -> None:
    cli = Cli(tmp_path)
    cli.env["ONCELY_HTTP_ALLOW_PRIVATE"] = "true"
    ok = cli("jobs", "add", "pinger", "--every", "1s", "--http", f"{target}/ok")
    assert ok.returncode == 0, ok.stderr
    bad = cli(
        "jobs", "add", "broken", "--every", "1h", "--http", f"{target}/fail",
        "--retries", "1", "--base-delay", "0.05",
    )  # fmt: skip
    assert bad.returncode == 0, bad.stderr
    run = cli.json("jobs", "trigger", "broken")
    server = cli.start("--log-format", "json", "up", "--port", str(free_port()))
    try:

        def settled() -> bool:
            runs = {r["id"]: r for r in cli.json("runs", "list", "--limit", "200")}
            pingers = [r for r in runs.values() if r["job"] == "pinger"]
            done = sum(1 for r in pingers if r["state"] == "succeeded")
            return runs[run["id"]]["state"] == "dead" and done >= 3

        wait_for(settled, 30, "a dead run and three successful calls")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    lines = (tmp_path / "server.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == len([line for line in lines if line.strip()]), "every line is JSON"

    [dead] = [r for r in records if r.get("event") == "run.dead"]
    assert dead["level"] == "WARNING" and dead["logger"] == "oncely.runs"
    assert dead["run_id"] == run["id"] and dead["job"] == "broken"
    assert dead["attempt"] == 2 and isinstance(dead["token"], int)
    assert dead["node"].startswith("worker:") and dead["job_id"]
    assert "503" in dead["error"] and run["id"] in dead["message"]
    [retrying] = [r for r in records if r.get("event") == "run.retrying"]
    assert retrying["level"] == "INFO" and retrying["attempt"] == 1
    # Successful calls leave no line at all (metrics count them); failures do.
    assert not [r for r in records if "/ok" in r["message"] or "HTTP Request" in r["message"]]

    table = cli("runs", "list", "--job", "broken")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.rstrip().endswith("LAST ERROR")
    assert run["id"] in row and "dead" in row and "503" in row
