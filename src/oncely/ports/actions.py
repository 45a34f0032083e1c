"""The port through which a worker executes an action.

Each executor handles one action kind. It receives the action spec and an ``ActionContext``
and returns an ``ActionResult``; it never raises for a failing action (a non-2xx status, a
non-zero exit, an exception inside a task are results, not errors). The worker enforces the
job's timeout by cancelling ``execute``; an executor must clean up on ``asyncio.CancelledError``
(a shell executor kills the whole process group) and re-raise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class ActionContext:
    """What an attempt knows about itself; handed to every action.

    ``run_id`` is the idempotency key: the same for every attempt of a run.
    ``fencing_token`` grows with every lease granted; a receiver can refuse a smaller one
    than it has already seen.
    """

    run_id: str
    job_id: str
    job_name: str
    owner: str
    attempt: int
    fencing_token: int
    scheduled_for: datetime
    payload: Any = None
    timeout: float | None = None


@dataclass(frozen=True)
class ActionResult:
    """The outcome of one attempt as the action saw it. ``output`` is already capped."""

    ok: bool
    output: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ActionSettings:
    """Server-side configuration that actions obey. Defaults are the safe ones."""

    allow_shell: bool = False
    http_allow_private: bool = False
    """Allow HTTP actions to reach loopback, private, link-local and metadata addresses."""
    http_allowed_networks: tuple[str, ...] = ()
    """CIDRs allowed even though private (e.g. an internal service), when the above is off."""
    sql_connections: Mapping[str, str] = field(default_factory=dict)
    """Connection names an admin configured -> connection URLs (postgresql://, sqlite:///)."""
    max_output_bytes: int = 64 * 1024
    smtp_url: str | None = None
    """The SMTP relay email actions send through (a secret: it may hold a password)."""
    smtp_from: str | None = None
    """The sender address of email actions."""


class ActionExecutor(Protocol):
    """Executes actions of one kind (``http``, ``shell``, ``python``, ``sql``)."""

    kind: str

    async def execute(self, action: Any, ctx: ActionContext) -> ActionResult:
        """Run one attempt. Must not raise except ``asyncio.CancelledError``."""
        ...

    async def aclose(self) -> None:
        """Release pooled resources (HTTP connections, database connections)."""
        ...
