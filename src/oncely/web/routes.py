"""The dashboard's routes: pages and the fragments their live parts poll.

Every page reads and acts through the service layer as the logged-in principal, so the
service's permissions and owner isolation are the dashboard's: another owner's job is a 404
here as in the API. Handlers are plain (sync) functions: FastAPI runs them in its thread pool,
since the service and the store block.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Annotated, Any, get_args
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from oncely.api.auth import PUBLIC, LoginLimits
from oncely.api.ratelimit import SlidingWindow
from oncely.auth.service import LoginRefused
from oncely.domain.describe import schedule_in_words
from oncely.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from oncely.domain.ids import looks_like_id
from oncely.domain.jobs import Job
from oncely.domain.preview import preview
from oncely.domain.principal import Permission, Principal
from oncely.domain.runs import TERMINAL_STATES, Run, RunState
from oncely.domain.schedule import AtSchedule, CronSchedule, EverySchedule, make_schedule, next_fire
from oncely.ports.store import JobQuery, RunQuery
from oncely.service import Service
from oncely.web import charts, words
from oncely.web.forms import FormError, job_form_defaults, parse_job_form, schedule_form
from oncely.web.session import (
    CSRF_FIELD,
    SessionRule,
    WebSession,
    check_csrf,
    clear_session,
    csrf_key,
    csrf_nonce,
    csrf_token,
    set_cookies,
    set_session,
    web_auth,
)
from oncely.wire import ActionKind

log = logging.getLogger("oncely.web")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
PAGE = 50
CALENDAR_JOBS = 200
"""The all-jobs calendar walks each job's schedule: for at most this many jobs."""
CALENDAR_FIRES = 50_000
COUNT_CAP = 10_000
FLASH_COOKIE = "oncely_flash"
_STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}

_env = Environment(
    loader=PackageLoader("oncely.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(
    when=words.when, exact=words.exact, seconds=words.seconds, schedule_words=schedule_in_words
)

# The filter accepts the kinds the wire format names (one list: a new kind shows up here too).
ACTION_KINDS: tuple[str, ...] = get_args(ActionKind)


Reader = Annotated[WebSession, Depends(SessionRule(Permission.READ))]
Writer = Annotated[WebSession, Depends(SessionRule(Permission.WRITE))]
Admin = Annotated[WebSession, Depends(SessionRule(Permission.ADMIN))]


async def _read_form(request: Request) -> dict[str, str]:
    """A form's text fields (the last value of each); files are ignored."""
    form = await request.form(max_files=0, max_fields=200)
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


FormData = Annotated[dict[str, str], Depends(_read_form)]


def _render(
    request: Request,
    template: str,
    web: WebSession | None,
    *,
    status: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    subject = web.caller.user.id if web else "anon"
    nonce = csrf_nonce(request)
    token = csrf_token(csrf_key(web_auth(request)), nonce, subject)
    flash = request.cookies.get(FLASH_COOKIE)
    if flash and "flash" not in ctx:
        ctx["flash"] = unquote(flash)
    html = _env.get_template(template).render(
        request=request,
        path=request.url.path,
        me=web.principal if web else None,
        user=web.caller.user if web else None,
        csrf=token,
        csrf_field=CSRF_FIELD,
        **ctx,
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    set_cookies(request, response)
    if flash and not template.startswith("_"):
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _redirect(request: Request, url: str, *, flash: str | None = None) -> RedirectResponse:
    """Post/redirect/get; ``flash`` is shown once by the next page (a short-lived cookie,
    so a reload or a shared link does not repeat it)."""
    response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
    set_cookies(request, response)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            quote(flash[:300]),
            max_age=60,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


def _guard(fn: Callable[..., Response]) -> Callable[..., Response]:
    """Domain errors as pages: another owner's job or run is 404 exactly as a missing one."""

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Response:
        request: Request = kwargs["request"]
        web: WebSession | None = kwargs.get("web")
        try:
            return fn(*args, **kwargs)
        except NotFound as exc:
            return _render(
                request, "error.html", web, status=404, title="Not found", message=str(exc)
            )
        except PermissionDenied as exc:
            return _render(
                request,
                "error.html",
                web,
                status=403,
                title="Not allowed",
                message=str(exc) or "your role may not do this",
            )
        except (InvalidInput, Conflict) as exc:
            return _render(
                request,
                "error.html",
                web,
                status=422 if isinstance(exc, InvalidInput) else 409,
                title="Refused",
                message=str(exc),
            )

    return inner


def _csrf(request: Request, web: WebSession | None, token: str | None) -> None:
    check_csrf(request, token, web.caller.user.id if web else "anon")


def _cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _uncursor(text: str | None, size: int) -> list[str] | None:
    if not text:
        return None
    try:
        parts = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        raise InvalidInput("the page cursor is not one of ours", field="after") from None
    if (
        not isinstance(parts, list)
        or len(parts) != size
        or not all(isinstance(p, str) for p in parts)
    ):
        raise InvalidInput("the page cursor is not one of ours", field="after")
    return parts


def _state(value: str | None) -> RunState | None:
    if not value:
        return None
    try:
        return RunState(value)
    except ValueError:
        raise InvalidInput(f"unknown run state {value!r}", field="state") from None


def _aware(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: not a date and time", field=field) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def web_router(service: Service, limits: LoginLimits | None = None) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    limits = limits or LoginLimits()
    by_user = SlidingWindow(limits.per_user, limits.window)
    by_address = SlidingWindow(limits.per_address, limits.window)

    def now() -> datetime:
        return service.deps.clock().now()

    # -- static files and login -------------------------------------------------------------

    @router.get("/static/{name}", dependencies=[PUBLIC])
    def static(name: str) -> Response:
        if name not in _STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        body = resources.files("oncely.web").joinpath("static", name).read_bytes()
        headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=300"}
        return Response(body, media_type=_STATIC[name], headers=headers)

    @router.get("/login", dependencies=[PUBLIC])
    def login_form(request: Request, next: str = "/", error: str | None = None) -> Response:
        return _render(request, "login.html", None, next=_safe_next(next), error=error)

    @router.post("/login", dependencies=[PUBLIC])
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=1024)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        csrf: Annotated[str, Form(max_length=128)] = "",
        next: Annotated[str, Form(max_length=2048)] = "/",
    ) -> Response:
        _csrf(request, None, csrf)
        target = _safe_next(next)
        address = request.client.host if request.client else "unknown"
        if by_address.retry_after(address) or by_user.retry_after(username):
            return _render(
                request,
                "login.html",
                None,
                status=429,
                next=target,
                error="Too many login attempts; try again in a minute.",
            )
        by_address.add(address)
        try:
            _user, token = web_auth(request).login(username, password)
        except LoginRefused:
            by_user.add(username)
            return _render(
                request,
                "login.html",
                None,
                status=401,
                next=target,
                error="Wrong user name or password.",
            )
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        set_session(request, response, token)
        return response

    @router.post("/logout", dependencies=[PUBLIC])
    def logout(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
        # Logging out needs no valid session (an expired one still clears its cookie), but
        # it does need the form's token, so another site cannot log a user out.
        rule = SessionRule()
        try:
            web = rule(request)
            _csrf(request, web, csrf)
        except Exception:  # any failure: the session is cleared all the same
            log.debug("logout without a valid session")
        response = RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
        clear_session(response)
        return response

    # -- overview ---------------------------------------------------------------------------

    @router.get("/")
    @_guard
    def overview(request: Request, web: Reader, partial: bool = False) -> Response:
        who = web.principal
        t = now()
        day_ago = t - timedelta(hours=24)
        sample = service.runs.search(who, RunQuery(limit=1000, since=day_ago))
        states = Counter(r.state_at(t) for r in sample)
        running = service.runs.search(who, RunQuery(limit=500, states=[RunState.RUNNING]))
        finished = states[RunState.SUCCEEDED] + states[RunState.DEAD]
        rate = None if finished == 0 else states[RunState.SUCCEEDED] / finished
        lags = sorted(x for x in (words.lag(r) for r in sample) if x is not None)
        failed = sum(1 for r in sample if r.failures > 0)
        tiles = {
            "running": _capped(len(running), 500),
            "failed": _capped(failed, 1000, sample),
            "dead": _capped(states[RunState.DEAD], 1000, sample),
            "missed": _capped(states[RunState.MISSED], 1000, sample),
            "rate": "—" if rate is None else f"{rate * 100:.1f}%",
            "lag_p50": words.seconds(lags[len(lags) // 2]) if lags else "—",
            "lag_p95": words.seconds(lags[int(len(lags) * 0.95)]) if lags else "—",
            "sampled": len(sample),
        }
        due = service.jobs.due_soon(who, within=timedelta(hours=24), limit=10)
        missing = service.notifications.missing(who, limit=100)
        tiles["missing"] = _capped(len(missing), 100)
        since = day_ago.strftime("%Y-%m-%dT%H:%M")
        ctx: dict[str, Any] = {"tiles": tiles, "due": due, "now": t, "since": since}
        if partial:
            return _render(request, "_overview.html", web, **ctx)
        return _render(request, "overview.html", web, title="Overview", **ctx)

    # -- jobs -------------------------------------------------------------------------------

    @router.get("/jobs")
    @_guard
    def jobs(
        request: Request,
        web: Reader,
        q: Annotated[str, Query(max_length=200)] = "",
        paused: Annotated[str, Query(max_length=5)] = "",
        kind: Annotated[str, Query(max_length=10)] = "",
        outcome: Annotated[str, Query(max_length=12)] = "",
        queue: Annotated[str, Query(max_length=100)] = "",
        after: Annotated[str | None, Query(max_length=400)] = None,
        partial: bool = False,
    ) -> Response:
        who = web.principal
        cursor = _uncursor(after, 2)
        if kind and kind not in ACTION_KINDS:
            raise InvalidInput(f"unknown action kind {kind!r}", field="kind")
        query = JobQuery(
            limit=PAGE + 1,
            after=(cursor[0], cursor[1]) if cursor else None,
            name_contains=q or None,
            paused={"yes": True, "no": False}.get(paused),
            queue=queue or None,
            action_kind=kind or None,
            last_outcome=_state(outcome),
        )
        found = service.jobs.search(who, query)
        page, more = found[:PAGE], len(found) > PAGE
        t = now()
        rows = []
        for job in page:
            recent = service.runs.search(who, RunQuery(limit=12, job_id=job.id))
            ended = [r for r in recent if r.state_at(t) in TERMINAL_STATES]
            rows.append(
                {
                    "job": job,
                    "words": job_schedule_words(job),
                    "written": job_schedule_written(job),
                    "zone": job.schedule.timezone
                    if isinstance(job.schedule, CronSchedule)
                    else "UTC",
                    "last": ended[0] if ended else None,
                    "spark": charts.sparkline(
                        [words.outcome_value(r.state_at(t)) for r in reversed(recent)]
                    ),
                }
            )
        filters = {"q": q, "paused": paused, "kind": kind, "outcome": outcome, "queue": queue}
        base = {k: v for k, v in filters.items() if v}
        next_url = (
            "/jobs?" + urlencode({**base, "after": _cursor(page[-1].name, page[-1].id)})
            if more
            else None
        )
        count = service.jobs.count(who, query, cap=COUNT_CAP)
        total = f"{count:,}+" if count >= COUNT_CAP else f"{count:,}"
        ctx: dict[str, Any] = {
            "rows": rows,
            "filters": filters,
            "next_url": next_url,
            "now": t,
            "total": total,
            "first_url": "/jobs?" + urlencode(base),
            "paged": cursor is not None,
            "states": [s.value for s in RunState],
            "action_kinds": ACTION_KINDS,
            "live_url": str(request.url.include_query_params(partial="1")),
        }
        if partial:
            return _render(request, "_jobs_rows.html", web, **ctx)
        return _render(request, "jobs.html", web, title="Jobs", **ctx)

    @router.post("/jobs/bulk")
    @_guard
    def jobs_bulk(
        request: Request,
        web: Writer,
        action: Annotated[str, Form(max_length=10)],
        ids: Annotated[list[str] | None, Form()] = None,
        reason: Annotated[str, Form(max_length=1000)] = "",
        csrf: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:
        _csrf(request, web, csrf)
        if action not in ("pause", "resume"):
            raise InvalidInput("action must be pause or resume", field="action")
        chosen = [i for i in (ids or []) if looks_like_id(i)][:1000]
        if not chosen:
            return _redirect(request, "/jobs", flash="Select at least one job first.")
        changed = 0
        for job_id in chosen:
            job = service.jobs.get(web.principal, job_id)
            if job.paused != (action == "pause"):
                service.jobs.set_paused(
                    web.principal, job_id, paused=action == "pause", reason=reason or None
                )
                changed += 1
        verb = "Paused" if action == "pause" else "Resumed"
        return _redirect(request, "/jobs", flash=f"{verb} {changed} of {len(chosen)} jobs.")

    @router.get("/jobs/new")
    @_guard
    def job_new(request: Request, web: Writer) -> Response:
        return _render(
            request,
            "job_form.html",
            web,
            title="New job",
            values=job_form_defaults(),
            errors={},
            job=None,
            zones=_zones(),
        )

    @router.post("/jobs/new")
    @_guard
    def job_create(request: Request, web: Writer, form: FormData) -> Response:
        _csrf(request, web, form.get("csrf"))
        try:
            spec = parse_job_form(form, create=True)
            job = service.jobs.create(web.principal, spec)
        except FormError as exc:
            return _render(
                request,
                "job_form.html",
                web,
                status=422,
                title="New job",
                values=form,
                errors=exc.errors,
                job=None,
                zones=_zones(),
            )
        except (InvalidInput, Conflict) as exc:
            field = getattr(exc, "field", None) or "name"
            return _render(
                request,
                "job_form.html",
                web,
                status=422,
                title="New job",
                values=form,
                errors={_form_field(field): str(exc)},
                job=None,
                zones=_zones(),
            )
        return _redirect(request, f"/jobs/{job.id}", flash="Job created.")

    @router.get("/jobs/{job_id}")
    @_guard
    def job_detail(
        request: Request,
        web: Reader,
        job_id: str,
        partial: bool = False,
    ) -> Response:
        who = web.principal
        job = service.jobs.get(who, job_id)
        t = now()
        runs = service.runs.search(who, RunQuery(limit=50, job_id=job.id))
        if partial:
            return _render(request, "_runs_rows.html", web, runs=runs, now=t, show_job=False)
        points = [(r.scheduled_for, words.duration(r), words.lag(r)) for r in reversed(runs)]
        fires = preview(job.schedule, t, 10)
        ctx: dict[str, Any] = {
            "job": job,
            "words": job_schedule_words(job),
            "written": job_schedule_written(job),
            "fires": fires,
            "policies": words.policy_words(job.policy),
            "action": words.action_words(job.action),
            "payload": words.pretty_json(job.payload),
            "chart": charts.duration_chart(points),
            "runs": runs,
            "now": t,
            "versions": service.jobs.versions(who, job.id, limit=10),
            "audit": service.jobs.audit(who, job.id, limit=20),
        }
        return _render(request, "job.html", web, title=job.name, **ctx)

    @router.get("/jobs/{job_id}/edit")
    @_guard
    def job_edit(request: Request, web: Writer, job_id: str) -> Response:
        job = service.jobs.get(web.principal, job_id)
        return _render(
            request,
            "job_form.html",
            web,
            title=f"Edit {job.name}",
            values=job_form_defaults(job),
            errors={},
            job=job,
            zones=_zones(),
        )

    @router.post("/jobs/{job_id}/edit")
    @_guard
    def job_update(request: Request, web: Writer, job_id: str, form: FormData) -> Response:
        job = service.jobs.get(web.principal, job_id)
        _csrf(request, web, form.get("csrf"))
        try:
            patch = parse_job_form(form, create=False)
            service.jobs.update(web.principal, job.id, patch)
        except FormError as exc:
            return _render(
                request,
                "job_form.html",
                web,
                status=422,
                title=f"Edit {job.name}",
                values=form,
                errors=exc.errors,
                job=job,
                zones=_zones(),
            )
        except (InvalidInput, Conflict) as exc:
            field = getattr(exc, "field", None) or "name"
            return _render(
                request,
                "job_form.html",
                web,
                status=422,
                title=f"Edit {job.name}",
                values=form,
                errors={_form_field(field): str(exc)},
                job=job,
                zones=_zones(),
            )
        return _redirect(request, f"/jobs/{job.id}", flash="Job saved.")

    @router.post("/jobs/{job_id}/pause")
    @_guard
    def job_pause(
        request: Request,
        web: Writer,
        job_id: str,
        paused: Annotated[str, Form(max_length=5)] = "yes",
        reason: Annotated[str, Form(max_length=1000)] = "",
        csrf: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:
        _csrf(request, web, csrf)
        on = paused == "yes"
        job = service.jobs.set_paused(web.principal, job_id, paused=on, reason=reason or None)
        return _redirect(request, f"/jobs/{job.id}", flash="Paused." if on else "Resumed.")

    @router.post("/jobs/{job_id}/trigger")
    @_guard
    def job_trigger(
        request: Request,
        web: Writer,
        job_id: str,
        payload: Annotated[str, Form(max_length=70_000)] = "",
        confirm: Annotated[str, Form(max_length=5)] = "",
        csrf: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:
        _csrf(request, web, csrf)
        job = service.jobs.get(web.principal, job_id)
        if confirm != "yes":
            return _redirect(request, f"/jobs/{job.id}", flash="Tick the confirmation to run it.")
        if payload.strip():
            try:
                value = json.loads(payload)
            except ValueError as exc:
                return _redirect(
                    request, f"/jobs/{job.id}", flash=f"The payload is not valid JSON: {exc}"
                )
            run = service.jobs.trigger(web.principal, job.id, payload=value)
        else:
            run = service.jobs.trigger(web.principal, job.id)
        return _redirect(request, f"/runs/{run.id}", flash="Triggered.")

    @router.get("/preview")
    @_guard
    def schedule_preview(request: Request, web: Reader) -> Response:
        """The next fires of the schedule being typed into the job form (a fragment)."""
        params = dict(request.query_params)
        t = now()
        try:
            schedule = make_schedule(now=t, **schedule_form(params))
        except FormError as exc:
            return _render(request, "_preview.html", web, errors=exc.errors, fires=[])
        except InvalidInput as exc:
            field = _form_field(exc.field or "cron")
            return _render(request, "_preview.html", web, errors={field: str(exc)}, fires=[])
        return _render(
            request,
            "_preview.html",
            web,
            errors={},
            fires=preview(schedule, t, 10),
            words=schedule_in_words(schedule),
        )

    # -- runs -------------------------------------------------------------------------------

    @router.get("/runs")
    @_guard
    def runs(
        request: Request,
        web: Reader,
        state: Annotated[str, Query(max_length=12)] = "",
        job: Annotated[str, Query(max_length=300)] = "",
        worker: Annotated[str, Query(max_length=200)] = "",
        since: Annotated[str, Query(max_length=40)] = "",
        until: Annotated[str, Query(max_length=40)] = "",
        before: Annotated[str | None, Query(max_length=400)] = None,
        partial: bool = False,
    ) -> Response:
        who = web.principal
        cursor = _uncursor(before, 2)
        job_id = None
        if job:
            job_id = (
                service.jobs.get(who, job) if looks_like_id(job) else service.jobs.by_name(who, job)
            ).id
        st = _state(state)
        query = RunQuery(
            limit=PAGE + 1,
            before=(datetime.fromisoformat(cursor[0]), cursor[1]) if cursor else None,
            job_id=job_id,
            # The page shows visible states: "queued" is a due pending or retrying run.
            states=None
            if st is None
            else (
                [RunState.PENDING, RunState.QUEUED, RunState.RETRYING]
                if st is RunState.QUEUED
                else [st]
            ),
            since=_aware(since, "since"),
            until=_aware(until, "until"),
            # In the query, not over the page: a page of another worker's runs would show
            # empty with a "next" link. A prefix: a whole worker id, or "worker:host".
            worker=worker.strip() or None,
        )
        found = service.runs.search(who, query)
        page, more = found[:PAGE], len(found) > PAGE
        t = now()
        shown = [r for r in page if st is None or r.state_at(t) is st]
        filters = {"state": state, "job": job, "worker": worker, "since": since, "until": until}
        base = {k: v for k, v in filters.items() if v}
        next_url = (
            "/runs?"
            + urlencode(
                {**base, "before": _cursor(page[-1].scheduled_for.isoformat(), page[-1].id)}
            )
            if more
            else None
        )
        ctx: dict[str, Any] = {
            "runs": shown,
            "filters": filters,
            "next_url": next_url,
            "now": t,
            "states": [s.value for s in RunState],
            "show_job": True,
            "first_url": "/runs?" + urlencode(base),
            "paged": cursor is not None,
            "live_url": str(request.url.include_query_params(partial="1")),
        }
        if partial:
            return _render(request, "_runs_rows.html", web, **ctx)
        return _render(request, "runs.html", web, title="Runs", **ctx)

    @router.get("/runs/{run_id}")
    @_guard
    def run_detail(
        request: Request,
        web: Reader,
        run_id: str,
        partial: bool = False,
    ) -> Response:
        who = web.principal
        run = service.runs.get(who, run_id)
        attempts = service.runs.attempts(who, run.id)
        t = now()
        state = run.state_at(t)
        ctx: dict[str, Any] = {
            "run": run,
            "attempts": attempts,
            "now": t,
            "state": state,
            "live": state not in TERMINAL_STATES,
        }
        if partial:
            return _render(request, "_run_body.html", web, **ctx)
        return _render(request, "run.html", web, title=f"Run of {run.job_name}", **ctx)

    @router.post("/runs/{run_id}/requeue")
    @_guard
    def run_requeue(
        request: Request,
        web: Writer,
        run_id: str,
        back: Annotated[str, Form(max_length=2048)] = "",
        csrf: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:
        _csrf(request, web, csrf)
        run = service.runs.requeue(web.principal, run_id)
        return _redirect(request, _safe_next(back or f"/runs/{run.id}"), flash="Requeued.")

    @router.post("/runs/{run_id}/cancel")
    @_guard
    def run_cancel(
        request: Request,
        web: Writer,
        run_id: str,
        csrf: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:
        _csrf(request, web, csrf)
        run = service.runs.cancel(web.principal, run_id)
        return _redirect(request, f"/runs/{run.id}", flash="Cancelled.")

    @router.get("/failures")
    @_guard
    def failures(
        request: Request,
        web: Reader,
    ) -> Response:
        dead = service.runs.search(web.principal, RunQuery(limit=300, states=[RunState.DEAD]))
        groups: dict[str, list[Run]] = defaultdict(list)
        for run in dead:
            groups[_error_key(run.error)].append(run)
        ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        return _render(
            request,
            "failures.html",
            web,
            title="Failures",
            groups=ordered,
            now=now(),
            total=len(dead),
        )

    @router.post("/failures/requeue")
    @_guard
    def failures_requeue(
        request: Request,
        web: Writer,
        ids: Annotated[list[str] | None, Form()] = None,
        csrf: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:
        _csrf(request, web, csrf)
        done = 0
        for run_id in (ids or [])[:1000]:
            try:
                service.runs.requeue(web.principal, run_id)
            except Conflict:
                continue  # requeued meanwhile
            done += 1
        return _redirect(request, "/failures", flash=f"Requeued {done} runs.")

    # -- calendar ---------------------------------------------------------------------------

    @router.get("/calendar")
    @_guard
    def calendar(
        request: Request,
        web: Reader,
        job: Annotated[str, Query(max_length=300)] = "",
        month: Annotated[str, Query(max_length=7)] = "",
    ) -> Response:
        who = web.principal
        t = now()
        try:
            first = date.fromisoformat(month + "-01") if month else t.date().replace(day=1)
        except ValueError:
            raise InvalidInput("month must look like 2027-03", field="month") from None
        nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        start = datetime(first.year, first.month, 1, tzinfo=UTC)
        end = datetime(nxt.year, nxt.month, 1, tzinfo=UTC)
        chosen = None
        expected: Counter[date] = Counter()
        actual: Counter[date] = Counter()
        capped = too_many = False
        if job:
            chosen = (
                service.jobs.get(who, job) if looks_like_id(job) else service.jobs.by_name(who, job)
            )
            jobs_shown = [chosen]
        else:
            # Every job of the caller, while there are few enough to walk their schedules.
            jobs_shown = service.jobs.search(who, JobQuery(limit=CALENDAR_JOBS + 1))
            too_many = len(jobs_shown) > CALENDAR_JOBS
            jobs_shown = [] if too_many else jobs_shown
        budget = CALENDAR_FIRES
        for each in jobs_shown:
            at = start - timedelta(microseconds=1)
            while budget > 0:
                fire = next_fire(each.schedule, at)
                if fire is None or fire >= end:
                    break
                expected[fire.date()] += 1
                at = fire
                budget -= 1
            else:
                capped = True
        if jobs_shown:
            query = RunQuery(
                limit=1000, job_id=chosen.id if chosen else None, since=start, until=end
            )
            for _ in range(20):
                page = service.runs.search(who, query)
                for run in page:
                    if not run.manual and run.state not in (RunState.MISSED, RunState.CANCELLED):
                        actual[run.scheduled_for.date()] += run.fires
                if len(page) < 1000:
                    break
                query = replace(query, before=(page[-1].scheduled_for, page[-1].id))
            else:
                capped = True
        weeks: list[list[tuple[int, int, int, str] | None]] = []
        week: list[tuple[int, int, int, str] | None] = [None] * first.weekday()
        day = first
        while day < nxt:
            e, a = expected[day], actual[day]
            week.append((day.day, e, a, f"{day.isoformat()}: {a} of {e} expected fires ran"))
            if len(week) == 7:
                weeks.append(week)
                week = []
            day += timedelta(days=1)
        if week:
            weeks.append(week + [None] * (7 - len(week)))
        prev = (first - timedelta(days=1)).strftime("%Y-%m")
        return _render(
            request,
            "calendar.html",
            web,
            title="Calendar",
            job=chosen,
            job_ref=job,
            month=first,
            heat=charts.month_heatmap(weeks),
            too_many=too_many,
            all_jobs=not job,
            limit=CALENDAR_JOBS,
            prev=prev,
            next=nxt.strftime("%Y-%m"),
            capped=capped,
            total_expected=sum(expected.values()),
            total_actual=sum(actual.values()),
        )

    # -- cluster ----------------------------------------------------------------------------

    @router.get("/cluster")
    @_guard
    def cluster(request: Request, web: Admin, partial: bool = False) -> Response:
        status = service.cluster.status(web.principal)
        holders = Counter(lease.holder for lease in status.shards if lease.expires_at > status.now)
        ctx: dict[str, Any] = {"cluster": status, "now": status.now, "holders": holders}
        if partial:
            return _render(request, "_cluster.html", web, **ctx)
        return _render(request, "cluster.html", web, title="Cluster", **ctx)

    # -- admin ------------------------------------------------------------------------------

    @router.get("/admin")
    @_guard
    def admin(
        request: Request,
        web: Admin,
        before: Annotated[str | None, Query(max_length=400)] = None,
    ) -> Response:
        """Users, API keys and the audit log (admins only; read-only here: accounts are
        changed with ``oncely users`` / ``oncely apikeys`` or the REST API)."""
        store = web_auth(request).store
        users = store.user_list(limit=500)
        names = {u.id: u.name for u in users}
        keys = store.apikey_list(None, limit=500)
        cursor = _uncursor(before, 2)
        entries = store.audit_list(
            None,
            limit=PAGE + 1,
            before=(datetime.fromisoformat(cursor[0]), int(cursor[1])) if cursor else None,
        )
        page, more = entries[:PAGE], len(entries) > PAGE
        next_url = (
            "/admin?" + urlencode({"before": _cursor(page[-1].at.isoformat(), str(page[-1].id))})
            if more
            else None
        )
        return _render(
            request,
            "admin.html",
            web,
            title="Admin",
            users=users,
            keys=keys,
            names=names,
            entries=page,
            next_url=next_url,
            now=now(),
        )

    return router


def _capped(n: int, cap: int, sample: list[Run] | None = None) -> str:
    return f"{n:,}+" if (sample is not None and len(sample) >= cap and n) or n >= cap else f"{n:,}"


def _error_key(error: str | None) -> str:
    if not error:
        return "(no error message)"
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        return "(no error message)"
    # A Python traceback is named by its last line (the exception), not its header.
    return (lines[-1] if lines[0].startswith("Traceback") else lines[0])[:200]


def _safe_next(target: str) -> str:
    """Only a path on this site (never ``//evil`` or a scheme)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _form_field(field: str) -> str:
    head = field.split(".")[0]
    return {"http": "http", "shell": "action", "sql": "action", "action": "action"}.get(head, head)


@functools.cache
def _zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def job_schedule_words(job: Job) -> str:
    return schedule_in_words(job.schedule)


def job_schedule_written(job: Job) -> str:
    s = job.schedule
    if isinstance(s, CronSchedule):
        return s.expr
    if isinstance(s, EverySchedule):
        return f"every {words.seconds(s.interval.total_seconds())}"
    assert isinstance(s, AtSchedule)
    return f"at {words.exact(s.at)}"


__all__ = ["CSP", "Principal", "web_router"]
