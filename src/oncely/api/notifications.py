"""REST routes under ``/v1/notifications``: channels, rules, notifications with their
deliveries, and the jobs whose dead-man's deadline passed. Thin callers of
``oncely.service.notifications``; every route declares its permission (``oncely.api.auth``).
Channel URLs leave only masked; a webhook's secret only once, in the creation answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from starlette.concurrency import run_in_threadpool

from oncely.api.auth import Reader, Writer
from oncely.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from oncely.service import Service
from oncely.wire import (
    ChannelCreate,
    ChannelCreated,
    ChannelOut,
    MissingJobOut,
    NotificationDetail,
    NotificationPage,
    RuleCreate,
    RuleOut,
    channel_out,
    delivery_out,
    missing_out,
    notification_out,
    rule_out,
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


def notifications_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/v1/notifications", tags=["notifications"])
    notes = service.notifications

    @router.get("/channels", response_model=list[ChannelOut])
    async def list_channels(principal: Reader) -> list[ChannelOut]:
        with _errors():
            channels = await run_in_threadpool(notes.channel_list, principal)
        return [channel_out(c) for c in channels]

    @router.post("/channels", response_model=ChannelCreated, status_code=201)
    async def create_channel(body: ChannelCreate, principal: Writer) -> ChannelCreated:
        """Make a channel. A webhook's signing secret is in this answer and never again."""
        with _errors():
            made = await run_in_threadpool(
                notes.channel_create, principal, body.name, body.kind, body.url, body.secret
            )
        return ChannelCreated(**channel_out(made.channel).model_dump(), secret=made.secret)

    @router.delete("/channels/{ref}", status_code=204)
    async def delete_channel(ref: str, principal: Writer) -> Response:
        """Delete a channel (by id or name) and its rules; its pending notifications are
        given up."""
        with _errors():
            await run_in_threadpool(notes.channel_delete, principal, ref)
        return Response(status_code=204)

    @router.get("/rules", response_model=list[RuleOut])
    async def list_rules(
        principal: Reader, job: Annotated[str | None, Query(max_length=256)] = None
    ) -> list[RuleOut]:
        with _errors():
            rules = await run_in_threadpool(lambda: notes.rule_list(principal, job=job))
        return [rule_out(r) for r in rules]

    @router.post("/rules", response_model=RuleOut, status_code=201)
    async def create_rule(body: RuleCreate, principal: Writer) -> RuleOut:
        with _errors():
            rule = await run_in_threadpool(
                lambda: notes.rule_create(
                    principal,
                    body.channel,
                    list(body.events),
                    job=body.job,
                    is_global=body.is_global,
                )
            )
        return rule_out(rule)

    @router.delete("/rules/{rule_id}", status_code=204)
    async def delete_rule(rule_id: str, principal: Writer) -> Response:
        with _errors():
            await run_in_threadpool(notes.rule_delete, principal, rule_id)
        return Response(status_code=204)

    @router.get("/missing", response_model=list[MissingJobOut])
    async def missing_jobs(
        principal: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[MissingJobOut]:
        """Jobs expected but missing: their dead-man's deadline passed without a success."""
        with _errors():
            missing = await run_in_threadpool(lambda: notes.missing(principal, limit=limit))
            now = await run_in_threadpool(service.deps.clock().now)
        return [missing_out(m, now) for m in missing]

    @router.get("", response_model=NotificationPage)
    async def list_notifications(
        principal: Reader,
        state: Annotated[str | None, Query(max_length=16)] = None,
        job: Annotated[str | None, Query(max_length=256)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[str | None, Query(max_length=64)] = None,
    ) -> NotificationPage:
        """Notifications sent through your rules (every owner's for admins), newest first."""
        with _errors():
            items = await run_in_threadpool(
                lambda: notes.notifications(
                    principal, state=state, job=job, limit=limit, before=before
                )
            )
        return NotificationPage(
            items=[notification_out(n) for n in items],
            next_before=items[-1].id if len(items) == limit else None,
        )

    @router.get("/{notification_id}", response_model=NotificationDetail)
    async def get_notification(notification_id: str, principal: Reader) -> NotificationDetail:
        """A notification with every delivery try."""
        with _errors():
            n = await run_in_threadpool(notes.get, principal, notification_id)
            tries = await run_in_threadpool(notes.deliveries, principal, notification_id)
        return NotificationDetail(
            **notification_out(n).model_dump(), deliveries=[delivery_out(d) for d in tries]
        )

    return router
