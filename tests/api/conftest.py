"""A REST API over a real SQLite store, with real users and API keys, for each role.

``rest`` talks to the ASGI app in process (fast: the role matrix makes hundreds of
requests); ``live`` is the same app behind a real uvicorn server on a loopback port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import oncely
from oncely.api.server import create_http_app
from oncely.auth import Authenticator
from oncely.config import Settings
from oncely.domain.principal import Role
from tests.integration.live_server import serve

PASSWORD = "correct horse battery staple"
USERS = {
    "root": (Role.ADMIN, "ops"),
    "alice": (Role.USER, "alice"),
    "bob": (Role.USER, "bob"),
    "vera": (Role.VIEWER, "alice"),  # a viewer of alice's jobs
}


@dataclass
class Rest:
    app: oncely.App
    asgi: FastAPI
    keys: dict[str, str]
    http: httpx.Client

    def as_(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[user]}"}

    def call(self, user: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**(self.as_(user) if user else {}), **kw.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kw)


_TEMPLATES: dict[Path, tuple[Path, dict[str, str]]] = {}


def _template(root: Path) -> tuple[Path, dict[str, str]]:
    """A store with the users and their API keys, made once per session (argon2 is slow on
    purpose) and copied for each test."""
    if root not in _TEMPLATES:
        folder = root / "template"
        folder.mkdir(parents=True, exist_ok=True)
        app = oncely.App(settings=Settings(store=f"sqlite:///{folder / 'api.db'}"))
        auth = Authenticator(app.store, app.clock)
        keys = {}
        for name, (role, owner) in USERS.items():
            user = auth.create_user(name, PASSWORD, role=role, owner=owner)
            _, keys[name] = auth.create_api_key(user, "tests")
        app.close()
        _TEMPLATES[root] = (folder / "api.db", keys)
    return _TEMPLATES[root]


def build(tmp_path: Path, **settings: Any) -> tuple[oncely.App, FastAPI, dict[str, str]]:
    template, keys = _template(_ROOT[0])
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "api.db"
    for suffix in ("", "-wal", "-shm"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, db.with_name(db.name + suffix))
    app = oncely.App(settings=Settings(store=f"sqlite:///{db}", **settings))
    auth = Authenticator(app.store, app.clock)

    def ready() -> tuple[bool, dict[str, Any]]:
        return True, {"status": "ready"}

    asgi = create_http_app(ready, auth=auth, service=app.service)
    return app, asgi, keys


_ROOT: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _template_root(tmp_path_factory: pytest.TempPathFactory) -> None:
    _ROOT.append(tmp_path_factory.mktemp("api-template"))


@pytest.fixture
def rest(tmp_path: Path) -> Iterator[Rest]:
    app, asgi, keys = build(tmp_path, allow_shell=True)
    # The ASGI app in process (starlette's TestClient: sync, over anyio).
    with TestClient(asgi, base_url="http://oncely", raise_server_exceptions=False) as http:
        yield Rest(app, asgi, keys, http)
    app.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Rest]:
    app, asgi, keys = build(tmp_path, allow_shell=True)
    with serve(asgi) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield Rest(app, asgi, keys, http)
    app.close()
