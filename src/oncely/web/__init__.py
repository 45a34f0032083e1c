"""The web dashboard, served at ``/`` by ``oncely up`` and ``oncely api``.

Design notes:

- Server-rendered: Jinja2 templates (autoescaped), a stylesheet and one small script shipped
  as package data; nothing to build, nothing fetched from elsewhere. Charts are SVG drawn on
  the server (``charts``). Light and dark themes follow the OS.
- Every page reads and acts through the service layer (``oncely.service``) as the logged-in
  user's ``Principal``, so permissions and owner isolation are the service's: another
  owner's job is a 404 here exactly as in the API.
- Sessions and CSRF: see ``session``. Every route declares its access rule in the API's
  route registry (``SessionRule`` is one of its rules), so the test that enumerates routes
  sees these too; only the login form and the static files are public.
- Untrusted text (job names, payloads, errors, output) is only ever escaped by the templates;
  every response carries a strict Content-Security-Policy (``script-src 'self'``, no inline
  script or style), and the script builds no HTML from data: live parts swap in fragments
  the server rendered (polling every few seconds, paused while the tab is hidden).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import escape

from oncely.web.session import CsrfRefused, LoginRequired, NotAllowed

if TYPE_CHECKING:
    from oncely.api.auth import LoginLimits
    from oncely.service import Service


def install_web(app: FastAPI, service: Service, limits: LoginLimits | None = None) -> None:
    """Mount the dashboard on ``app`` (which must already have authentication installed)."""
    from oncely.web.routes import SECURITY_HEADERS, web_router

    if getattr(app.state, "authenticator", None) is None:
        raise RuntimeError("the dashboard needs authentication: install it first")

    async def login_required(request: Request, exc: Exception) -> Response:
        if request.method in ("GET", "HEAD") and not request.headers.get("x-fragment"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(
                "/login?" + urlencode({"next": target}), status_code=303, headers=SECURITY_HEADERS
            )
        return HTMLResponse(
            "<!doctype html><title>Log in</title><p>Your session has ended: "
            '<a href="/login">log in</a> again.</p>',
            status_code=401,
            headers=SECURITY_HEADERS,
        )

    async def csrf_refused(request: Request, exc: Exception) -> Response:
        return HTMLResponse(
            "<!doctype html><title>Refused</title><p>This form has expired or did not come "
            'from this site. <a href="/">Go back</a>, reload the page and try again.</p>',
            status_code=403,
            headers=SECURITY_HEADERS,
        )

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return HTMLResponse(
            "<!doctype html><title>Not allowed</title><h1>Not allowed</h1><p>Your role may "
            f"not do this (it needs the {escape(str(exc))} permission). "
            '<a href="/">Back to the overview</a></p>',
            status_code=403,
            headers=SECURITY_HEADERS,
        )

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(NotAllowed, not_allowed)
    app.add_exception_handler(CsrfRefused, csrf_refused)
    app.include_router(web_router(service, limits))


__all__ = ["install_web"]
