"""REST: ``POST /v1/import/crontab``, a thin caller of ``oncely.service.imports`` (admins
only: every line becomes a shell job). ``dry_run`` answers what would be created, updated and
left alone, with each job's next fires; a crontab with lines that cannot be imported is a 422
listing them (field ``crontab``), and nothing is imported, unless ``skip_invalid``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from oncely.api.auth import AdminPrincipal
from oncely.api.v1 import ERRORS
from oncely.domain.crontab import MAX_CRONTAB_BYTES
from oncely.domain.describe import schedule_in_words
from oncely.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from oncely.domain.schedule import schedule_to_dict
from oncely.service import Service
from oncely.service.imports import ImportReport


class CrontabImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    crontab: Annotated[str, Field(max_length=MAX_CRONTAB_BYTES)]
    """The crontab's text."""
    system: bool = False
    """Lines carry a user column (/etc/crontab, /etc/cron.d)."""
    timezone: Annotated[str, Field(max_length=64)] = "UTC"
    """The zone of lines before any CRON_TZ/TZ line."""
    dry_run: bool = False
    skip_invalid: bool = False


class ImportedJobOut(BaseModel):
    line: int
    name: str
    status: Literal["create", "update", "unchanged"]
    schedule: dict[str, Any]
    words: str
    next_fires: list[datetime]
    argv: list[str]
    stdin: str | None
    env: dict[str, str]
    warnings: list[str]


class ProblemOut(BaseModel):
    line: int
    text: str
    reason: str


class CrontabImportOut(BaseModel):
    applied: bool
    """False for a dry run: nothing was changed."""
    created: int
    updated: int
    unchanged: int
    jobs: list[ImportedJobOut]
    problems: list[ProblemOut]
    """Lines not imported (only with skip_invalid or dry_run: otherwise the answer is 422)."""
    warnings: list[str]


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        raise HTTPException(422, {"message": str(exc), "field": exc.field}) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except PermissionDenied as exc:
        raise HTTPException(403, str(exc)) from None


def imports_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/v1/import", tags=["import"], responses=ERRORS)

    @router.post("/crontab", operation_id="import_crontab", response_model=CrontabImportOut)
    async def import_crontab(body: CrontabImport, principal: AdminPrincipal) -> CrontabImportOut:
        """Make each crontab line a shell job of the caller's owner (see the module's notes)."""
        with _errors():
            report = await run_in_threadpool(
                lambda: service.imports.crontab(
                    principal,
                    body.crontab,
                    system=body.system,
                    timezone=body.timezone,
                    dry_run=body.dry_run,
                    skip_invalid=body.skip_invalid,
                )
            )
        return report_out(report)

    return router


def report_out(report: ImportReport) -> CrontabImportOut:
    return CrontabImportOut(
        applied=report.applied,
        created=report.count("create"),
        updated=report.count("update"),
        unchanged=report.count("unchanged"),
        jobs=[
            ImportedJobOut(
                line=j.line,
                name=j.name,
                status=j.status,
                schedule=schedule_to_dict(j.schedule),
                words=schedule_in_words(j.schedule),
                next_fires=list(j.next_fires),
                argv=list(j.action.argv),
                stdin=j.action.stdin,
                env=dict(j.action.env),
                warnings=list(j.warnings),
            )
            for j in report.jobs
        ],
        problems=[ProblemOut(line=p.line, text=p.text, reason=p.reason) for p in report.problems],
        warnings=list(report.warnings),
    )
