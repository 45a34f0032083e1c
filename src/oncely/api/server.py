"""The HTTP server of an oncely process (uvicorn in the process's own event loop)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from oncely.api.auth import PUBLIC, LoginLimits, check_routes, install_auth, requires
from oncely.api.errors import BodyLimit, install_error_handlers
from oncely.api.v1 import v1_router
from oncely.domain.principal import Permission

if TYPE_CHECKING:
    from oncely.auth import Authenticator
    from oncely.service import Service

Readiness = Callable[[], tuple[bool, dict[str, Any]]]
"""Blocking probe: (ready, body). Given by the composition root (the engine's readiness)."""
Metrics = Callable[[], bytes]
"""Blocking: the process's metrics in Prometheus text format (``oncely.observe.metrics``)."""
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def create_http_app(
    readiness: Readiness,
    *,
    auth: Authenticator | None = None,
    login_limits: LoginLimits | None = None,
    metrics: Metrics | None = None,
    metrics_public: bool = False,
    service: Service | None = None,
) -> FastAPI:
    """The HTTP app. Every route declares who may call it (``oncely.api.auth``): an app with
    a route that does not is refused here. The REST resources (``/v1``) are served only
    together with authentication: never open."""
    api = FastAPI(
        title="oncely",
        version="0.1.0",
        description="Jobs, runs and schedules of an oncely cluster. Every /v1 route needs "
        "an access token (POST /v1/auth/token) or an API key as a bearer credential.",
    )
    install_error_handlers(api)
    api.add_middleware(BodyLimit)

    @api.get("/healthz", dependencies=[PUBLIC])
    async def healthz() -> dict[str, str]:
        """The process is up and serving (liveness)."""
        return {"status": "ok"}

    @api.get("/readyz", dependencies=[PUBLIC])
    async def readyz() -> JSONResponse:
        """The store answers with the current schema and the loops are turning (readiness)."""
        ready, body = await asyncio.to_thread(readiness)
        return JSONResponse(body, status_code=200 if ready else 503)

    # The figures count every owner's runs: an admin's credential (Prometheus sends an API
    # key as a bearer token) unless the server opens them (``metrics_public``, for a port
    # that only the scrapers reach). Without authentication there is no one to admit.
    metrics_rule = PUBLIC if metrics_public else requires(Permission.ADMIN)
    if metrics is not None and (metrics_public or auth is not None):
        exposition = metrics

        @api.get("/metrics", dependencies=[metrics_rule], include_in_schema=False)
        async def prometheus_metrics() -> Response:
            """Prometheus text format (may read the store: off the event loop)."""
            body = await asyncio.to_thread(exposition)
            return Response(body, media_type=PROMETHEUS_TEXT)

    if auth is not None:
        install_auth(api, auth, login_limits)
        if service is not None:
            api.include_router(v1_router(service))
            from oncely.api.backfills import backfills_router
            from oncely.api.imports import imports_router
            from oncely.api.notifications import notifications_router
            from oncely.web import install_web

            install_web(api, service, login_limits)
            api.include_router(notifications_router(service))
            api.include_router(imports_router(service))
            api.include_router(backfills_router(service))
    check_routes(api)
    return api


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the App owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class RunningServer:
    def __init__(self, server: _EmbeddedServer, task: asyncio.Task[None]) -> None:
        self._server = server
        self._task = task

    @property
    def port(self) -> int:
        servers = getattr(self._server, "servers", [])
        for srv in servers:
            for sock in srv.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    async def stop(self) -> None:
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 10)


async def start_http(asgi: Any, host: str, port: int) -> RunningServer:
    config = uvicorn.Config(asgi, host=host, port=port, log_level="warning", lifespan="off")
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the bind error, if any
            raise RuntimeError("HTTP server stopped before it started")
        await asyncio.sleep(0.01)
    return RunningServer(server, task)
