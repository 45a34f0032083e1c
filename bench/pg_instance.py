"""A PostgreSQL server of its own, which a benchmark or a test may stop, kill and restart.

The shared server on 5432 is never restarted; outage workloads and tests run this one, on a
free port, in a temporary directory (``initdb`` + ``pg_ctl`` from the PostgreSQL 15 binaries,
``ONCELY_PG_BIN`` to override). ``initdb`` refuses to run as root, so as root the server runs
as the ``postgres`` user, in a directory that user owns. tests/support/pg_instance.py wraps it
in the ``own_pg`` fixture.

Usage::

    pg = PgInstance.create()          # raises PgUnavailable when it cannot run here
    url = pg.url                      # postgresql://postgres@127.0.0.1:PORT/postgres
    pg.stop("fast")                   # or "immediate" (a crash: no shutdown checkpoint)
    pg.start()                        # returns once it accepts connections
    pg.restart(pause=0.2)             # stop, wait, start
    pg.destroy()
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

BIN = Path(os.environ.get("ONCELY_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PgUnavailable(RuntimeError):
    """No PostgreSQL binaries, or root without a ``postgres`` user to run them as."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_user() -> str | None:
    """None when we may run the server ourselves; as root, the ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        msg = "running as root and there is no postgres user to run initdb as"
        raise PgUnavailable(msg) from exc
    return "postgres"


class PgInstance:
    def __init__(
        self, root: Path, port: int, as_user: str | None, settings: dict[str, str] | None = None
    ) -> None:
        self.settings = dict(settings or {})
        """``-c name=value`` for every start (W6: a production-like server; see its notes)."""
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port
        self._as_user = as_user
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    @classmethod
    def create(cls, settings: dict[str, str] | None = None) -> PgInstance:
        """A new initialised and started server in a fresh temporary directory; ``settings``
        override the defaults below (``{"fsync": "on"}`` makes it durable)."""
        if not (BIN / "initdb").exists():
            raise PgUnavailable(f"no PostgreSQL binaries in {BIN}")
        user = server_user()
        root = Path(tempfile.mkdtemp(prefix="oncely-pg-"))
        if user is not None:
            info = pwd.getpwnam(user)
            os.chown(root, info.pw_uid, info.pw_gid)
        instance = cls(root, free_port(), user, settings)
        try:
            instance.init()
            instance.start()
        except BaseException:
            instance.destroy()
            raise
        return instance

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(BIN / args[0]), *args[1:]]
        if self._as_user is not None:
            cmd = ["runuser", "-u", self._as_user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> float:
        """Start and wait until it accepts connections; return that instant (monotonic)."""
        # fsync off by default: a killed server loses nothing the OS has (an immediate stop
        # is a process crash, not a power cut); commits still reach the OS before they return.
        settings = {"fsync": "off", "full_page_writes": "off", "max_connections": "200"}
        settings.update(self.settings)
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} " + " ".join(
            f"-c {name}={value}" for name, value in settings.items()
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
        if self.data.exists() and self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
