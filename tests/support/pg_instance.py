"""A PostgreSQL server of the test's own, which the test may stop, kill and restart.

The shared server on 5432 must never be restarted by a test; outage tests run this one, on a
free port, in a temporary directory (``initdb`` + ``pg_ctl`` from the PostgreSQL 15 binaries).
``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user, in a
directory that user owns.

Usage (the ``own_pg`` fixture)::

    url = own_pg.url                  # postgresql://postgres@127.0.0.1:PORT/postgres
    own_pg.stop("fast")               # or "immediate" (a crash: no shutdown checkpoint)
    own_pg.start()                    # returns once it accepts connections
    own_pg.restart(pause=0.2)         # stop, wait, start
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

BIN = Path(os.environ.get("ONCELY_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgInstance:
    def __init__(self, root: Path, port: int, as_user: str | None) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port
        self._as_user = as_user
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(BIN / args[0]), *args[1:]]
        if self._as_user is not None:
            cmd = ["runuser", "-u", self._as_user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> float:
        """Start and wait until it accepts connections; return that instant (monotonic)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            # fsync off: a killed server loses nothing the OS has (an immediate stop is a
            # process crash, not a power cut); commits still reach the OS before they return.
            "-c fsync=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return time.monotonic()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, *, pause: float = 0.0, mode: str = "fast") -> float:
        self.stop(mode)
        time.sleep(pause)
        return self.start()

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def destroy(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no postgres user to run initdb as")
    return "postgres"


@pytest.fixture
def own_pg() -> Iterator[PgInstance]:
    if not (BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {BIN}")
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="oncely-pg-"))
    if user is not None:
        info = pwd.getpwnam(user)
        os.chown(root, info.pw_uid, info.pw_gid)
    instance = PgInstance(root, free_port(), user)
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        instance.destroy()
