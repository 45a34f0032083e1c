"""Errors on the wire, and the guards in front of every route.

Every error body has one shape (``oncely.wire.ErrorOut``): a code, a message meant for the
person who sent the request, and the field it is about. Domain errors map to statuses here
and nowhere else. Anything unexpected is a generic 500 whose body says nothing about the
server (no stack trace, no SQL, no exception text); the details go to the log.

Hostile input: bodies larger than ``MAX_BODY_BYTES`` are refused with 413 before they are
read whole (by Content-Length, and by counting when the body is chunked). Header sizes are
bounded by the HTTP server (uvicorn/h11 refuses oversized request heads).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oncely.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from oncely.wire import ErrorBody, ErrorOut

log = logging.getLogger("oncely.api")

MAX_BODY_BYTES = 1024 * 1024
"""The largest request body accepted (a job's payload is at most 256 KiB)."""


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body = ErrorOut(error=ErrorBody(code=code, message=message, field=field))
    return JSONResponse(body.model_dump(), status_code=status)


def _field_of(loc: Any) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    parts = [p for p in parts if not (p[:1].isupper() or "[" in p or p in ("str", "float"))]
    return ".".join(parts) or None


def install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(InvalidInput)
    async def invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return error_response(422, "invalid_input", str(exc), exc.field)

    @api.exception_handler(RequestValidationError)
    async def unprocessable(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field_of(first.get("loc", ()))
        message = str(first.get("msg", "invalid request"))
        if first.get("type") == "extra_forbidden":
            message = f"{field} may not be set"
        text = f"{field}: {message}" if field else message
        return error_response(422, "invalid_input", text, field)

    @api.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    @api.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    @api.exception_handler(PermissionDenied)
    async def forbidden(_: Request, exc: PermissionDenied) -> JSONResponse:
        return error_response(403, "forbidden", str(exc))

    @api.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", "internal error; the server log has the details")


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await self._refuse(scope, receive, send)
                    return
            if name == b"content-length":
                break
        else:
            # No declared length (chunked): read the body here, up to the limit, and hand
            # it on whole. A request that sends more is refused without reading the rest.
            body = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    await self.app(scope, _replay(message, receive), send)
                    return
                body += message.get("body", b"")
                more = bool(message.get("more_body", False))
                if len(body) > self.limit:
                    await self._refuse(scope, receive, send)
                    return
            await self.app(
                scope, _replay({"type": "http.request", "body": bytes(body)}, receive), send
            )
            return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "too_large", f"request body larger than {self.limit // 1024} KiB"
        )
        await response(scope, receive, send)


def _replay(first: Message, then: Receive) -> Receive:
    """``first``, then whatever the connection says next (its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await then()

    return receive
