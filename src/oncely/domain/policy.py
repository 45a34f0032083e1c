"""Per-job policies: retries, backoff, timeout, overlap, misfire, queue and priority."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from oncely.domain.errors import InvalidInput

Overlap = Literal["allow", "forbid", "replace"]
Misfire = Literal["run_once", "run_all", "skip"]

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class Policy:
    """How a job's runs are retried, bounded and placed.

    ``max_retries`` counts retries after the first attempt: a run gets at most
    ``max_retries + 1`` attempts that fail, time out or are lost before it is ``dead``.
    Delays are seconds. ``misfire_grace``: a fire found at most this late is simply run late;
    beyond it the ``misfire`` policy decides. ``misfire_cap`` bounds ``run_all``.
    """

    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0
    timeout: float | None = None
    overlap: Overlap = "allow"
    misfire: Misfire = "run_once"
    misfire_grace: float = 60.0
    misfire_cap: int = 100
    queue: str = "default"
    priority: int = 0
    deadline: float | None = None
    """Dead-man's switch: the job must have succeeded within this many seconds (counted
    from its last success, or from when the deadline was set); when it passes, rules with
    the ``deadman`` event notify, whatever the cause. None: no deadline."""
    retention: float | None = None
    """Seconds this job's finished runs (any end state but ``dead``) are kept before the
    retention service deletes them; None: the server's ages per state apply."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_retries <= 1000:
            raise InvalidInput("retries must be between 0 and 1000", field="retries")
        if not 0 <= self.base_delay <= 86400:
            raise InvalidInput("base_delay must be between 0 and 86400 seconds", field="base_delay")
        if not self.base_delay <= self.max_delay <= 7 * 86400:
            raise InvalidInput(
                "max_delay must be at least base_delay and at most 7 days", field="max_delay"
            )
        if self.timeout is not None and not 0 < self.timeout <= 7 * 86400:
            raise InvalidInput("timeout must be in (0, 7 days] seconds", field="timeout")
        if self.overlap not in get_args(Overlap):
            raise InvalidInput(
                f"overlap must be one of {', '.join(get_args(Overlap))}", field="overlap"
            )
        if self.misfire not in get_args(Misfire):
            raise InvalidInput(
                f"misfire must be one of {', '.join(get_args(Misfire))}", field="misfire"
            )
        if not 0 <= self.misfire_grace <= 7 * 86400:
            raise InvalidInput("misfire_grace must be between 0 and 7 days", field="misfire_grace")
        if not 1 <= self.misfire_cap <= 10_000:
            raise InvalidInput("misfire_cap must be between 1 and 10000", field="misfire_cap")
        if not _QUEUE_NAME.match(self.queue):
            raise InvalidInput("queue must be 1-64 letters, digits, '_', '.' or '-'", field="queue")
        if not -1000 <= self.priority <= 1000:
            raise InvalidInput("priority must be between -1000 and 1000", field="priority")
        if self.retention is not None and not 60 <= self.retention <= 10 * 366 * 86400:
            raise InvalidInput("retention must be between 60 s and 10 years", field="retention")
        if self.deadline is not None and not 60 <= self.deadline <= 366 * 86400:
            raise InvalidInput("deadline must be between 60 s and 366 days", field="deadline")


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    return {
        "max_retries": policy.max_retries,
        "base_delay": policy.base_delay,
        "max_delay": policy.max_delay,
        "timeout": policy.timeout,
        "overlap": policy.overlap,
        "misfire": policy.misfire,
        "misfire_grace": policy.misfire_grace,
        "misfire_cap": policy.misfire_cap,
        "queue": policy.queue,
        "priority": policy.priority,
        "deadline": policy.deadline,
        "retention": policy.retention,
    }


def policy_from_dict(data: dict[str, Any]) -> Policy:
    known = set(Policy.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise InvalidInput(f"unknown policy fields: {', '.join(sorted(unknown))}", field="policy")
    try:
        return Policy(**data)
    except TypeError as exc:
        raise InvalidInput(f"invalid policy: {exc}", field="policy") from exc
