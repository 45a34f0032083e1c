"""The storage contract. One interface, two implementations (SQLite, PostgreSQL), one
conformance suite (``tests/contract``) that runs against both.

Conventions:

- Methods are named noun-then-verb (``run_claim``, ``lease_acquire``).
- Every method is atomic: it commits before it returns, or changes nothing.
- Time is passed in (``now``), never read inside, so the runtime decides which clock counts
  (on PostgreSQL: the database's, see ``oncely.runtime.clock``) and tests can freeze it.
- ``owner=None`` means "any owner" (the system itself, or an admin); any other value confines
  the method to that owner's jobs and runs, and another owner's row is reported as absent.
- Writes made under a lease are conditional on the lease's fencing token: a holder whose
  lease was taken over gets a refusal, never a silent overwrite.
- Methods that change jobs, runs, users or keys take ``actor`` (the principal's subject).
  When it is given, an audit entry is appended in the same transaction as the change: a
  change is never without its entry, nor an entry without its change. A change of a job's
  definition also keeps the definition it replaced (``job_versions_list``), whoever made it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from oncely.domain.actions import Action
from oncely.domain.backfill import Backfill
from oncely.domain.firing import FirePlan
from oncely.domain.jobs import Job
from oncely.domain.notify import (
    Channel,
    DeadmanSweep,
    Delivery,
    DueNotification,
    MissingJob,
    Notification,
    NotificationState,
    Rule,
)
from oncely.domain.policy import Policy
from oncely.domain.principal import Role
from oncely.domain.runs import Attempt, AttemptOutcome, Run, RunDecision, RunState
from oncely.domain.schedule import Schedule
from oncely.domain.users import ApiKey, User
from oncely.ports.clock import TimeSample

T = TypeVar("T")

APIKEY_TOUCH_INTERVAL = timedelta(minutes=1)
"""``apikey_touch`` writes a key's ``last_used_at`` at most this often."""

TAKEOVER_RETENTION = timedelta(days=1)
"""Takeovers are kept this long (for ``oncely cluster status``), then forgotten."""

MEMBER_RETENTION = timedelta(hours=1)
"""A member row whose heartbeat is this old is deleted: its process died without leaving."""


@dataclass(frozen=True)
class Lease:
    """Time-bounded ownership of a named resource (``shard:7``) by a holder.

    ``token`` comes from the store-wide fencing sequence when the lease is granted and stays
    the same while the holder renews it.
    """

    name: str
    holder: str
    token: int
    expires_at: datetime
    acquired_at: datetime | None = None
    """When this token was granted (the holder has held the lease since then)."""
    taken_from: str | None = None
    """Set by ``lease_acquire`` on a takeover: the other holder whose lease had expired (not
    been released) when this one was granted."""
    taken_from_token: int | None = None
    """With ``taken_from``: the token that holder's lease had."""


@dataclass(frozen=True)
class Takeover:
    """A lease taken after its previous holder let it expire (crashed, stalled, cut off)."""

    name: str
    at: datetime
    old_holder: str
    new_holder: str
    old_token: int
    new_token: int
    expired_at: datetime


@dataclass(frozen=True)
class Member:
    """A running oncely process, as its heartbeat row says. ``roles`` among ``scheduler``,
    ``worker``, ``api``. Live while ``heartbeat_at`` is recent (the reader's TTL decides)."""

    id: str
    host: str
    pid: int
    roles: tuple[str, ...]
    version: str
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class QueueDepth:
    """Waiting runs of a queue: all (``pending``, ``queued``, ``retrying``) and those due."""

    queue: str
    waiting: int
    due: int
    oldest_due_at: datetime | None
    """The earliest ``due_at`` among waiting runs due by ``now`` (None: nothing due)."""


@dataclass(frozen=True)
class ClaimParams:
    worker_id: str
    queue: str
    limit: int
    now: datetime
    lease_ttl: timedelta
    prefetch_until: datetime | None = None
    """Also claim runs due by then, if their job allows overlap. A worker starts such a run
    at its due time (its ``started_at``), not at the claim: a burst of runs due at one instant
    is claimed ahead and starts on time. Overlap-guarded runs are never claimed early: their
    predecessor may still finish before they are due."""


@dataclass(frozen=True)
class ClaimedRun:
    """A run a worker now holds, with what it needs to execute it."""

    run_id: str
    job_id: str
    job_name: str
    owner: str
    queue: str
    scheduled_for: datetime
    attempt: int
    failures: int
    token: int
    started_at: datetime
    lease_expires_at: datetime
    action: Action
    payload: Any
    policy: Policy


class Claimed(list[ClaimedRun]):
    """What ``run_claim`` returns: the claimed runs (this list), and what the claim's overlap
    policies did in the same transaction, as (run id, job id) pairs: ``skipped`` runs (state
    ``skipped``, never started) and ``cancelled`` live runs (replaced by a newer one). Carried
    on the list itself: reporting them costs no extra round trip, and callers that want only
    the runs are unchanged."""

    __slots__ = ("cancelled", "skipped")

    def __init__(
        self,
        runs: Sequence[ClaimedRun] = (),
        *,
        skipped: Sequence[tuple[str, str]] = (),
        cancelled: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(runs)
        self.skipped: tuple[tuple[str, str], ...] = tuple(skipped)
        self.cancelled: tuple[tuple[str, str], ...] = tuple(cancelled)


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended, and where its run goes next (decided by the domain).

    Recorded only if the run is still ``running`` under ``token``. The reaper sets
    ``expired_before`` so that a lease renewed in the meantime is not taken away.
    """

    run_id: str
    token: int
    attempt: int
    worker_id: str
    outcome: AttemptOutcome
    decision: RunDecision
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    output: str | None = None
    expired_before: datetime | None = None
    job_id: str | None = None
    job_name: str | None = None
    queue: str | None = None
    """Whose run this is, for observers (events, metrics, logs); the store ignores them."""


@dataclass(frozen=True)
class ExpiredRun:
    """A running run whose lease has expired: its worker crashed or stalled."""

    run_id: str
    token: int
    attempt: int
    failures: int
    worker_id: str
    started_at: datetime
    policy: Policy
    job_id: str | None = None
    job_name: str | None = None
    queue: str | None = None


@dataclass(frozen=True)
class CommitResult:
    """What ``fires_commit`` did. ``lost_shards`` lists shards whose lease was no longer valid:
    their plans were dropped, and the scheduler must stop acting for them."""

    runs_created: int
    jobs_advanced: int
    lost_shards: frozenset[int]


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which target. ``owner`` is the owner of the job or run acted on, or
    None for server-wide entries (users, keys), which only admins read. ``details`` never
    holds a secret."""

    id: int
    at: datetime
    actor: str
    owner: str | None
    action: str
    target_kind: str
    target_id: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class JobVersion:
    """A job's definition as it was at ``version``, before the change made at ``changed_at``
    by ``changed_by`` (None when no actor was given: the embedded App, a script)."""

    job_id: str
    version: int
    name: str
    schedule: Schedule
    action: Action
    payload: Any
    policy: Policy
    paused: bool
    changed_at: datetime
    changed_by: str | None


@dataclass(frozen=True)
class PayloadOverride:
    """A manual run's own payload, in place of its job's (``value`` may be None: JSON null).
    ``text`` is its JSON text, already size-checked (``oncely.domain.jobs.encode_payload``)."""

    value: Any
    text: str


@dataclass(frozen=True)
class JobQuery:
    """A page of live jobs ordered by (name, id), filtered. ``after`` is the (name, id) of
    the last job of the previous page. ``last_outcome`` matches the stored state of the job's
    newest finished run."""

    limit: int = 100
    after: tuple[str, str] | None = None
    name_contains: str | None = None
    paused: bool | None = None
    queue: str | None = None
    action_kind: str | None = None
    last_outcome: RunState | None = None


@dataclass(frozen=True)
class RunQuery:
    """A page of runs newest first by (scheduled_for, id), filtered. ``before`` is the
    (scheduled_for, id) of the last run of the previous page; ``since`` (inclusive) and
    ``until`` (exclusive) bound ``scheduled_for``; ``states`` match the stored state;
    ``worker`` is a prefix of the worker id of the run's latest attempt (a whole id, or
    ``worker:host`` for every worker of a host)."""

    limit: int = 100
    before: tuple[datetime, str] | None = None
    job_id: str | None = None
    states: Sequence[RunState] | None = None
    since: datetime | None = None
    until: datetime | None = None
    worker: str | None = None


PRUNABLE_STATES = (RunState.SUCCEEDED, RunState.SKIPPED, RunState.MISSED, RunState.CANCELLED)
"""End states whose runs retention may delete. ``dead`` is not one: a dead run is kept until
someone handles it (requeues it, or cancels the job's history by hand)."""


@dataclass(frozen=True)
class RetentionAges:
    """How long finished runs are kept, per end state (None: forever). A job's own
    ``Policy.retention`` replaces these ages for its runs."""

    succeeded: timedelta | None = timedelta(days=7)
    skipped: timedelta | None = timedelta(days=7)
    missed: timedelta | None = timedelta(days=30)
    cancelled: timedelta | None = timedelta(days=30)

    def cutoffs(self, now: datetime) -> dict[str, datetime | None]:
        """Per prunable state: runs that finished before this instant may go."""
        return {
            state.value: None if (age := getattr(self, state.value)) is None else now - age
            for state in PRUNABLE_STATES
        }

    def horizon(self, now: datetime, shortest_job_age: float | None) -> datetime | None:
        """The newest instant a run may have finished before and still go (given the
        shortest per-job retention, in seconds): a pass reads no run scheduled after it.
        None: nothing is ever pruned."""
        candidates = [c for c in self.cutoffs(now).values() if c is not None]
        if shortest_job_age is not None:
            candidates.append(now - timedelta(seconds=float(shortest_job_age)))
        return max(candidates) if candidates else None


@dataclass(frozen=True)
class PruneBatch:
    """What one ``runs_prune`` call deleted, and where the next call of the same pass
    starts (None: the pass reached the end)."""

    runs: int
    attempts: int
    next_after: tuple[datetime, str] | None


class TransactionCancelled(Exception):
    """A transactional task's transaction was rolled back because its attempt was cancelled
    (timed out, or its lease could no longer be trusted)."""


class TxControl:
    """Stops a transactional task's transaction from another thread.

    The store binds a canceller while the task's code runs (PostgreSQL: cancel the statement
    on the server; SQLite: interrupt the connection); ``cancel()`` calls it, and the store
    rolls the transaction back instead of committing (``TransactionCancelled``), however the
    task's code ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._canceller: Callable[[], None] | None = None
        self.cancelled = False

    def bind(self, canceller: Callable[[], None] | None) -> None:
        with self._lock:
            self._canceller = canceller
            fire = canceller is not None and self.cancelled
        if fire:
            _quietly(canceller)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            canceller = self._canceller
        if canceller is not None:
            _quietly(canceller)


def _quietly(fn: Callable[[], None] | None) -> None:
    if fn is None:
        return
    with contextlib.suppress(Exception):  # best effort: the rollback is what counts
        fn()


class Store(Protocol):
    dialect: str
    """``sqlite`` or ``postgresql``."""
    supports_listen: bool
    """True if ``listen`` can wake workers when runs become due (PostgreSQL LISTEN/NOTIFY)."""

    # -- lifecycle ------------------------------------------------------------------------

    def migrate(self) -> int:
        """Create or upgrade the schema to the newest version; return that version.
        Safe to call concurrently from several processes."""
        ...

    def schema_version(self) -> int:
        """The applied schema version (0 for an empty database)."""
        ...

    def db_now(self) -> datetime:
        """The database's clock (PostgreSQL) or the local clock (SQLite), aware UTC."""
        ...

    def db_time_sample(self) -> TimeSample:
        """``db_now`` with the local monotonic instants just before the query was sent and
        just after its answer came back, measured after a connection was taken: the sample
        ``DatabaseClock`` advances from (its round trip bounds its error)."""
        ...

    def setup_warnings(self) -> list[str]:
        """What in the database server's setup will degrade this store under load (for
        PostgreSQL: autovacuum off for the server or for runs, which a queue table does not
        survive). A scheduler logs each at WARNING when it starts; empty when all is well."""
        ...

    def close(self) -> None: ...

    # -- jobs -----------------------------------------------------------------------------

    def job_create(
        self, job: Job, *, replace: bool = False, now: datetime, actor: str | None = None
    ) -> Job:
        """Store a new job. A live job with the same (owner, name) is a ``Conflict`` unless
        ``replace``: then that job keeps its id, takes the new definition, its version grows,
        its ``pending`` runs (materialized from the old schedule) are cancelled, and its
        previous definition is kept as a job version. Audited as ``job.create`` or
        ``job.replace``."""
        ...

    def jobs_create(self, jobs: Sequence[Job], *, now: datetime, actor: str | None = None) -> int:
        """Store many new jobs in one transaction, all or none: if any (owner, name) is taken
        (by a live job or twice in ``jobs``), nothing is stored and ``Conflict`` names it.
        Returns how many were stored. Audited as one ``job.create`` entry per job."""
        ...

    def jobs_import(
        self,
        creates: Sequence[Job],
        updates: Sequence[tuple[Job, int]],
        *,
        now: datetime,
        actor: str | None = None,
    ) -> None:
        """Create ``creates`` and change the definitions in ``updates`` (each with the version
        it was read at) in ONE transaction, all or none: what importing a crontab does.
        Creating is as ``jobs_create`` (a taken name is a ``Conflict``); each update is as
        ``job_update`` with ``expected_version`` (a job changed or deleted meanwhile is a
        ``Conflict``). Audited as those are."""
        ...

    def job_get(self, owner: str | None, job_id: str) -> Job | None: ...

    def job_get_by_name(self, owner: str, name: str) -> Job | None: ...

    def job_list(
        self, owner: str | None, *, limit: int = 100, after_name: str | None = None
    ) -> list[Job]:
        """Live jobs ordered by (name, id); ``after_name`` pages."""
        ...

    def job_search(self, owner: str | None, query: JobQuery) -> list[Job]:
        """A page of live jobs (confined to ``owner`` unless None), along an index in
        (name, id) order: never a scan of other owners' jobs."""
        ...

    def job_count(self, owner: str | None, query: JobQuery, *, cap: int = 10_000) -> int:
        """How many live jobs ``query``'s filters match (its ``limit`` and ``after`` are
        ignored), counted up to ``cap``: a result of ``cap`` means "at least that many"."""
        ...

    def job_set_paused(
        self,
        owner: str | None,
        job_id: str,
        *,
        paused: bool,
        next_fire_at: datetime | None,
        now: datetime,
        actor: str | None = None,
    ) -> Job | None:
        """Pause or resume. Pausing cancels ``pending`` runs not yet due: a paused job has no
        fires. Resuming sets ``next_fire_at`` (computed by the caller from now: the paused
        stretch is not backfilled). Audited as ``job.pause`` or ``job.resume``."""
        ...

    def job_update(
        self,
        owner: str | None,
        job: Job,
        *,
        expected_version: int | None = None,
        now: datetime,
        actor: str | None = None,
    ) -> Job | None:
        """Change the definition of the live job ``job.id`` (confined to ``owner``) to
        ``job``'s name, schedule, action, payload, policy and ``next_fire_at`` (the caller
        computes it from ``now`` for the new schedule); its paused flag, shard and creation
        time stay. None if there is no such job. ``Conflict`` if ``expected_version`` is given
        and the stored version differs (someone changed it meanwhile), or if the new name is
        taken. If the definition differs from the stored one: the version grows, the previous
        definition is kept as a job version, ``pending`` runs are cancelled (as a replace
        does) and a ``job.update`` entry lists the changed fields. An identical definition
        changes nothing and returns the stored job."""
        ...

    def job_delete(
        self, owner: str | None, job_id: str, *, now: datetime, actor: str | None = None
    ) -> bool:
        """Delete a job (its history stays readable by run id); cancel its waiting runs.
        Audited as ``job.delete``."""
        ...

    def job_trigger(
        self,
        owner: str | None,
        job_id: str,
        *,
        run_id: str,
        now: datetime,
        actor: str | None = None,
        payload: PayloadOverride | None = None,
    ) -> Run:
        """Create a manual run due now. ``NotFound`` for an unknown job. Audited as
        ``job.trigger`` (details: the run's id). With ``payload``, the run's attempts get
        ``payload.value`` instead of the job's payload (the job is not changed)."""
        ...

    def job_versions_list(
        self,
        owner: str | None,
        job_id: str,
        *,
        limit: int = 100,
        before_version: int | None = None,
    ) -> list[JobVersion]:
        """Previous definitions of a job (deleted jobs included), newest first;
        ``before_version`` pages. Empty for an unknown job or another owner's."""
        ...

    # -- backfills (oncely.domain.backfill) ------------------------------------------------

    def backfill_create(
        self,
        owner: str | None,
        backfill: Backfill,
        runs: Sequence[tuple[datetime, datetime]],
        *,
        now: datetime,
        actor: str | None = None,
    ) -> Backfill:
        """In one transaction: a ``pending`` run for each (scheduled_for, due_at) of
        ``backfill.job_id`` (confined to ``owner``) that has no run yet for that fire (the
        unique fire key decides: a fire is never run twice), with the job's queue, priority and
        overlap; the backfill record, whose ``created`` counts the runs made; and links to
        them. ``NotFound`` for an unknown job. Audited as ``job.backfill``."""
        ...

    def backfill_get(self, owner: str | None, backfill_id: str) -> Backfill | None: ...

    def backfill_list(self, owner: str | None, job_id: str, *, limit: int = 100) -> list[Backfill]:
        """A job's backfills, newest first."""
        ...

    def backfill_cancel(
        self, owner: str | None, backfill_id: str, *, now: datetime, actor: str | None = None
    ) -> Backfill | None:
        """Cancel the backfill's runs that have not started (``pending``) and mark it
        cancelled (``cancelled`` counts them). None for an unknown backfill. Audited as
        ``backfill.cancel``."""
        ...

    # -- leases and scheduling ------------------------------------------------------------

    def lease_acquire(
        self, names: Sequence[str], holder: str, *, now: datetime, ttl: timedelta
    ) -> list[Lease]:
        """Take each named lease that is free, expired, or already ours; return those now
        held. A newly granted lease gets a new fencing token and ``acquired_at = now``;
        renewing our own keeps both. A lease is expired when ``expires_at <= now``.

        Taking a lease that another holder let expire (rather than released) is a takeover:
        the returned lease names that holder in ``taken_from``, and a ``Takeover`` is
        recorded in the same transaction (kept for ``TAKEOVER_RETENTION``)."""
        ...

    def lease_renew(self, leases: Sequence[Lease], *, now: datetime, ttl: timedelta) -> list[Lease]:
        """Extend leases still held under their token and not expired; return those."""
        ...

    def lease_release(self, leases: Sequence[Lease]) -> None:
        """Give leases up at once so another holder need not wait for them to expire."""
        ...

    def lease_list(self, prefix: str) -> list[Lease]:
        """Every lease row whose name starts with ``prefix``, expired ones included, by name;
        with ``acquired_at``."""
        ...

    def takeover_list(self, *, limit: int = 20) -> list[Takeover]:
        """The most recent takeovers, newest first."""
        ...

    # -- cluster membership ---------------------------------------------------------------

    def member_heartbeat(self, member: Member, *, now: datetime) -> None:
        """Insert or refresh this process's row: ``heartbeat_at = now``, the other columns as
        given (``started_at`` as first written). Rows whose heartbeat is older than
        ``now - MEMBER_RETENTION`` (processes that died without leaving) are deleted."""
        ...

    def member_leave(self, member_id: str) -> None:
        """Delete this process's row: a stopping process announces it is gone, so its peers
        need not wait for its heartbeat to time out."""
        ...

    def member_list(self) -> list[Member]:
        """Every member row, live or not, by id."""
        ...

    def queue_depths(self, *, now: datetime) -> list[QueueDepth]:
        """Per queue with waiting runs: how many wait, how many are due, the oldest due
        time. Reads the waiting-runs index only."""
        ...

    def jobs_due(self, shards: Sequence[int], horizon: datetime, limit: int) -> list[Job]:
        """Active jobs of these shards whose ``next_fire_at`` is at or before ``horizon``,
        earliest first."""
        ...

    def fires_commit(
        self, leases: Sequence[Lease], plans: Sequence[tuple[int, FirePlan]], *, now: datetime
    ) -> CommitResult:
        """In one transaction: for each (shard, plan) whose shard lease in ``leases`` is still
        valid at ``now`` and whose job is still at ``plan.job_version`` and
        ``plan.old_next_fire_at``, insert the planned runs (a run that already exists for
        (job_id, scheduled_for) is left alone) and set the job's ``next_fire_at``."""
        ...

    # -- runs: the worker side ------------------------------------------------------------

    def run_claim(self, params: ClaimParams) -> Claimed:
        """Lease up to ``limit`` due waiting runs of the queue, highest priority first, then
        earliest due. Each claimed run becomes ``running`` with a new fencing token and
        ``attempt + 1``. Overlap policies are applied in the same transaction: skipped and
        cancelled runs are not among the claimed ones, and are reported in the answer's
        ``skipped`` and ``cancelled``. Concurrent claimers never get the same run."""
        ...

    def run_heartbeat(
        self, worker_id: str, held: Sequence[tuple[str, int]], *, now: datetime, ttl: timedelta
    ) -> set[str]:
        """Extend the leases of (run_id, token) pairs still held; return their run ids.
        A run missing from the answer was lost (expired and reaped, or cancelled)."""
        ...

    def run_complete(self, results: Sequence[AttemptResult]) -> list[bool]:
        """Record attempts that ended, each only if its run is still ``running`` under its
        token (and, with ``expired_before``, its lease expired before then). Returns, per
        result, whether it was recorded. A refused result changes nothing."""
        ...

    def run_complete_with(
        self,
        result: Callable[[T], AttemptResult],
        effect: Callable[[Any], T],
        *,
        timeout: float | None = None,
        control: TxControl | None = None,
    ) -> tuple[bool, T | None]:
        """In one transaction: ``value = effect(connection)``, then record ``result(value)``
        (the result may depend on what the effect returned, e.g. its output). If the fencing
        check refuses the result, the effect's writes are rolled back too; if the effect
        raises, everything is rolled back and the exception propagates.

        ``timeout`` bounds the effect's statements (PostgreSQL: ``statement_timeout``;
        SQLite: the whole transaction, capped by the store's ``task_transaction_cap`` since it
        holds the database's one write lock). ``control.cancel()`` from another thread
        interrupts the effect and rolls everything back (``TransactionCancelled``). Runs on
        connections apart from the other methods', so a slow effect never delays them
        (SQLite excepted: the write lock is shared, which is why its cap exists)."""
        ...

    def runs_expired(self, *, now: datetime, limit: int) -> list[ExpiredRun]: ...

    def runs_next_due(self, queues: Sequence[str]) -> datetime | None:
        """The earliest ``due_at`` among waiting runs of these queues."""
        ...

    def listen(self, on_due: Callable[[], None], stop: threading.Event) -> None:
        """Block, calling ``on_due`` when runs may have become claimable, until ``stop``.
        Only when ``supports_listen``."""
        ...

    # -- runs: the reading and admin side -------------------------------------------------

    def run_get(self, owner: str | None, run_id: str) -> Run | None: ...

    def run_list(
        self,
        owner: str | None,
        *,
        job_id: str | None = None,
        states: Sequence[RunState] | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        """Runs newest first by (scheduled_for, id); ``before`` pages. ``states`` match the
        stored state; show runs through ``visible_state``, which reads a due ``pending`` or
        ``retrying`` run as ``queued``."""
        ...

    def run_search(self, owner: str | None, query: RunQuery) -> list[Run]:
        """A page of runs (confined to ``owner`` unless None), along an index in
        (scheduled_for, id) order: one job's, one owner's, or everyone's."""
        ...

    def attempt_list(self, owner: str | None, run_id: str) -> list[Attempt]: ...

    def run_cancel(
        self, owner: str | None, run_id: str, *, now: datetime, actor: str | None = None
    ) -> Run | None:
        """Cancel a waiting or running run (a running attempt is recorded as ``cancelled``
        and its worker's later writes are refused). ``Conflict`` if it already ended.
        Audited as ``run.cancel``."""
        ...

    def run_requeue(
        self, owner: str | None, run_id: str, *, now: datetime, actor: str | None = None
    ) -> Run | None:
        """Give a ``dead`` run a fresh retry budget and queue it now. ``Conflict`` otherwise.
        Audited as ``run.requeue``."""
        ...

    def run_counts(self, owner: str | None) -> dict[str, int]:
        """Number of runs per stored live state (``pending``, ``queued``, ``retrying``,
        ``running``) and of ``dead`` runs; states with none are left out. Read from the
        partial indexes of those states: never a scan of finished runs, whose numbers are
        counters (``/metrics``)."""
        ...

    # -- retention ------------------------------------------------------------------------

    def runs_prune(
        self,
        ages: RetentionAges,
        *,
        now: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> PruneBatch:
        """Delete up to ``limit`` finished runs older than their retention, with their
        attempts, in one short transaction (rows another transaction holds are skipped,
        never waited for). A run goes when it is in a prunable end state (never ``dead``)
        and finished before ``now`` minus its age: its job's ``Policy.retention`` if set,
        else ``ages`` for its state. Runs are visited in (scheduled_for, id) order from
        ``after`` (exclusive; None: the beginning); ``next_after`` continues the pass, so a
        pass reads each old run once, whatever it keeps."""
        ...

    def jobs_purge(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` jobs deleted before ``before`` that have no run left (their
        job versions go with them; the audit log keeps its entries). Returns how many."""
        ...

    # -- users, API keys, secrets ---------------------------------------------------------

    def user_create(self, user: User, *, now: datetime, actor: str | None = None) -> User:
        """Store a new user. ``Conflict`` if the name is taken (names are unique, case
        sensitive). Audited as ``user.create``."""
        ...

    def user_create_first(self, user: User, *, now: datetime) -> bool:
        """Store ``user`` only if the store has no user at all; whether it was stored.
        Concurrent first starts store at most one first user. Audited as ``user.create``
        by ``system``."""
        ...

    def user_get(self, user_id: str) -> User | None: ...

    def user_get_by_name(self, name: str) -> User | None: ...

    def user_list(self, *, limit: int = 100, after_name: str | None = None) -> list[User]:
        """Users ordered by name, disabled ones included; ``after_name`` pages."""
        ...

    def user_set_password(
        self,
        user_id: str,
        password_hash: str,
        *,
        now: datetime,
        actor: str | None = None,
        end_sessions: bool = True,
    ) -> bool:
        """Replace a user's password hash; False for an unknown user. With ``end_sessions``
        (a real change; not a rehash at login) the user's ``session_epoch`` grows, which ends
        the access tokens issued before. Audited as ``user.password`` when ``actor`` is given."""
        ...

    def user_set_role(
        self, user_id: str, role: Role, *, now: datetime, actor: str | None = None
    ) -> User | None:
        """Change a user's role (takes effect on its next request). Audited as ``user.role``."""
        ...

    def user_disable(
        self, user_id: str, *, disabled: bool = True, now: datetime, actor: str | None = None
    ) -> User | None:
        """Disable (or enable again) a user: a disabled user cannot log in, and its tokens
        and keys are refused. Disabling also grows ``session_epoch``: enabling the user again
        does not bring its old tokens back (its keys work again). Audited as ``user.disable``
        or ``user.enable``."""
        ...

    def apikey_create(self, key: ApiKey, *, now: datetime, actor: str | None = None) -> ApiKey:
        """Store a key (its hash only). ``Conflict`` if the prefix is taken. Audited as
        ``apikey.create``."""
        ...

    def apikey_get_by_prefix(self, prefix: str) -> ApiKey | None:
        """The key with this public prefix, revoked or expired ones included (the caller
        decides); one index probe."""
        ...

    def apikey_list(self, user_id: str | None, *, limit: int = 100) -> list[ApiKey]:
        """Keys of a user (None: every user's), oldest first, revoked ones included."""
        ...

    def apikey_revoke(
        self,
        key_id: str,
        *,
        user_id: str | None = None,
        now: datetime,
        actor: str | None = None,
    ) -> ApiKey | None:
        """Revoke a key (confined to ``user_id``'s keys when given); None if there is no such
        key. Revoking a revoked key keeps its first revocation time. Audited as
        ``apikey.revoke``."""
        ...

    def apikey_touch(self, key_id: str, *, now: datetime) -> None:
        """Record that the key was used at ``now``. Written at most once a minute per key, so
        that authenticating a request is not a write each time."""
        ...

    def secret_get_or_create(self, name: str, candidate: bytes, *, now: datetime) -> bytes:
        """The stored secret ``name``; if there is none yet, ``candidate`` is stored and
        returned. Processes starting at once all get the one value that was stored first."""
        ...

    def secret_replace(self, name: str, value: bytes, *, now: datetime) -> None:
        """Store ``value`` as the secret ``name``, replacing any (a key rotation)."""
        ...

    # -- audit ----------------------------------------------------------------------------

    def audit_record(
        self,
        actor: str,
        action: str,
        *,
        target_kind: str,
        target_id: str | None = None,
        owner: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime,
    ) -> None:
        """Append an entry for an event that is not a store change (e.g. a refused login)."""
        ...

    def audit_list(
        self,
        owner: str | None,
        *,
        target_kind: str | None = None,
        target_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before: tuple[datetime, int] | None = None,
    ) -> list[AuditEntry]:
        """Entries newest first by (at, id); ``before`` (the last entry's (at, id)) pages.
        ``owner`` confines to entries about that owner's jobs and runs (server-wide entries,
        with no owner, are then left out); ``target_kind``/``target_id`` to one target;
        ``since`` (inclusive) and ``until`` (exclusive) to a time range. Each filter
        combination reads one index in order."""
        ...

    # -- notifications (see oncely.domain.notify) ------------------------------------------
    #
    # The outbox is written by ``run_complete``/``run_complete_with`` (a failed, timed out or
    # lost attempt; a run gone dead; the first success after a failure) and ``fires_commit``
    # (a missed fire) in their own transactions, and by ``deadman_sweep``: one notification
    # per matching rule and cause, never two.

    def channel_create(
        self, channel: Channel, *, now: datetime, actor: str | None = None
    ) -> Channel:
        """Store a channel. ``Conflict`` if the owner has a live channel of that name.
        Audited as ``channel.create`` (without its URL or secret)."""
        ...

    def channel_get(self, owner: str | None, channel_id: str) -> Channel | None: ...

    def channel_list(self, owner: str | None) -> list[Channel]:
        """Live channels ordered by (owner, name)."""
        ...

    def channel_delete(
        self, owner: str | None, channel_id: str, *, now: datetime, actor: str | None = None
    ) -> bool:
        """Delete a channel, the rules that use it, and give up its pending notifications.
        Audited as ``channel.delete``."""
        ...

    def rule_create(self, rule: Rule, *, now: datetime, actor: str | None = None) -> Rule:
        """Store a rule (the caller checked its job and channel). Audited as ``rule.create``."""
        ...

    def rule_list(self, owner: str | None, *, job_id: str | None = None) -> list[Rule]: ...

    def rule_delete(
        self, owner: str | None, rule_id: str, *, now: datetime, actor: str | None = None
    ) -> bool: ...

    def notification_due(self, *, now: datetime, limit: int) -> list[DueNotification]:
        """Pending notifications whose next attempt is due, earliest first, with their
        channel (secrets included: for the deliverer only)."""
        ...

    def notification_record(
        self,
        notification_id: str,
        *,
        attempt: int,
        ok: bool,
        error: str | None,
        duration_ms: int,
        now: datetime,
        retry_at: datetime | None,
    ) -> bool:
        """Record delivery try number ``attempt`` (the notification's ``attempts + 1``):
        delivered if ``ok``, else pending again at ``retry_at``, or failed for good when
        ``retry_at`` is None. False (and nothing changed) if that try was already recorded
        or the notification is no longer pending."""
        ...

    def notification_get(self, owner: str | None, notification_id: str) -> Notification | None: ...

    def notification_list(
        self,
        owner: str | None,
        *,
        state: NotificationState | None = None,
        job_id: str | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[Notification]:
        """Newest first by (created_at, id); ``before`` pages."""
        ...

    def delivery_list(self, owner: str | None, notification_id: str) -> list[Delivery]: ...

    def deadman_sweep(self, *, now: datetime, limit: int = 500) -> DeadmanSweep:
        """In one transaction: arm the deadline of jobs that have one and are not armed
        (due ``now + deadline``), then for each job whose armed deadline is at or before
        ``now``: mark it lapsed (disarmed until its next success) and write its ``deadman``
        notifications. A lapse is notified once, however many sweepers run."""
        ...

    def deadman_missing(
        self, owner: str | None, *, now: datetime, limit: int = 100
    ) -> list[MissingJob]:
        """Live jobs with a deadline that passed without a success (lapsed, or armed and due
        by ``now``), the longest overdue first."""
        ...
