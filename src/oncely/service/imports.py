"""Importing a crontab: the service side of ``oncely import crontab`` and
``POST /v1/import/crontab``.

Design note
-----------
Parsing (``oncely.domain.crontab``) and planning (``oncely.domain.migrate.plan_import``) are
pure; this module checks who asks, builds the jobs and executes the plan. Each crontab line is
a shell job, so only admins import (``PRIVILEGED_ACTIONS``) and only on a server that allows
shell actions. Jobs are matched by their stable names in the caller's owner: a new line is
created, a changed line (schedule, zone, input, environment) updates its job (a new job
version, audited, keeping the job's policy, payload and paused flag), an identical line
changes nothing, so importing the same file twice changes nothing. Creates and updates go to
the store in one transaction (``Store.jobs_import``): all or none. A line that cannot be
imported (bad fields, ``@reboot``, a stored job of that name that is not a shell job) stops
the whole import, listing every such line with its number and why, unless ``skip_invalid``
asks to import the rest. Jobs whose line left the file are left alone: an import never
deletes. ``MAILTO`` becomes a failure notification when the server has an SMTP relay
(``smtp_url``, ``smtp_from``): an ``email`` channel of the caller's owner per address (found
again by kind and address, so a re-import makes none) and a rule "on failure" for each job of
that crontab section (found again by job, channel and event). They are written after the jobs'
transaction: a crash in between leaves the jobs imported and a re-import adds the rules.
``MAILTO=""`` means no mail, as in cron. Without a relay, or for an address that is a local
user (``MAILTO=root``), the report carries a warning instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from oncely.domain.actions import ShellAction, is_email_address
from oncely.domain.crontab import CrontabJob, CrontabProblem, parse_crontab
from oncely.domain.errors import InvalidInput
from oncely.domain.ids import new_id
from oncely.domain.jobs import Job, shard_of, validate_job_parts
from oncely.domain.jobsfile import JobSpec, load_jobs
from oncely.domain.migrate import StoredJob, plan_import
from oncely.domain.notify import Channel, ChannelKind, NotifyEvent, Rule
from oncely.domain.principal import Permission, Principal
from oncely.domain.schedule import Schedule, initial_fire, next_fire
from oncely.ports.store import Store
from oncely.service.deps import ServiceDeps, actor, require
from oncely.service.jobs import build_policy, is_privileged
from oncely.wire import JobFields

__all__ = ["ImportReport", "ImportService", "ImportedJob", "JobsImportReport"]

NEXT_FIRES = 3
"""Next fires listed per job in a report."""

Status = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class ImportedJob:
    line: int
    name: str
    status: Status
    schedule: Schedule
    action: ShellAction
    next_fires: tuple[datetime, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportReport:
    """What an import did (``applied``) or would do (a dry run, or refused lines)."""

    applied: bool
    jobs: tuple[ImportedJob, ...]
    problems: tuple[CrontabProblem, ...]
    warnings: tuple[str, ...]

    def count(self, status: Status) -> int:
        return sum(1 for j in self.jobs if j.status == status)


class ImportService:
    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps

    def crontab(
        self,
        who: Principal,
        text: str,
        *,
        system: bool = False,
        timezone: str = "UTC",
        dry_run: bool = False,
        skip_invalid: bool = False,
    ) -> ImportReport:
        """Import a crontab into the caller's owner (see the module's notes). Raises
        ``InvalidInput`` (field ``crontab``) listing the lines that cannot be imported, and
        imports nothing, unless ``skip_invalid`` or ``dry_run``."""
        require(who, Permission.PRIVILEGED_ACTIONS)
        # Refused up front, dry run or not: a server without shell actions runs none of it.
        self.deps.check_action(ShellAction(argv=("/bin/sh",)), self.deps.actions)
        crontab = parse_crontab(text, system=system, timezone=timezone)
        store = self.deps.store()
        stored: dict[str, Job] = {}
        for line in crontab.jobs:
            found = store.job_get_by_name(who.owner, line.name)
            if found is not None:
                stored[line.name] = found
        plan = plan_import(
            crontab, [StoredJob(j.name, j.schedule, j.action) for j in stored.values()]
        )
        problems = tuple(sorted((*plan.problems, *plan.conflicts), key=lambda p: p.line))
        if problems and not dry_run and not skip_invalid:
            listed = "\n".join(f"line {p.line}: {p.reason}" for p in problems)
            raise InvalidInput(
                f"{len(problems)} line{'s' if len(problems) != 1 else ''} cannot be imported, "
                f"so nothing was imported (skip_invalid imports the others):\n{listed}",
                field="crontab",
            )
        now = self.deps.clock().now()
        policy = build_policy(JobFields())
        creates: list[Job] = []
        updates: list[tuple[Job, int]] = []
        for line in plan.create:
            job_id = new_id(int(now.timestamp() * 1000))
            validate_job_parts(who.owner, line.name, line.action, None, policy)
            self._allow(who, line.action)
            creates.append(
                Job(
                    id=job_id,
                    owner=who.owner,
                    name=line.name,
                    schedule=line.schedule,
                    action=line.action,
                    payload=None,
                    policy=policy,
                    paused=False,
                    next_fire_at=initial_fire(line.schedule, now),
                    shard=shard_of(job_id),
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        for line in plan.update:
            current = stored[line.name]
            self._allow(who, line.action)
            changed = replace(current, schedule=line.schedule, action=line.action, updated_at=now)
            if line.schedule != current.schedule:
                changed = replace(changed, next_fire_at=initial_fire(line.schedule, now))
            updates.append((changed, current.version))
        if not dry_run and (creates or updates):
            store.jobs_import(creates, updates, now=now, actor=actor(who))
            self.deps.wake_scheduler()
        relay = bool(self.deps.actions.smtp_url and self.deps.actions.smtp_from)
        kept = {x.line for x in (*plan.create, *plan.update, *plan.unchanged)}
        imported = [line for line in crontab.jobs if line.line in kept]
        if relay and not dry_run:
            _mail_rules(store, who, imported, now)
        status: dict[int, Status] = {}
        for line in plan.create:
            status[line.line] = "create"
        for line in plan.update:
            status[line.line] = "update"
        for line in plan.unchanged:
            status[line.line] = "unchanged"
        jobs = tuple(
            _report(line, status[line.line], now, relay=relay)
            for line in crontab.jobs
            if line.line in status
        )
        return ImportReport(
            applied=not dry_run,
            jobs=jobs,
            problems=problems,
            warnings=_mail_warnings(crontab.jobs, relay=relay),
        )

    def jobs_json(self, who: Principal, text: str, *, dry_run: bool = False) -> JobsImportReport:
        """Import a jobs file (``oncely.domain.jobsfile``) into the caller's owner: jobs are
        matched by name; new ones created, changed ones updated (a new version), identical
        ones left alone; creates and updates in one transaction. Shell and SQL jobs need
        ``PRIVILEGED_ACTIONS`` and a server that runs them, as creating them does."""
        return _jobs_import(self, who, text, dry_run=dry_run)

    def _allow(self, who: Principal, action: ShellAction) -> None:
        self.deps.check_action(action, self.deps.actions)


def _report(line: CrontabJob, status: Status, now: datetime, *, relay: bool) -> ImportedJob:
    fires: list[datetime] = []
    current = now
    while len(fires) < NEXT_FIRES:
        found = next_fire(line.schedule, current)
        if found is None:
            break
        fires.append(found)
        current = found
    warnings = line.warnings
    mailed = [a for a in _addresses(line.mailto) if is_email_address(a)] if relay else []
    if mailed:
        # Said as what happens instead of cron's mail, not as a warning about it.
        warnings = tuple(w for w in warnings if not w.startswith("MAILTO="))
        warnings += (f"MAILTO: failures are mailed to {', '.join(mailed)} (email channel, rule)",)
    return ImportedJob(
        line.line, line.name, status, line.schedule, line.action, tuple(fires), warnings
    )


def _addresses(mailto: str | None) -> list[str]:
    return [a.strip() for a in (mailto or "").split(",") if a.strip()]


def _mail_warnings(jobs: tuple[CrontabJob, ...], *, relay: bool) -> tuple[str, ...]:
    by_address: dict[str, list[int]] = {}
    for job in jobs:
        for address in _addresses(job.mailto):
            if not relay or not is_email_address(address):
                by_address.setdefault(address, []).append(job.line)
    return tuple(
        f"MAILTO={address} (lines {', '.join(map(str, lines))}): "
        + (
            "not an email address (a local user?): no notification made; "
            if relay
            else "this server has no SMTP relay (smtp_url, smtp_from), so no notification "
            "was made; "
        )
        + "to hear about failures, make a notification channel and a rule on the failure "
        "event (oncely notify, or /v1/notifications)"
        for address, lines in by_address.items()
    )


def _mail_rules(store: Store, who: Principal, lines: list[CrontabJob], now: datetime) -> None:
    """An email channel per MAILTO address and a failure rule per job (see the module's
    notes); what exists already is left as it is."""
    channels = {c.url: c for c in store.channel_list(who.owner) if c.kind is ChannelKind.EMAIL}
    for line in lines:
        addresses = [a for a in _addresses(line.mailto) if is_email_address(a)]
        if not addresses:
            continue
        job = store.job_get_by_name(who.owner, line.name)
        if job is None:
            continue
        rules = store.rule_list(who.owner, job_id=job.id)
        for address in addresses:
            channel = channels.get(address)
            if channel is None:
                name = "mailto:" + re.sub(r"[^A-Za-z0-9_.:\-]", "_", address)
                channel = store.channel_create(
                    Channel(
                        id=new_id(int(now.timestamp() * 1000)),
                        owner=who.owner,
                        name=name[:100],
                        kind=ChannelKind.EMAIL,
                        url=address,
                        secret=None,
                        created_at=now,
                        created_by=actor(who),
                    ),
                    now=now,
                    actor=actor(who),
                )
                channels[address] = channel
            if not any(
                r.channel_id == channel.id and NotifyEvent.FAILURE in r.events for r in rules
            ):
                store.rule_create(
                    Rule(
                        id=new_id(int(now.timestamp() * 1000)),
                        owner=who.owner,
                        channel_id=channel.id,
                        events=frozenset({NotifyEvent.FAILURE}),
                        job_id=job.id,
                        created_by=actor(who),
                    ),
                    now=now,
                    actor=actor(who),
                )


@dataclass(frozen=True)
class JobsImportReport:
    applied: bool
    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]


def _jobs_import(
    service: ImportService, who: Principal, text: str, *, dry_run: bool
) -> JobsImportReport:
    require(who, Permission.WRITE)
    now = service.deps.clock().now()
    specs = load_jobs(text, now=now)
    store = service.deps.store()
    creates: list[Job] = []
    updates: list[tuple[Job, int]] = []
    pauses: list[tuple[Job, bool]] = []
    unchanged: list[str] = []
    for i, spec in enumerate(specs):
        try:
            validate_job_parts(who.owner, spec.name, spec.action, spec.payload, spec.policy)
        except InvalidInput as exc:
            raise InvalidInput(f"job {i} ({spec.name!r}): {exc}", field=exc.field) from None
        if is_privileged(spec.action):
            require(who, Permission.PRIVILEGED_ACTIONS)
        service.deps.check_action(spec.action, service.deps.actions)
        current = store.job_get_by_name(who.owner, spec.name)
        if current is None:
            job_id = new_id(int(now.timestamp() * 1000))
            creates.append(
                Job(
                    id=job_id,
                    owner=who.owner,
                    name=spec.name,
                    schedule=spec.schedule,
                    action=spec.action,
                    payload=spec.payload,
                    policy=spec.policy,
                    paused=spec.paused,
                    next_fire_at=initial_fire(spec.schedule, now),
                    shard=shard_of(job_id),
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            continue
        if is_privileged(current.action):
            require(who, Permission.PRIVILEGED_ACTIONS)
        if JobSpec.of(current) == spec:
            unchanged.append(spec.name)
            continue
        changed = replace(
            current,
            schedule=spec.schedule,
            action=spec.action,
            payload=spec.payload,
            policy=spec.policy,
            updated_at=now,
        )
        if spec.schedule != current.schedule:
            changed = replace(changed, next_fire_at=initial_fire(spec.schedule, now))
        if JobSpec.of(replace(changed, paused=current.paused)) != JobSpec.of(current):
            updates.append((changed, current.version))
        if spec.paused != current.paused:
            pauses.append((changed, spec.paused))
    if not dry_run:
        if creates or updates:
            store.jobs_import(creates, updates, now=now, actor=actor(who))
        for job, paused in pauses:
            # The store keeps the paused flag out of definitions; set after, as a resume does.
            next_at = job.next_fire_at if paused else next_fire(job.schedule, now)
            store.job_set_paused(
                who.scope, job.id, paused=paused, next_fire_at=next_at, now=now, actor=actor(who)
            )
        service.deps.wake_scheduler()
    touched = {j.name for j, _ in updates} | {j.name for j, _ in pauses}
    return JobsImportReport(
        applied=not dry_run,
        created=tuple(j.name for j in creates),
        updated=tuple(sorted(touched)),
        unchanged=tuple(unchanged),
    )
