"""A real `oncely up` (SQLite, scheduler and worker, the dashboard at /) and a headless
Chromium driving it. Chromium is Debian's (/usr/bin/chromium, installed by scripts/install);
Playwright's own browser downloads are never used."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ONCELY_CHROMIUM", "/usr/bin/chromium")
ADMIN, ADMIN_PASSWORD = "admin", "admin passphrase 123"
USERS = {"alice": "alice passphrase 123", "bob": "bob passphrase 1234"}
SCREENSHOTS = ROOT / "docs" / "screenshots"


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log: Path

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oncely.cli.main", *args],
            input=stdin, capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=60,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Package scope, not session: under pytest-xdist a worker runs other files after these, and
# Playwright's sync API keeps an event loop running on the main thread while it is open (a later
# test's asyncio.run would fail). Leaving the package closes the browser and the server.
@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("web")
    port = _free_port()
    env = {
        **os.environ,
        "ONCELY_STORE": f"sqlite:///{tmp / 'oncely.db'}",
        "ONCELY_ADMIN_USER": ADMIN,
        "ONCELY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oncely.cli.main", "up", "--app", "tests.web.dash_app:app",
             "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("oncely up did not start:\n" + log.read_text(errors="replace"))
        time.sleep(0.2)
    srv = Server(url, env, log)
    for name, password in USERS.items():
        done = srv.cli("users", "create", name, "--password-stdin", stdin=password + "\n")
        assert done.returncode == 0, done.stderr
    try:
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"Debian's chromium is missing ({CHROMIUM}): run scripts/install")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            yield b
        finally:
            b.close()
