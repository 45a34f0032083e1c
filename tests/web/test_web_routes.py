"""The dashboard's routes in the route registry: each declares who may call it, only the login
form and the static files are public, and without a session every other page sends the
browser to the login form (and every form post is refused). Real HTTP on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import oncely
from oncely.api.auth import route_rules
from oncely.api.server import create_http_app
from oncely.auth import Authenticator
from oncely.config import Settings
from oncely.ports.store import ClaimParams
from tests.integration.live_server import serve

WEB_PUBLIC = {"GET /login", "POST /login", "POST /logout", "GET /static/{name}"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    embedded = oncely.App(settings=Settings(store=f"sqlite:///{tmp_path / 'o.db'}"))  # type: ignore[call-arg]
    store = embedded.store
    yield create_http_app(
        lambda: (True, {}), auth=Authenticator(store, embedded.clock), service=embedded.service
    )
    embedded.close()


def _web_routes(app: FastAPI) -> dict[str, str | None]:
    return {
        name.replace("GET,HEAD", "GET"): rule
        for name, rule in route_rules(app).items()
        if not re.search(r" /(v1|healthz|readyz|metrics|docs|redoc|openapi)", name)
    }


def test_every_dashboard_route_declares_a_rule(app: FastAPI) -> None:
    rules = _web_routes(app)
    assert len(rules) > 15
    assert all(rule is not None for rule in rules.values()), rules
    public = {name for name, rule in rules.items() if rule == "public"}
    assert public == WEB_PUBLIC
    assert rules["GET /"] == "session: requires read"
    assert rules["POST /jobs/{job_id}/trigger"] == "session: requires write"


def test_without_a_session_pages_redirect_and_forms_are_refused(app: FastAPI) -> None:
    rules = _web_routes(app)
    with serve(app) as url, httpx.Client(base_url=url) as http:
        for name, rule in rules.items():
            if rule == "public":
                continue
            method, path = name.split(" ", 1)
            concrete = re.sub(r"\{[^}]+\}", "01a24000-85ec-7f34-959f-cc148ab18867", path)
            for cookies in ({}, {"oncely_session": "not-a-token"}):
                http.cookies.clear()
                for key, value in cookies.items():
                    http.cookies.set(key, value)
                r = http.request(method.split(",")[0], concrete)
                if method.startswith("GET"):
                    assert r.status_code == 303, f"{name} answered {r.status_code}"
                    assert r.headers["location"].startswith("/login?next=")
                else:
                    assert r.status_code == 401, f"{name} answered {r.status_code}"
                assert "script-src 'self'" in r.headers["content-security-policy"]
        # A fragment poll with an ended session is told so, not redirected.
        r = http.get("/jobs?partial=1", headers={"X-Fragment": "1"})
        assert r.status_code == 401


def test_the_login_form_needs_its_csrf_token(app: FastAPI) -> None:
    with serve(app) as url, httpx.Client(base_url=url) as http:
        r = http.post("/login", data={"username": "x", "password": "y"})
        assert r.status_code == 403
        page = http.get("/login")
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
        assert token
        r = http.post("/login", data={"username": "x", "password": "y", "csrf": token[1]})
        assert r.status_code == 401 and "Wrong user name or password" in r.text
        # The token is bound to the browser's nonce: another browser's is worthless.
        other = httpx.Client(base_url=url)
        r = other.post("/login", data={"username": "x", "password": "y", "csrf": token[1]})
        assert r.status_code == 403
        other.close()


def test_the_runs_worker_filter_searches_every_run_not_one_page(tmp_path: Path) -> None:
    # Found in review: the filter kept the rows of the current page that matched, so a
    # worker whose runs were older than the first page showed an empty page.
    embedded = oncely.App(settings=Settings(store=f"sqlite:///{tmp_path / 'w.db'}"))  # type: ignore[call-arg]
    store = embedded.store
    auth = Authenticator(store, embedded.clock)
    auth.bootstrap_admin(
        {"ONCELY_ADMIN_USER": "root", "ONCELY_ADMIN_PASSWORD": "a long passphrase"}
    )
    embedded.add_job("w", cron="0 0 1 1 *", task="noop", queue="wq")
    embedded.trigger("w")  # the oldest run: claimed by the worker searched for
    claimed = store.run_claim(
        ClaimParams("worker:far-host:1:aa", "wq", 1, embedded.clock.now(), timedelta(seconds=60))
    )
    assert len(claimed) == 1
    for _ in range(60):  # newer runs than a whole page, none of them that worker's
        embedded.trigger("w")
    app = create_http_app(lambda: (True, {}), auth=auth, service=embedded.service)
    try:
        with serve(app) as url, httpx.Client(base_url=url) as http:
            page = http.get("/login")
            token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
            assert token
            form = {"username": "root", "password": "a long passphrase", "csrf": token[1]}
            assert http.post("/login", data=form).status_code == 303
            found = http.get("/runs", params={"worker": "worker:far-host"})
            assert found.status_code == 200
            assert claimed[0].run_id in found.text
            assert found.text.count('href="/runs/') == 1
            none = http.get("/runs", params={"worker": "worker:elsewhere"})
            assert claimed[0].run_id not in none.text and 'href="/runs/' not in none.text
    finally:
        embedded.close()
