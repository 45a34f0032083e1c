"""The `oncely` command against a remote server (`oncely up` in another process): the
server's rules apply, not the CLI's environment; the same commands and --json as locally."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.procs import ROOT, wait_for
from tests.acceptance.test_cli import _get, free_port

ADMIN, PASSWORD = "root", "a long enough admin password"


class RemoteCli:
    def __init__(self, tmp: Path, url: str) -> None:
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ONCELY_")} | {
            "ONCELY_SERVER": url,
            "XDG_CONFIG_HOME": str(tmp / "config"),
            # The CLI's own environment says nothing of shell: only the server's counts.
            "ONCELY_STORE": f"sqlite:///{tmp / 'not-used.db'}",
        }

    def __call__(
        self, *args: str, token: str | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if token:
            env["ONCELY_TOKEN"] = token
        return subprocess.run(
            [sys.executable, "-m", "oncely.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
            input=stdin,
        )

    def json(self, *args: str, token: str | None = None) -> object:
        done = self(*args, "--json", token=token)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONCELY_")} | {
        "ONCELY_STORE": f"sqlite:///{tmp_path / 'server.db'}",
        "ONCELY_ALLOW_SHELL": "true",
        "ONCELY_ADMIN_USER": ADMIN,
        "ONCELY_ADMIN_PASSWORD": PASSWORD,
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "oncely.cli.main", "up", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    try:
        wait_for(lambda: _get(port, "/healthz") == 200, 30, "/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_cli_manages_a_remote_server_with_its_rules(server: str, tmp_path: Path) -> None:
    cli = RemoteCli(tmp_path, server)
    # No credential: refused by the server.
    assert cli("jobs", "list").returncode == 1
    done = cli("login", "--username", ADMIN, "--password", PASSWORD)
    assert done.returncode == 0, done.stderr
    saved = tmp_path / "config" / "oncely" / "tokens"
    assert saved.stat().st_mode & 0o077 == 0  # only the user can read it

    # Shell is enabled on the server (not in the CLI's environment): an admin may add it.
    job = cli.json("jobs", "add", "backup", "--every", "1h", "--shell", "echo hi")
    assert job["action"]["argv"] == ["echo", "hi"] and job["owner"] == ADMIN  # type: ignore[index]
    (tmp_path / "p.json").write_text('{"to": "ops@example.com"}')
    report = cli.json(
        "jobs",
        "add",
        "report",
        "--cron",
        "0 9 * * *",
        "--task",
        "send",
        "--payload",
        "@" + str(tmp_path / "p.json"),
    )
    assert report["payload"] == {"to": "ops@example.com"}  # type: ignore[index]
    piped = cli(
        "jobs",
        "add",
        "piped",
        "--every",
        "5m",
        "--task",
        "t",
        "--payload",
        "-",
        "--json",
        stdin="[1, 2]",
    )
    assert piped.returncode == 0 and json.loads(piped.stdout)["payload"] == [1, 2]

    # The same commands and output as against a local store.
    assert [j["name"] for j in cli.json("jobs", "list")] == ["backup", "piped", "report"]  # type: ignore[union-attr,index]
    run = cli.json("jobs", "trigger", "report")
    assert run["manual"] is True and run["state"] == "queued"  # type: ignore[index]
    assert cli.json("jobs", "pause", "report")["paused"] is True  # type: ignore[index]
    shown = json.loads(cli("runs", "show", run["id"]).stdout)  # type: ignore[index]
    assert shown["id"] == run["id"] and "attempts" in shown  # type: ignore[index]
    missing = cli("jobs", "show", "nope")
    assert missing.returncode == 3 and f"looked in server {server}" in missing.stderr

    # A plain user, through the server's API: shell is refused by role.
    admin_token = saved.read_text().split()[1]
    headers = {"Authorization": f"Bearer {admin_token}"}
    created = httpx.post(
        f"{server}/v1/users",
        headers=headers,
        json={"name": "ann", "password": "another long password", "role": "user"},
    )
    assert created.status_code in (200, 201), created.text
    key = httpx.post(f"{server}/v1/api-keys", headers=headers, json={"name": "cli", "user": "ann"})
    assert key.status_code in (200, 201), key.text
    ann = key.json()["key"]
    refused = cli("jobs", "add", "sh", "--every", "1h", "--shell", "id", token=ann)
    assert refused.returncode == 5 and "privileged_actions" in refused.stderr
    assert cli.json("jobs", "list", token=ann) == []  # the admin's jobs are not ann's
    hidden = cli("jobs", "show", job["id"], token=ann)  # type: ignore[index]
    assert hidden.returncode == 3


def test_the_api_role_serves_the_rest_api_without_loops(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONCELY_")} | {
        "ONCELY_STORE": f"sqlite:///{tmp_path / 'api.db'}",
        "ONCELY_ADMIN_USER": ADMIN,
        "ONCELY_ADMIN_PASSWORD": PASSWORD,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "oncely.cli.main", "api", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(port, "/readyz") == 200, 30, "/readyz")
        ready = httpx.get(f"{url}/readyz").json()
        assert "scheduler" not in ready and "worker" not in ready
        assert httpx.get(f"{url}/v1/jobs").status_code == 401
        token = httpx.post(
            f"{url}/v1/auth/token", json={"username": ADMIN, "password": PASSWORD}
        ).json()["access_token"]
        created = httpx.post(
            f"{url}/v1/jobs",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": "from api role", "every": "1h", "task": "t"},
        )
        assert created.status_code == 201, created.text
        spec = httpx.get(f"{url}/openapi.json").json()
        ops = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
        assert {"create_job", "list_jobs", "trigger_job", "get_run", "preview_schedule"} <= ops
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
