"""Users and API keys from the command line, used against a running ``oncely up``: real
processes on one SQLite file, real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.acceptance.procs import ROOT, wait_for
from tests.acceptance.test_cli import Cli, free_port

PASSWORD = "a long admin passphrase"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def run(cli: Cli, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oncely.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli.env,
        cwd=ROOT,
        timeout=60,
    )


@contextmanager
def up(cli: Cli, **env: str) -> Iterator[httpx.Client]:
    port = free_port()
    cli.env.update(env)
    server = cli.start("up", "--port", str(port))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            def healthy() -> bool:
                try:
                    return http.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(healthy, 30, "/healthz")
            yield http
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def login(http: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    return http.post("/v1/auth/token", data={"username": name, "password": password})


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def test_the_first_admin_made_with_the_cli_logs_in_and_keys_work(cli: Cli) -> None:
    made = run(cli, "users", "create", "root", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert PASSWORD not in made.stdout + made.stderr
    again = run(cli, "users", "create", "root", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.returncode == 4 and "already exists" in again.stderr
    weak = run(cli, "users", "create", "bob", "--password-stdin", stdin="short\n")
    assert weak.returncode == 2 and "(password)" in weak.stderr
    assert run(cli, "users", "create", "bob", "--password-stdin", stdin="").returncode == 2
    run(cli, "users", "create", "val", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
    users = json.loads(run(cli, "users", "list", "--json").stdout)
    assert [(u["name"], u["role"]) for u in users] == [("root", "admin"), ("val", "viewer")]

    created = run(cli, "apikeys", "create", "--user", "val", "--name", "ci", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    listed = run(cli, "apikeys", "list", "--json")
    assert [k["prefix"] for k in json.loads(listed.stdout)] == [key["prefix"]]
    assert key["key"] not in listed.stdout

    with up(cli) as http:
        token = login(http, "root")
        assert token.status_code == 200, token.text
        me = http.get("/v1/auth/me", headers=bearer(token.json()["access_token"]))
        assert me.json()["role"] == "admin"
        assert http.get("/v1/auth/me", headers=bearer(key["key"])).json()["name"] == "val"

        # Changes made by the CLI apply to the running server at once.
        assert run(cli, "apikeys", "revoke", key["prefix"]).returncode == 0
        assert http.get("/v1/auth/me", headers=bearer(key["key"])).status_code == 401
        assert run(cli, "users", "disable", "root").returncode == 0
        assert login(http, "root").status_code == 401
        assert run(cli, "users", "enable", "root").returncode == 0
        assert login(http, "root").status_code == 200
        assert run(cli, "users", "disable", "nobody").returncode == 3
        assert run(cli, "auth", "rotate-signing-key", "--yes").returncode == 0
        assert login(http, "root").status_code == 200

        audit = http.get(
            "/v1/audit", headers=bearer(login(http, "root").json()["access_token"])
        ).json()["items"]
        actions = [e["action"] for e in audit]
        assert actions[:4] == [
            "auth.rotate_signing_key",
            "user.enable",
            "user.disable",
            "apikey.revoke",
        ]
        assert all(e["actor"].startswith("cli") for e in audit)


def test_the_first_admin_can_come_from_the_environment(cli: Cli) -> None:
    env = {"ONCELY_ADMIN_USER": "boss", "ONCELY_ADMIN_PASSWORD": PASSWORD}
    with up(cli, **env) as http:
        assert login(http, "boss").status_code == 200
    users = json.loads(run(cli, "users", "list", "--json").stdout)
    assert [(u["name"], u["role"]) for u in users] == [("boss", "admin")]
    # Only while no user exists: a later start with other values creates nothing.
    with up(cli, ONCELY_ADMIN_USER="other") as http:
        assert login(http, "other").status_code == 401
        assert login(http, "boss").status_code == 200
    assert len(json.loads(run(cli, "users", "list", "--json").stdout)) == 1
