"""Wire shapes: what crosses a process boundary, in one module.

The REST API's bodies, the typed client, the CLI's ``--json`` output and ``App.add_job``'s
arguments all use these pydantic models, so a field has one name, one type and one default
everywhere. Domain objects never go on the wire: ``job_out`` and ``run_out`` translate.

Inputs forbid unknown fields (``extra="forbid"``): a caller who sends ``owner``, ``state``,
``version`` or ``token`` gets a 422 naming the field instead of having it silently ignored.
Size limits here are coarse guards against hostile bodies; the domain checks the rest and
names the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from oncely.domain.actions import (
    Action,
    EmailAction,
    HttpAction,
    PythonAction,
    ShellAction,
    SqlAction,
)
from oncely.domain.errors import InvalidInput
from oncely.domain.jobs import Job
from oncely.domain.limits import (
    MAX_ARGV_ITEMS,
    MAX_HEADERS,
    MAX_NAME_CHARS,
    MAX_PAYLOAD_BYTES,
    MAX_STATEMENT_CHARS,
    MAX_STDIN_BYTES,
)
from oncely.domain.notify import (
    Channel,
    ChannelKind,
    Delivery,
    MissingJob,
    Notification,
    Rule,
    mask_url,
)
from oncely.domain.policy import Policy
from oncely.domain.runs import Attempt, Run
from oncely.domain.schedule import AtSchedule, EverySchedule, Schedule, describe

Overlap = Literal["allow", "forbid", "replace"]
Misfire = Literal["run_once", "run_all", "skip"]
DstGap = Literal["shift", "skip"]
DstFold = Literal["first", "last", "both"]
ActionKind = Literal["python", "http", "shell", "sql", "email"]
RunStateName = Literal[
    "pending",
    "queued",
    "running",
    "retrying",
    "succeeded",
    "dead",
    "skipped",
    "missed",
    "cancelled",
]

ShortText = Annotated[str, Field(max_length=256)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpSpec(_In):
    """Call a URL (checked against the server's network rules at creation and at every
    attempt). The body defaults to the payload as JSON."""

    url: Url
    method: Annotated[str, Field(max_length=10)] = "POST"
    headers: Annotated[
        dict[ShortText, Annotated[str, Field(max_length=8192)]], Field(max_length=MAX_HEADERS)
    ] = Field(default_factory=dict)
    body: Annotated[str, Field(max_length=MAX_PAYLOAD_BYTES)] | None = None
    timeout: float = 30.0
    success_statuses: Annotated[list[int], Field(max_length=100)] = Field(default_factory=list)


class EmailSpec(_In):
    """Send an email through the server's SMTP relay (``smtp_*`` settings)."""

    to: Annotated[list[Annotated[str, Field(max_length=320)]], Field(min_length=1, max_length=50)]
    subject: Annotated[str, Field(min_length=1, max_length=998)]
    body: Annotated[str, Field(max_length=MAX_PAYLOAD_BYTES)] = ""
    cc: Annotated[list[Annotated[str, Field(max_length=320)]], Field(max_length=50)] = Field(
        default_factory=list
    )


class ShellSpec(_In):
    """Run a program as an argv list, never through a shell (admins only, and only when the
    server enables shell actions)."""

    argv: Annotated[
        list[Annotated[str, Field(max_length=65536)]],
        Field(min_length=1, max_length=MAX_ARGV_ITEMS),
    ]
    env: Annotated[
        dict[ShortText, Annotated[str, Field(max_length=65536)]], Field(max_length=256)
    ] = Field(default_factory=dict)
    cwd: Annotated[str, Field(max_length=4096)] | None = None
    # Written to the program's standard input (a crontab line's text after %); the domain
    # enforces MAX_STDIN_BYTES.
    stdin: Annotated[str, Field(max_length=MAX_STDIN_BYTES)] | None = None


class SqlSpec(_In):
    """One statement on a connection the server admin named (admins only)."""

    connection: ShortText
    statement: Annotated[str, Field(min_length=1, max_length=MAX_STATEMENT_CHARS)]
    params: dict[str, Any] | None = None


class JobFields(_In):
    """Everything a caller sets on a job, with its default: the one place defaults are
    written (``App.add_job`` takes its defaults from here)."""

    cron: ShortText | None = None
    """Cron expression, 5 fields or 6 with seconds first."""
    at: datetime | None = None
    """One instant (ISO 8601 with an offset)."""
    every: ShortText | float | None = None
    """Interval: ``90s``, ``5m``, ``1h30m`` or seconds."""
    timezone: ShortText = "UTC"
    dst_gap: DstGap = "shift"
    dst_fold: DstFold = "first"
    start: datetime | None = None
    end: datetime | None = None
    jitter: ShortText | float | None = None
    anchor: datetime | None = None
    task: Annotated[str, Field(max_length=MAX_NAME_CHARS)] | None = None
    """A Python task registered with ``@app.task``."""
    http: Url | HttpSpec | None = None
    shell: Annotated[list[str], Field(max_length=MAX_ARGV_ITEMS)] | ShellSpec | None = None
    sql: SqlSpec | None = None
    email: EmailSpec | None = None
    payload: Any = None
    # Defaults that ride out a minute-long outage of the target (docs/guarantees.md): the
    # waits before retries 1..8 are drawn from [0, 4], [0, 8], ... [0, 256], [0, 300] s, so a
    # failing run goes dead after about 7 minutes on average (13.5 at most) and within 60 s
    # about once in 10,000 runs; the first retry comes within 4 s for a blip of seconds.
    retries: int = 8
    base_delay: float = 2.0
    max_delay: float = 300.0
    timeout: float | None = None
    overlap: Overlap = "allow"
    misfire: Misfire = "run_once"
    misfire_grace: float = 60.0
    queue: ShortText = "default"
    priority: int = 0
    paused: bool = False
    deadline: ShortText | float | None = None
    """Dead-man's switch: the job must succeed at least this often (``26h`` or seconds);
    when it does not, rules with the ``deadman`` event notify."""
    retention: float | None = None
    """Seconds this job's finished runs are kept (None: the server's ages per state)."""


class JobCreate(JobFields):
    """A job: a name, exactly one of cron/at/every, exactly one of task/http/shell/sql."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]


class OneTimeJobCreate(_In):
    """The short form for one run of registered task ``job_type`` at ``schedule_time``."""

    job_type: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
    schedule_time: datetime
    payload: Any = None
    retries: int = JobFields.model_fields["retries"].default
    queue: ShortText = "default"
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)] | None = None


def _job_shape(value: Any) -> str:
    is_short = isinstance(value, dict | OneTimeJobCreate) and (
        isinstance(value, OneTimeJobCreate) or "job_type" in value
    )
    return "OneTimeJobCreate" if is_short else "JobCreate"


JobBody = Annotated[
    Annotated[JobCreate, Tag("JobCreate")] | Annotated[OneTimeJobCreate, Tag("OneTimeJobCreate")],
    Discriminator(_job_shape),
]
"""A job to create, in either shape (told apart by ``job_type``)."""


class JobPatch(_In):
    """The fields to change; the others keep their values. Changing any schedule field
    replaces the schedule (give ``cron``/``at``/``every`` again); changing the action
    replaces it (give one of ``task``/``http``/``shell``/``sql``)."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)] | None = None
    cron: ShortText | None = None
    at: datetime | None = None
    every: ShortText | float | None = None
    timezone: ShortText | None = None
    dst_gap: DstGap | None = None
    dst_fold: DstFold | None = None
    start: datetime | None = None
    end: datetime | None = None
    jitter: ShortText | float | None = None
    anchor: datetime | None = None
    task: Annotated[str, Field(max_length=MAX_NAME_CHARS)] | None = None
    http: Url | HttpSpec | None = None
    shell: Annotated[list[str], Field(max_length=MAX_ARGV_ITEMS)] | ShellSpec | None = None
    sql: SqlSpec | None = None
    email: EmailSpec | None = None
    payload: Any = None
    retries: int | None = None
    base_delay: float | None = None
    max_delay: float | None = None
    timeout: float | None = None
    overlap: Overlap | None = None
    misfire: Misfire | None = None
    misfire_grace: float | None = None
    queue: ShortText | None = None
    priority: int | None = None
    deadline: ShortText | float | None = None


class TriggerRequest(_In):
    """Run a job now, once, outside its schedule; ``payload`` (when given, even null)
    replaces the job's payload for this run only."""

    payload: Any = None


class BulkFilter(_In):
    """Which jobs a bulk action applies to (all the caller's jobs when empty)."""

    name_contains: ShortText | None = None
    paused: bool | None = None
    queue: ShortText | None = None
    action_kind: ActionKind | None = None
    last_outcome: RunStateName | None = None


class BulkPause(_In):
    filter: BulkFilter = Field(default_factory=BulkFilter)
    reason: Annotated[str, Field(max_length=1000)] | None = None


class RunFilter(_In):
    job_id: Annotated[str, Field(max_length=64)] | None = None
    states: Annotated[list[RunStateName], Field(max_length=9)] | None = None
    since: datetime | None = None
    until: datetime | None = None


class BulkRequeue(_In):
    """Requeue the caller's dead runs matching the filter."""

    filter: RunFilter = Field(default_factory=RunFilter)
    reason: Annotated[str, Field(max_length=1000)] | None = None


class PreviewRequest(_In):
    cron: ShortText
    timezone: ShortText = "UTC"
    dst_gap: DstGap = "shift"
    dst_fold: DstFold = "first"
    count: Annotated[int, Field(ge=1, le=100)] = 10
    after: datetime | None = None


# -- outputs ------------------------------------------------------------------------------


class ScheduleOut(BaseModel):
    kind: Literal["cron", "at", "every"]
    description: str
    expr: str | None = None
    at: datetime | None = None
    interval: float | None = None
    anchor: datetime | None = None
    timezone: str | None = None
    dst_gap: DstGap | None = None
    dst_fold: DstFold | None = None
    start: datetime | None = None
    end: datetime | None = None
    jitter: float | None = None


class ActionOut(BaseModel):
    kind: ActionKind
    task: str | None = None
    url: str | None = None
    method: str | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    timeout: float | None = None
    success_statuses: list[int] | None = None
    argv: list[str] | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    stdin: str | None = None
    connection: str | None = None
    statement: str | None = None
    params: dict[str, Any] | None = None
    to: list[str] | None = None
    cc: list[str] | None = None
    subject: str | None = None


class PolicyOut(BaseModel):
    max_retries: int
    base_delay: float
    max_delay: float
    timeout: float | None
    overlap: Overlap
    misfire: Misfire
    misfire_grace: float
    misfire_cap: int
    queue: str
    priority: int
    deadline: float | None = None
    retention: float | None = None


class JobOut(BaseModel):
    id: str
    owner: str
    name: str
    schedule: ScheduleOut
    action: ActionOut
    payload: Any = None
    policy: PolicyOut
    paused: bool
    next_fire_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class RunOut(BaseModel):
    id: str
    job_id: str
    job: str
    owner: str
    state: RunStateName
    scheduled_for: datetime
    due_at: datetime
    attempt: int
    failures: int
    fires: int
    first_fire: datetime | None
    manual: bool
    queue: str
    worker: str | None
    token: int | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    output: str | None


class AttemptOut(BaseModel):
    number: int
    token: int
    worker: str
    outcome: str
    started_at: datetime
    finished_at: datetime
    error: str | None
    output: str | None


class RunDetail(RunOut):
    attempts: list[AttemptOut]


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next page; absent on the last page."""


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = None


class BulkResult(BaseModel):
    count: int
    """How many jobs or runs changed."""


class PreviewFire(BaseModel):
    utc: datetime
    local: datetime
    """The same instant in the schedule's zone."""
    fires: bool = True
    """False for a fire a clock change prevents (``dst_gap="skip"``), listed to explain it."""
    dst: Literal["shifted", "merged", "skipped", "fold-first", "fold-second"] | None = None
    note: str | None = None
    """What the clock change did to this fire, in words."""


class PreviewOut(BaseModel):
    description: str
    timezone: str
    fires: list[PreviewFire]


class MemberOut(BaseModel):
    id: str
    host: str
    pid: int
    roles: list[str]
    version: str
    started_at: datetime
    heartbeat_at: datetime
    live: bool
    """Its heartbeat is younger than the membership TTL."""
    shards: int
    """Shard leases it holds now."""


class TakeoverOut(BaseModel):
    name: str
    at: datetime
    old_holder: str
    new_holder: str
    expired_at: datetime


class QueueOut(BaseModel):
    queue: str
    waiting: int
    due: int
    oldest_due_at: datetime | None


class ClusterOut(BaseModel):
    now: datetime
    members: list[MemberOut]
    shard_count: int
    shards_held: int
    unheld_shards: list[int]
    """Shards no live lease covers (their fires wait for a scheduler)."""
    takeovers: list[TakeoverOut]
    """The most recent leases taken from a holder that let them expire, newest first."""
    queues: list[QueueOut]


class ErrorBody(BaseModel):
    code: str
    """``invalid_input``, ``not_found``, ``conflict``, ``forbidden``, ``unauthorized``,
    ``too_large``, ``internal``."""
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


# -- translation --------------------------------------------------------------------------


def invalid_from(exc: ValidationError, prefix: str = "") -> InvalidInput:
    """A pydantic error as the domain's ``InvalidInput``, naming the first bad field."""
    first = exc.errors()[0]
    parts = [str(p) for p in first["loc"] if not _is_union_tag(p)]
    field = prefix + ".".join(parts) if parts else (prefix.rstrip(".") or None)
    message = first["msg"]
    return InvalidInput(f"{field}: {message}" if field else message, field=field)


def _is_union_tag(part: object) -> bool:
    """pydantic names the union member it tried (``str``, ``HttpSpec``...) in the location."""
    if not isinstance(part, str):
        return False
    return part[:1].isupper() or "[" in part or part in ("str", "float", "int", "bool")


def schedule_out(schedule: Schedule) -> ScheduleOut:
    text = describe(schedule)
    if isinstance(schedule, AtSchedule):
        return ScheduleOut(kind="at", description=text, at=schedule.at)
    bounds: dict[str, Any] = {
        "start": schedule.start,
        "end": schedule.end,
        "jitter": schedule.jitter.total_seconds(),
    }
    if isinstance(schedule, EverySchedule):
        return ScheduleOut(
            kind="every",
            description=text,
            interval=schedule.interval.total_seconds(),
            anchor=schedule.anchor,
            **bounds,
        )
    return ScheduleOut(
        kind="cron",
        description=text,
        expr=schedule.expr,
        timezone=schedule.timezone,
        dst_gap=schedule.dst_gap,
        dst_fold=schedule.dst_fold,
        **bounds,
    )


def action_out(action: Action) -> ActionOut:
    if isinstance(action, HttpAction):
        return ActionOut(
            kind="http",
            url=action.url,
            method=action.method.upper(),
            headers=dict(action.headers),
            body=action.body,
            timeout=action.timeout,
            success_statuses=list(action.success_statuses),
        )
    if isinstance(action, ShellAction):
        return ActionOut(
            kind="shell",
            argv=list(action.argv),
            env=dict(action.env),
            cwd=action.cwd,
            stdin=action.stdin,
        )
    if isinstance(action, PythonAction):
        return ActionOut(kind="python", task=action.task)
    if isinstance(action, EmailAction):
        return ActionOut(
            kind="email",
            to=list(action.to),
            cc=list(action.cc),
            subject=action.subject,
            body=action.body,
        )
    assert isinstance(action, SqlAction)
    return ActionOut(
        kind="sql",
        connection=action.connection,
        statement=action.statement,
        params=dict(action.params) if action.params is not None else None,
    )


def policy_out(policy: Policy) -> PolicyOut:
    return PolicyOut(
        max_retries=policy.max_retries,
        base_delay=policy.base_delay,
        max_delay=policy.max_delay,
        timeout=policy.timeout,
        overlap=policy.overlap,
        misfire=policy.misfire,
        misfire_grace=policy.misfire_grace,
        misfire_cap=policy.misfire_cap,
        queue=policy.queue,
        priority=policy.priority,
        deadline=policy.deadline,
        retention=policy.retention,
    )


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        owner=job.owner,
        name=job.name,
        schedule=schedule_out(job.schedule),
        action=action_out(job.action),
        payload=job.payload,
        policy=policy_out(job.policy),
        paused=job.paused,
        next_fire_at=job.next_fire_at,
        version=job.version,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def run_out(run: Run, now: datetime) -> RunOut:
    return RunOut(
        id=run.id,
        job_id=run.job_id,
        job=run.job_name,
        owner=run.owner,
        state=run.state_at(now).value,
        scheduled_for=run.scheduled_for,
        due_at=run.due_at,
        attempt=run.attempt,
        failures=run.failures,
        fires=run.fires,
        first_fire=run.first_fire,
        manual=run.manual,
        queue=run.queue,
        worker=run.worker_id,
        token=run.token,
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
        output=run.output,
    )


def attempt_out(attempt: Attempt) -> AttemptOut:
    return AttemptOut(
        number=attempt.number,
        token=attempt.token,
        worker=attempt.worker_id,
        outcome=attempt.outcome.value,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
        error=attempt.error,
        output=attempt.output,
    )


def run_detail(run: Run, attempts: list[Attempt], now: datetime) -> RunDetail:
    return RunDetail(**run_out(run, now).model_dump(), attempts=[attempt_out(a) for a in attempts])


# -- notifications ----------------------------------------------------------------------

NotifyEventName = Literal["dead", "failure", "recovery", "missed", "deadman"]
ChannelKindName = Literal["apprise", "webhook", "email"]


class ChannelCreate(_In):
    """A place notifications go. ``url`` is a secret (tokens, passwords): it is stored and
    used, and only ever shown masked. A webhook signs with ``secret`` (made for you when not
    given, and shown once in the answer)."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: ChannelKindName = "webhook"
    url: Annotated[str, Field(min_length=1, max_length=4096)]
    secret: Annotated[str, Field(min_length=16, max_length=256)] | None = None


class ChannelOut(BaseModel):
    id: str
    owner: str
    name: str
    kind: ChannelKindName
    url: str
    """Masked: scheme and host only."""
    created_at: datetime


class ChannelCreated(ChannelOut):
    secret: str | None = None
    """The webhook signing secret, shown this once (None for Apprise channels)."""


class RuleCreate(_In):
    """When to notify: ``events`` of one ``job`` (id or name), or of every job of yours when
    ``job`` is not given, or of every owner's jobs with ``is_global`` (admins only)."""

    channel: ShortText
    """The channel's id or name."""
    events: Annotated[list[NotifyEventName], Field(min_length=1, max_length=5)]
    job: ShortText | None = None
    is_global: bool = False


class RuleOut(BaseModel):
    id: str
    owner: str
    channel_id: str
    events: list[NotifyEventName]
    job_id: str | None
    is_global: bool
    created_at: datetime | None


class DeliveryOut(BaseModel):
    attempt: int
    at: datetime
    ok: bool
    error: str | None
    duration_ms: int


class NotificationOut(BaseModel):
    id: str
    """What receivers dedupe on (the webhook's ``Oncely-Notification-Id``)."""
    event: NotifyEventName
    owner: str
    job_id: str
    job_name: str
    run_id: str | None
    rule_id: str
    channel_id: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime
    detail: dict[str, Any]


class NotificationDetail(NotificationOut):
    deliveries: list[DeliveryOut]


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_before: str | None = None
    """Pass as ``before`` for the next (older) page."""


class MissingJobOut(BaseModel):
    """A job whose dead-man's deadline passed without a success."""

    job_id: str
    owner: str
    name: str
    deadline: float
    due_at: datetime
    overdue_seconds: float
    paused: bool


def channel_out(channel: Channel) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        owner=channel.owner,
        name=channel.name,
        kind=channel.kind.value,
        # An email channel's "url" is its recipients: not a secret.
        url=channel.url if channel.kind is ChannelKind.EMAIL else mask_url(channel.url),
        created_at=channel.created_at,
    )


def rule_out(rule: Rule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        owner=rule.owner,
        channel_id=rule.channel_id,
        events=sorted(e.value for e in rule.events),
        job_id=rule.job_id,
        is_global=rule.is_global,
        created_at=rule.created_at,
    )


def notification_out(n: Notification) -> NotificationOut:
    return NotificationOut(
        id=n.id,
        event=n.event.value,
        owner=n.owner,
        job_id=n.job_id,
        job_name=n.job_name,
        run_id=n.run_id,
        rule_id=n.rule_id,
        channel_id=n.channel_id,
        state=n.state.value,
        attempts=n.attempts,
        next_attempt_at=n.next_attempt_at,
        delivered_at=n.delivered_at,
        last_error=n.last_error,
        created_at=n.created_at,
        detail=n.detail,
    )


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        attempt=d.attempt, at=d.at, ok=d.ok, error=d.error, duration_ms=d.duration_ms
    )


def missing_out(m: MissingJob, now: datetime) -> MissingJobOut:
    return MissingJobOut(
        job_id=m.job_id,
        owner=m.owner,
        name=m.name,
        deadline=m.deadline,
        due_at=m.due_at,
        overdue_seconds=max((now - m.due_at).total_seconds(), 0.0),
        paused=m.paused,
    )
