"""A typed client of the REST API: ``oncely.Client`` (sync) and ``oncely.AsyncClient``.

Bodies and answers are the wire models of ``oncely.wire``, the same the server validates
with, so a field means the same thing on both ends. Errors come back as the domain's
exceptions (``InvalidInput`` with its ``field``, ``NotFound``, ``Conflict``,
``PermissionDenied``); anything else is an ``ApiError`` with the status.

    client = oncely.Client("http://127.0.0.1:8080", token="oncely_...")
    job = client.create_job({"name": "report", "cron": "0 9 * * *", "task": "send-report"})
    run = client.trigger_job(job.id)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from oncely.domain.errors import Conflict, InvalidInput, NotFound, OncelyError, PermissionDenied
from oncely.wire import (
    BulkFilter,
    BulkPause,
    BulkRequeue,
    BulkResult,
    JobCreate,
    JobOut,
    JobPage,
    JobPatch,
    OneTimeJobCreate,
    PreviewOut,
    PreviewRequest,
    RunDetail,
    RunFilter,
    RunOut,
    RunPage,
)

M = TypeVar("M", bound=BaseModel)
_KEEP: Any = object()


class ApiError(OncelyError):
    """The server answered with an error the domain has no name for (401, 429, 5xx...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    message, field = response.reason_phrase, None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = str(error.get("message", message))
            field = error.get("field")
        elif "detail" in body:
            detail = body["detail"]
            if isinstance(detail, dict):
                message = str(detail.get("message", detail))
                field = detail.get("field")
            else:
                message = str(detail)
    status = response.status_code
    if status == 422:
        raise InvalidInput(message, field=field)
    if status == 404:
        raise NotFound(message)
    if status == 409:
        raise Conflict(message)
    if status == 403:
        raise PermissionDenied(message)
    raise ApiError(status, message)


def _body(value: BaseModel | Mapping[str, Any] | None) -> Any:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return dict(value)


def _params(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class _Requests:
    """The requests both clients make: (method, path, params, body, answer model)."""

    @staticmethod
    def create_job(
        spec: JobCreate | OneTimeJobCreate | Mapping[str, Any], replace: bool
    ) -> tuple[str, str, dict[str, Any], Any]:
        return "POST", "/v1/jobs", _params(replace=replace or None), _body(spec)


class Client:
    """Synchronous client. ``token`` is an access token or an API key."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=_headers(token), timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        model: type[M] | None,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        response = self._http.request(method, path, params=params, json=body)
        _raise_for(response)
        return None if model is None else model.model_validate(response.json())

    def login(self, username: str, password: str) -> str:
        """Exchange a user name and password for an access token; use it from now on."""
        response = self._http.post(
            "/v1/auth/token", json={"username": username, "password": password}
        )
        _raise_for(response)
        token = str(response.json()["access_token"])
        self._http.headers.update(_headers(token))
        return token

    # -- jobs -----------------------------------------------------------------------------

    def create_job(
        self, spec: JobCreate | OneTimeJobCreate | Mapping[str, Any], *, replace: bool = False
    ) -> JobOut:
        method, path, params, body = _Requests.create_job(spec, replace)
        result: JobOut = self._call(method, path, JobOut, params=params, body=body)
        return result

    def list_jobs(
        self,
        *,
        name_contains: str | None = None,
        paused: bool | None = None,
        queue: str | None = None,
        action_kind: str | None = None,
        last_outcome: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        params = _params(
            name_contains=name_contains,
            paused=paused,
            queue=queue,
            action_kind=action_kind,
            last_outcome=last_outcome,
            owner=owner,
            limit=limit,
            cursor=cursor,
        )
        page: JobPage = self._call("GET", "/v1/jobs", JobPage, params=params)
        return page

    def iter_jobs(self, **filters: Any) -> Iterator[JobOut]:
        """Every job the filters match, page after page."""
        cursor = None
        while True:
            page = self.list_jobs(cursor=cursor, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_job(self, job_id: str) -> JobOut:
        job: JobOut = self._call("GET", f"/v1/jobs/{job_id}", JobOut)
        return job

    def find_job(self, name: str) -> JobOut:
        """The caller's job of exactly this name."""
        for job in self.iter_jobs(name_contains=name, limit=200):
            if job.name == name:
                return job
        raise NotFound(f"no job named {name!r} on {self.url}")

    def update_job(self, job_id: str, patch: JobPatch | Mapping[str, Any]) -> JobOut:
        job: JobOut = self._call("PATCH", f"/v1/jobs/{job_id}", JobOut, body=_body(patch))
        return job

    def delete_job(self, job_id: str) -> None:
        self._call("DELETE", f"/v1/jobs/{job_id}", None)

    def pause_job(self, job_id: str, *, reason: str | None = None) -> JobOut:
        job: JobOut = self._call(
            "POST", f"/v1/jobs/{job_id}/pause", JobOut, body={"reason": reason}
        )
        return job

    def resume_job(self, job_id: str, *, reason: str | None = None) -> JobOut:
        job: JobOut = self._call(
            "POST", f"/v1/jobs/{job_id}/resume", JobOut, body={"reason": reason}
        )
        return job

    def pause_jobs(self, filter: BulkFilter | None = None, *, reason: str | None = None) -> int:
        body = BulkPause(filter=filter or BulkFilter(), reason=reason)
        result: BulkResult = self._call(
            "POST", "/v1/jobs/bulk/pause", BulkResult, body=body.model_dump(mode="json")
        )
        return result.count

    def resume_jobs(self, filter: BulkFilter | None = None, *, reason: str | None = None) -> int:
        body = BulkPause(filter=filter or BulkFilter(), reason=reason)
        result: BulkResult = self._call(
            "POST", "/v1/jobs/bulk/resume", BulkResult, body=body.model_dump(mode="json")
        )
        return result.count

    def trigger_job(self, job_id: str, *, payload: Any = _KEEP) -> RunOut:
        """Run the job now; ``payload`` (when given) replaces the job's for this run."""
        body = None if payload is _KEEP else {"payload": payload}
        run: RunOut = self._call("POST", f"/v1/jobs/{job_id}/trigger", RunOut, body=body)
        return run

    # -- runs -----------------------------------------------------------------------------

    def list_runs(
        self,
        *,
        job_id: str | None = None,
        states: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        owner: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        params = _params(
            job_id=job_id, since=since, until=until, owner=owner, limit=limit, cursor=cursor
        )
        if states:
            params["state"] = list(states)
        page: RunPage = self._call("GET", "/v1/runs", RunPage, params=params)
        return page

    def get_run(self, run_id: str) -> RunDetail:
        run: RunDetail = self._call("GET", f"/v1/runs/{run_id}", RunDetail)
        return run

    def cancel_run(self, run_id: str) -> RunOut:
        run: RunOut = self._call("POST", f"/v1/runs/{run_id}/cancel", RunOut)
        return run

    def requeue_run(self, run_id: str) -> RunOut:
        run: RunOut = self._call("POST", f"/v1/runs/{run_id}/requeue", RunOut)
        return run

    def requeue_runs(self, filter: RunFilter | None = None, *, reason: str | None = None) -> int:
        body = BulkRequeue(filter=filter or RunFilter(), reason=reason)
        result: BulkResult = self._call(
            "POST",
            "/v1/runs/bulk/requeue",
            BulkResult,
            body=body.model_dump(mode="json", exclude_none=True),
        )
        return result.count

    def preview(
        self, cron: str, *, timezone: str = "UTC", count: int = 10, **kw: Any
    ) -> PreviewOut:
        body = PreviewRequest(cron=cron, timezone=timezone, count=count, **kw)
        out: PreviewOut = self._call(
            "POST", "/v1/preview", PreviewOut, body=body.model_dump(mode="json", exclude_none=True)
        )
        return out


class AsyncClient:
    """Asynchronous client: the same calls as ``Client``, awaited."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=_headers(token), timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        model: type[M] | None,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        response = await self._http.request(method, path, params=params, json=body)
        _raise_for(response)
        return None if model is None else model.model_validate(response.json())

    async def login(self, username: str, password: str) -> str:
        response = await self._http.post(
            "/v1/auth/token", json={"username": username, "password": password}
        )
        _raise_for(response)
        token = str(response.json()["access_token"])
        self._http.headers.update(_headers(token))
        return token

    async def create_job(
        self, spec: JobCreate | OneTimeJobCreate | Mapping[str, Any], *, replace: bool = False
    ) -> JobOut:
        method, path, params, body = _Requests.create_job(spec, replace)
        result: JobOut = await self._call(method, path, JobOut, params=params, body=body)
        return result

    async def list_jobs(
        self, *, limit: int = 50, cursor: str | None = None, **filters: Any
    ) -> JobPage:
        page: JobPage = await self._call(
            "GET", "/v1/jobs", JobPage, params=_params(limit=limit, cursor=cursor, **filters)
        )
        return page

    async def get_job(self, job_id: str) -> JobOut:
        job: JobOut = await self._call("GET", f"/v1/jobs/{job_id}", JobOut)
        return job

    async def update_job(self, job_id: str, patch: JobPatch | Mapping[str, Any]) -> JobOut:
        job: JobOut = await self._call("PATCH", f"/v1/jobs/{job_id}", JobOut, body=_body(patch))
        return job

    async def delete_job(self, job_id: str) -> None:
        await self._call("DELETE", f"/v1/jobs/{job_id}", None)

    async def pause_job(self, job_id: str, *, reason: str | None = None) -> JobOut:
        job: JobOut = await self._call(
            "POST", f"/v1/jobs/{job_id}/pause", JobOut, body={"reason": reason}
        )
        return job

    async def resume_job(self, job_id: str, *, reason: str | None = None) -> JobOut:
        job: JobOut = await self._call(
            "POST", f"/v1/jobs/{job_id}/resume", JobOut, body={"reason": reason}
        )
        return job

    async def trigger_job(self, job_id: str, *, payload: Any = _KEEP) -> RunOut:
        body = None if payload is _KEEP else {"payload": payload}
        run: RunOut = await self._call("POST", f"/v1/jobs/{job_id}/trigger", RunOut, body=body)
        return run

    async def list_runs(
        self, *, limit: int = 50, cursor: str | None = None, **filters: Any
    ) -> RunPage:
        page: RunPage = await self._call(
            "GET", "/v1/runs", RunPage, params=_params(limit=limit, cursor=cursor, **filters)
        )
        return page

    async def get_run(self, run_id: str) -> RunDetail:
        run: RunDetail = await self._call("GET", f"/v1/runs/{run_id}", RunDetail)
        return run

    async def cancel_run(self, run_id: str) -> RunOut:
        run: RunOut = await self._call("POST", f"/v1/runs/{run_id}/cancel", RunOut)
        return run

    async def requeue_run(self, run_id: str) -> RunOut:
        run: RunOut = await self._call("POST", f"/v1/runs/{run_id}/requeue", RunOut)
        return run
