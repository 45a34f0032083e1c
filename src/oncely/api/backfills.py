"""REST: backfills, thin callers of ``oncely.service.backfills``.

``POST /v1/jobs/{job_id}/backfills`` with ``{"start", "end", "rate", "dry_run"}``: a dry run
answers the fires (count, first, last, a sample) and makes nothing; otherwise the backfill.
``GET /v1/jobs/{job_id}/backfills`` lists them; ``POST /v1/backfills/{id}/cancel`` cancels the
runs not yet started. A viewer may list, not make or cancel; another owner's job or backfill
is a 404."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from oncely.api.auth import Reader, Writer
from oncely.api.v1 import ERRORS
from oncely.domain.backfill import DEFAULT_RATE, Backfill
from oncely.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from oncely.service import Service


class BackfillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: datetime
    end: datetime
    """Inclusive; the period must be over."""
    rate: float = DEFAULT_RATE
    """Runs per second: they become due this far apart, oldest first."""
    dry_run: bool = False


class BackfillOut(BaseModel):
    id: str
    job_id: str
    start: datetime
    end: datetime
    rate: float
    fires: int
    created: int
    state: str
    created_at: datetime
    created_by: str | None
    cancelled_at: datetime | None
    cancelled: int


class BackfillAnswer(BaseModel):
    count: int
    first: datetime
    last: datetime
    sample: list[datetime]
    backfill: BackfillOut | None
    """None for a dry run."""


def backfill_out(b: Backfill) -> BackfillOut:
    return BackfillOut(
        id=b.id,
        job_id=b.job_id,
        start=b.start,
        end=b.end,
        rate=b.rate,
        fires=b.fires,
        created=b.created,
        state=b.state,
        created_at=b.created_at,
        created_by=b.created_by,
        cancelled_at=b.cancelled_at,
        cancelled=b.cancelled,
    )


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


def backfills_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["backfills"], responses=ERRORS)
    backfills = service.backfills

    @router.post(
        "/jobs/{job_id}/backfills", operation_id="create_backfill", response_model=BackfillAnswer
    )
    async def create_backfill(
        job_id: str, body: BackfillCreate, principal: Writer
    ) -> BackfillAnswer:
        """Backfill a past period of the job (see the module's notes)."""

        def work() -> BackfillAnswer:
            plan = backfills.preview(principal, job_id, body.start, body.end, rate=body.rate)
            made = (
                None
                if body.dry_run
                else backfills.create(principal, job_id, body.start, body.end, rate=body.rate)
            )
            return BackfillAnswer(
                count=plan.count,
                first=plan.fires[0],
                last=plan.fires[-1],
                sample=list(plan.sample),
                backfill=None if made is None else backfill_out(made),
            )

        with _errors():
            return await run_in_threadpool(work)

    @router.get(
        "/jobs/{job_id}/backfills", operation_id="list_backfills", response_model=list[BackfillOut]
    )
    async def list_backfills(job_id: str, principal: Reader) -> list[BackfillOut]:
        with _errors():
            found = await run_in_threadpool(backfills.list, principal, job_id)
        return [backfill_out(b) for b in found]

    @router.post(
        "/backfills/{backfill_id}/cancel",
        operation_id="cancel_backfill",
        response_model=BackfillOut,
    )
    async def cancel_backfill(backfill_id: str, principal: Writer) -> BackfillOut:
        """Cancel the backfill's runs that have not started."""
        with _errors():
            done = await run_in_threadpool(backfills.cancel, principal, backfill_id)
        return backfill_out(done)

    return router
