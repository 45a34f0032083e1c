"""docs/api.md's walkthrough runs as written: every `sh` block after the server command, in
order, in one shell (bash -e, pipefail), with curl and jq against a live server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from oncely.auth import Authenticator
from oncely.domain.principal import Role
from tests.api.conftest import build, serve

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def walkthrough() -> list[str]:
    text = DOC.read_text("utf-8")
    section = text.split("## Walkthrough", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert blocks[0].startswith("ONCELY_ADMIN_USER=")  # how to start the server: not run
    return blocks[1:]


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_the_api_walkthrough_runs_as_written(tmp_path: Path) -> None:
    app, asgi, _ = build(tmp_path)
    Authenticator(app.store, app.clock).create_user(
        "admin", "change me, at length", role=Role.ADMIN, owner="admin"
    )
    blocks = walkthrough()
    assert len(blocks) >= 10
    script = "\n".join(["set -euo pipefail", *blocks])
    with serve(asgi) as url:
        done = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "ONCELY": url},
            timeout=120,
        )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    app.close()
