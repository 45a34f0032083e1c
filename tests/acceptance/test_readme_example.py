"""The README's Python example runs as written, and again a second time (it is idempotent).

The example's code is taken from README.md as it is; only its last line, ``app.run()``
(which runs until SIGTERM), is replaced by a bounded run of the same engine: 3 seconds of
``app.run_async`` with a stop event. It runs in a fresh process in a temporary directory, so
its ``sqlite:///oncely.db`` is a file of that directory."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BOUNDED_RUN = """\
import asyncio as _asyncio


async def _bounded_run() -> None:
    stop = _asyncio.Event()
    _asyncio.get_running_loop().call_later(3, stop.set)
    await app.run_async(stop=stop)


_asyncio.run(_bounded_run())
"""


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme[readme.index("## The Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README has a Python example"
    lines = code.group(1).rstrip("\n").splitlines()
    assert lines[-1].startswith("app.run()"), "the example ends with app.run()"
    return "\n".join(lines[:-1]) + "\n" + BOUNDED_RUN


def test_readme_example_runs_twice(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    for attempt in (1, 2):
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"run {attempt}:\n{done.stdout}\n{done.stderr}"
    with sqlite3.connect(tmp_path / "oncely.db") as db:
        names = {row[0] for row in db.execute("SELECT name FROM jobs WHERE deleted_at IS NULL")}
    assert {"weekday report", "warm cache", "once", "invoice 0", "invoice 999"} <= names
    assert len(names) == 1003, "the second run added no job twice"
