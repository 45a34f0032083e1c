"""Where the CLI's job and run commands go: a local store, or a remote server.

Both backends answer with the same wire models, so every command prints the same thing (and
the same ``--json``) whichever it talks to. Neither checks anything itself: the local one
goes through the service as the process's own authority (it holds the store's credentials),
the remote one through the server's REST API as the user its token names, so the server's
rules (roles, shell, networks) are the ones that apply.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from oncely.app import App, run_states
from oncely.client import Client
from oncely.domain.errors import NotFound
from oncely.domain.ids import looks_like_id
from oncely.observe.redact import masked_url
from oncely.ports.store import RunQuery
from oncely.wire import (
    JobCreate,
    JobOut,
    RunDetail,
    RunOut,
    job_out,
    run_detail,
    run_out,
)


class Backend(Protocol):
    where: str
    """``store sqlite:///...`` or ``server http://...``: named when a lookup finds nothing."""

    def add_job(self, spec: JobCreate, *, replace: bool) -> JobOut: ...
    def list_jobs(self, *, limit: int) -> list[JobOut]: ...
    def find_job(self, ref: str) -> JobOut: ...
    def now(self) -> datetime: ...  # where previews start: the store's clock, or this machine's
    def pause(self, ref: str) -> JobOut: ...
    def resume(self, ref: str) -> JobOut: ...
    def trigger(self, ref: str) -> RunOut: ...
    def delete(self, ref: str) -> None: ...
    def list_runs(
        self, job: str | None, *, states: Sequence[str] | None, limit: int
    ) -> list[RunOut]: ...
    def get_run(self, run_id: str) -> RunDetail: ...
    def requeue(self, run_id: str) -> RunOut: ...
    def cancel(self, run_id: str) -> RunOut: ...
    def close(self) -> None: ...


class LocalBackend:
    def __init__(self, app: App) -> None:
        self.app = app
        store = app.settings.store if isinstance(app.settings.store, str) else "the given store"
        self.where = f"{masked_url(store)} (owner {app.owner!r})"

    def _now(self) -> datetime:
        return self.app.clock.now()

    def now(self) -> datetime:
        return self._now()

    def add_job(self, spec: JobCreate, *, replace: bool) -> JobOut:
        return job_out(self.app.service.jobs.create(self.app.principal, spec, replace=replace))

    def list_jobs(self, *, limit: int) -> list[JobOut]:
        return [job_out(j) for j in self.app.list_jobs(limit=limit)]

    def find_job(self, ref: str) -> JobOut:
        return job_out(self.app.get_job(ref))

    def pause(self, ref: str) -> JobOut:
        return job_out(self.app.pause(ref))

    def resume(self, ref: str) -> JobOut:
        return job_out(self.app.resume(ref))

    def trigger(self, ref: str) -> RunOut:
        return run_out(self.app.trigger(ref), self._now())

    def delete(self, ref: str) -> None:
        self.app.delete(ref)

    def list_runs(
        self, job: str | None, *, states: Sequence[str] | None, limit: int
    ) -> list[RunOut]:
        runs = self.app.list_runs(job, states=states, limit=limit)
        now = self._now()
        return [run_out(r, now) for r in runs]

    def get_run(self, run_id: str) -> RunDetail:
        run = self.app.get_run(run_id)
        return run_detail(run, self.app.attempts(run_id), self._now())

    def requeue(self, run_id: str) -> RunOut:
        return run_out(self.app.requeue(run_id), self._now())

    def cancel(self, run_id: str) -> RunOut:
        return run_out(self.app.cancel(run_id), self._now())

    def close(self) -> None:
        self.app.close()


class RemoteBackend:
    def __init__(self, url: str, token: str | None) -> None:
        self.client = Client(url, token=token)
        self.where = f"server {url}"

    def add_job(self, spec: JobCreate, *, replace: bool) -> JobOut:
        return self.client.create_job(spec, replace=replace)

    def list_jobs(self, *, limit: int) -> list[JobOut]:
        found: list[JobOut] = []
        for job in self.client.iter_jobs(limit=min(limit, 500)):
            found.append(job)
            if len(found) >= limit:
                break
        return found

    def find_job(self, ref: str) -> JobOut:
        return self.client.get_job(ref) if looks_like_id(ref) else self.client.find_job(ref)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def pause(self, ref: str) -> JobOut:
        return self.client.pause_job(self.find_job(ref).id)

    def resume(self, ref: str) -> JobOut:
        return self.client.resume_job(self.find_job(ref).id)

    def trigger(self, ref: str) -> RunOut:
        return self.client.trigger_job(self.find_job(ref).id)

    def delete(self, ref: str) -> None:
        self.client.delete_job(self.find_job(ref).id)

    def list_runs(
        self, job: str | None, *, states: Sequence[str] | None, limit: int
    ) -> list[RunOut]:
        run_states(states)  # the same check and message as the local backend
        job_id = self.find_job(job).id if job else None
        page = self.client.list_runs(
            job_id=job_id, states=list(states) if states else None, limit=min(limit, 500)
        )
        return page.items

    def get_run(self, run_id: str) -> RunDetail:
        if not looks_like_id(run_id):
            raise NotFound(f"no run with id {run_id!r}")
        return self.client.get_run(run_id)

    def requeue(self, run_id: str) -> RunOut:
        return self.client.requeue_run(run_id)

    def cancel(self, run_id: str) -> RunOut:
        return self.client.cancel_run(run_id)

    def close(self) -> None:
        self.client.close()


# -- saved logins ---------------------------------------------------------------------------


def credentials_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "oncely" / "tokens"


def saved_token(server: str) -> str | None:
    """The token ``oncely login`` saved for this server, if any."""
    path = credentials_file()
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        url, _, token = line.partition(" ")
        if url == server.rstrip("/") and token:
            return token
    return None


def save_token(server: str, token: str) -> Path:
    """Keep the token for this server in a file only the user can read."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept: list[str] = []
    with contextlib.suppress(OSError):
        kept = [
            line
            for line in path.read_text("utf-8").splitlines()
            if line.partition(" ")[0] != server.rstrip("/")
        ]
    kept.append(f"{server.rstrip('/')} {token}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(kept) + "\n")
    return path


__all__ = ["Backend", "LocalBackend", "RemoteBackend", "RunQuery", "save_token", "saved_token"]
