"""Python tasks: functions registered with ``@app.task`` and run by workers.

A task receives a ``TaskContext``. Its return value (JSON-serialized, capped) becomes the
attempt's output; an exception fails the attempt (and the run goes the retry way).

A *transactional* task gets ``ctx.connection``, a connection to the store's own database
inside the transaction that also records the run's completion: its writes commit if and
only if the completion is accepted under the attempt's fencing token. That makes those
writes exactly-once (guarantee 4). Transactional tasks are synchronous functions.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oncely.domain.actions import PythonAction, validate_action
from oncely.domain.errors import InvalidInput
from oncely.domain.limits import MAX_ERROR_CHARS, cap_text
from oncely.ports.actions import ActionContext, ActionResult


@dataclass(frozen=True)
class TaskContext:
    run_id: str
    job_id: str
    job_name: str
    owner: str
    attempt: int
    fencing_token: int
    scheduled_for: datetime
    payload: Any = None
    connection: Any = None
    """Only for transactional tasks: the store's connection, inside the completing transaction."""

    @property
    def idempotency_key(self) -> str:
        return self.run_id


@dataclass(frozen=True)
class RegisteredTask:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    transactional: bool


class TaskRegistry:
    def __init__(self) -> None:
        self._tasks: dict[str, RegisteredTask] = {}

    def register(
        self, name: str, fn: Callable[..., Any], *, transactional: bool = False
    ) -> RegisteredTask:
        validate_action(PythonAction(task=name))
        is_async = inspect.iscoroutinefunction(fn)
        if transactional and is_async:
            raise InvalidInput(
                f"task {name!r}: transactional tasks must be synchronous functions", field="task"
            )
        existing = self._tasks.get(name)
        if existing is not None and existing.fn is not fn:
            raise InvalidInput(f"a different task is already registered as {name!r}", field="task")
        task = RegisteredTask(name, fn, is_async, transactional)
        self._tasks[name] = task
        return task

    def get(self, name: str) -> RegisteredTask | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)


def task_context(ctx: ActionContext, connection: Any = None) -> TaskContext:
    return TaskContext(
        run_id=ctx.run_id,
        job_id=ctx.job_id,
        job_name=ctx.job_name,
        owner=ctx.owner,
        attempt=ctx.attempt,
        fencing_token=ctx.fencing_token,
        scheduled_for=ctx.scheduled_for,
        payload=ctx.payload,
        connection=connection,
    )


def describe_return(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return cap_text(text, limit)


def describe_exception(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    # The end of a traceback says what went wrong; keep it when cutting.
    return cap_text(text, MAX_ERROR_CHARS, keep="tail") or ""


class PythonExecutor:
    """Runs registered tasks: coroutines on the event loop, functions on a thread pool."""

    kind = "python"

    def __init__(
        self, registry: TaskRegistry, threads: ThreadPoolExecutor, max_output_bytes: int
    ) -> None:
        self._registry = registry
        self._threads = threads
        self._max_output = max_output_bytes

    def missing(self, name: str) -> ActionResult:
        return ActionResult(
            ok=False,
            error=f"task {name!r} is not registered in this worker "
            "(start the worker with --app module:attribute to import your tasks)",
        )

    async def execute(self, action: PythonAction, ctx: ActionContext) -> ActionResult:
        task = self._registry.get(action.task)
        if task is None:
            return self.missing(action.task)
        context = task_context(ctx)
        try:
            if task.is_async:
                value = await task.fn(context)
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(self._threads, task.fn, context)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return ActionResult(ok=False, error=describe_exception(exc))
        return ActionResult(ok=True, output=describe_return(value, self._max_output))

    async def aclose(self) -> None:
        return None


__all__ = [
    "PythonExecutor",
    "RegisteredTask",
    "TaskContext",
    "TaskRegistry",
    "describe_exception",
    "describe_return",
    "task_context",
]
