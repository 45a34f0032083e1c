"""Deny by default: every route of the assembled HTTP app declares who may call it, and every
route that is not public refuses a request without credentials (Airflow's CVE-2020-13927 was
an API that answered everyone by default)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from oncely import App, compose
from oncely.api.auth import PUBLIC, check_routes, requires, route_rules
from oncely.api.server import create_http_app
from oncely.domain.principal import Permission
from tests.integration.live_server import serve

# Adding a public route is a decision: it is made here, where a reviewer sees it.
EXPECTED_PUBLIC = {
    "GET,HEAD /healthz",
    "GET,HEAD /readyz",
    "POST /v1/auth/token",
    "GET,HEAD /login",
    "POST /login",
    "POST /logout",
    "GET,HEAD /static/{name}",
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """The HTTP app as ``oncely up`` assembles it: probes, metrics, authentication, the REST
    resources and the dashboard."""
    embedded = App(f"sqlite:///{tmp_path / 'oncely.db'}")
    yield create_http_app(
        lambda: (True, {}),
        auth=compose.authenticator(embedded.store, embedded.clock, embedded.settings),
        login_limits=compose.login_limits(embedded.settings),
        metrics=lambda: b"",
        service=embedded.service,
    )
    embedded.close()


def _normalize(name: str) -> str:
    return name.replace("GET /", "GET,HEAD /") if name.startswith("GET /") else name


def test_every_route_declares_a_rule(app: FastAPI) -> None:
    rules = route_rules(app)
    assert len(rules) > 10
    missing = [name for name, rule in rules.items() if rule is None]
    assert missing == []
    public = {_normalize(n) for n, r in rules.items() if r == "public"}
    # Nothing else is public, except the API's own documentation.
    assert public == EXPECTED_PUBLIC
    docs = {n for n, r in rules.items() if r and r.startswith("public (API documentation)")}
    assert all(re.search(r" /(openapi\.json|docs|redoc)", n) for n in docs)
    assert rules["GET /v1/users"] == "requires admin"
    assert rules["GET /v1/auth/me"] == "authenticated"


def test_every_protected_route_refuses_a_request_without_credentials(app: FastAPI) -> None:
    rules = route_rules(app)
    protected = [
        (method, path, rule)
        for name, rule in rules.items()
        if rule is not None and not rule.startswith("public")
        for method in [name.split(" ", 1)[0].split(",")[0]]
        for path in [name.split(" ", 1)[1]]
    ]
    assert protected
    with serve(app) as url, httpx.Client(base_url=url) as http:
        for method, path, rule in protected:
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                r = http.request(method, concrete, headers=headers, json={})
                what = f"{method} {path} answered {r.status_code}"
                if rule.startswith("session"):
                    # Dashboard pages send a browser to the login page (or refuse a form).
                    assert r.status_code in (401, 403) or (
                        r.is_redirect and "/login" in r.headers["location"]
                    ), what
                else:
                    assert r.status_code == 401, what
                    assert r.headers["www-authenticate"] == "Bearer"


def test_an_app_with_an_unprotected_route_is_refused() -> None:
    app = FastAPI()

    @app.get("/healthz", dependencies=[PUBLIC])
    def ok() -> str:
        return "ok"

    check_routes(app)

    router = APIRouter()

    @router.get("/v1/forgotten")
    def forgotten() -> str:
        return "secret"

    app.include_router(router, prefix="/x")
    with pytest.raises(RuntimeError, match="/x/v1/forgotten"):
        check_routes(app)


def test_a_rule_given_by_the_router_counts() -> None:
    app = FastAPI()
    router = APIRouter(dependencies=[requires(Permission.READ)])

    @router.get("/v1/things")
    def things() -> list[str]:
        return []

    app.include_router(router)
    assert route_rules(app)["GET /v1/things"] == "requires read"


def test_metrics_need_an_admin_unless_the_server_opens_them(tmp_path: Path) -> None:
    """/metrics counts every owner's runs: a user's key is refused, an admin's (what a
    Prometheus scrape presents) admitted; ``metrics_public`` opens it for a private port."""
    from oncely.domain.principal import Role

    embedded = App(f"sqlite:///{tmp_path / 'oncely.db'}")
    auth = compose.authenticator(embedded.store, embedded.clock, embedded.settings)
    admin = auth.create_user("root", "correct horse battery staple", role=Role.ADMIN)
    user = auth.create_user("alice", "another long enough password")
    _, admin_key = auth.create_api_key(admin, "prometheus")
    _, user_key = auth.create_api_key(user, "mine")

    def build(public: bool) -> FastAPI:
        return create_http_app(
            lambda: (True, {}),
            auth=auth,
            login_limits=compose.login_limits(embedded.settings),
            metrics=lambda: b"oncely_up 1\n",
            metrics_public=public,
            service=embedded.service,
        )

    try:
        with serve(build(public=False)) as url, httpx.Client(base_url=url) as http:
            assert http.get("/metrics").status_code == 401
            bearer = {"Authorization": f"Bearer {user_key}"}
            assert http.get("/metrics", headers=bearer).status_code == 403
            r = http.get("/metrics", headers={"Authorization": f"Bearer {admin_key}"})
            assert r.status_code == 200 and r.text == "oncely_up 1\n"
        with serve(build(public=True)) as url, httpx.Client(base_url=url) as http:
            assert http.get("/metrics").status_code == 200
    finally:
        embedded.close()
