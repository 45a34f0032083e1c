"""Jobs: what fires, when, and under which policy."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from oncely.domain.actions import Action, validate_action
from oncely.domain.errors import Conflict, InvalidInput
from oncely.domain.ids import looks_like_id
from oncely.domain.limits import MAX_NAME_CHARS, MAX_PAYLOAD_BYTES
from oncely.domain.policy import Policy

if TYPE_CHECKING:
    from oncely.domain.schedule import Schedule

_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-/ ]*$")
_OWNER = re.compile(r"^[A-Za-z0-9_.@\-]{1,128}$")

SHARD_COUNT = 64
"""Jobs are hashed into this many shards; schedulers lease shards. Fixed for a store's life."""


@dataclass(frozen=True)
class Job:
    """A job as stored. ``version`` grows on every change a user makes (pause, replace...),
    so that a scheduler that read an older version cannot overwrite the newer one."""

    id: str
    owner: str
    name: str
    schedule: Schedule
    action: Action
    payload: Any
    policy: Policy
    paused: bool
    next_fire_at: datetime | None
    shard: int
    version: int
    created_at: datetime
    updated_at: datetime


def shard_of(job_id: str, shard_count: int = SHARD_COUNT) -> int:
    """A stable shard number for a job (crc32: the same on every node and Python version)."""
    return zlib.crc32(job_id.encode()) % shard_count


def validate_job_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"job name must be 1-{MAX_NAME_CHARS} characters", field="name")
    if not _JOB_NAME.match(name):
        raise InvalidInput(
            "job name must start with a letter or digit and contain only letters, digits, "
            "spaces and _ . : - /",
            field="name",
        )
    if looks_like_id(name):
        raise InvalidInput(
            "job name must not look like an id (a UUID): ids and names are told apart by shape",
            field="name",
        )
    return name


def validate_owner(owner: str) -> str:
    if not isinstance(owner, str) or not _OWNER.match(owner):
        raise InvalidInput("owner must be 1-128 letters, digits or _ . @ -", field="owner")
    return owner


def encode_payload(payload: Any) -> str | None:
    """Serialize a payload to JSON text, enforcing the size limit."""
    if payload is None:
        return None
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"payload must be JSON-serializable: {exc}", field="payload") from exc
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            f"payload is larger than {MAX_PAYLOAD_BYTES // 1024} KiB", field="payload"
        )
    return text


def validate_job_parts(owner: str, name: str, action: Action, payload: Any, policy: Policy) -> None:
    validate_owner(owner)
    validate_job_name(name)
    validate_action(action)
    encode_payload(payload)
    if not isinstance(policy, Policy):
        raise InvalidInput("policy must be a Policy", field="policy")


def refuse_duplicate_names(jobs: Sequence[Job]) -> None:
    """A bulk creation naming one job twice is refused before anything is written."""
    seen: set[tuple[str, str]] = set()
    for job in jobs:
        key = (job.owner, job.name)
        if key in seen:
            raise Conflict(f"job {job.name!r} is given twice; nothing was stored")
        seen.add(key)


def refuse_taken_names(jobs: Sequence[Job], stored: set[tuple[str, str]]) -> None:
    """After a bulk insert that skipped taken names: name them (the caller rolls back)."""
    taken = [job.name for job in jobs if (job.owner, job.name) not in stored]
    if taken:
        shown = ", ".join(repr(n) for n in taken[:5])
        more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
        raise Conflict(f"jobs named {shown}{more} already exist; nothing was stored")
