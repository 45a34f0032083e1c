"""Runs, as a caller may see and change them."""

from __future__ import annotations

from dataclasses import replace

from oncely.domain.errors import Conflict, InvalidInput, NotFound
from oncely.domain.ids import looks_like_id
from oncely.domain.principal import Permission, Principal
from oncely.domain.runs import Attempt, Run, RunState
from oncely.ports.store import RunQuery
from oncely.service.deps import ServiceDeps, actor, require
from oncely.service.jobs import BULK_LIMIT

_PAGE = 500


class RunService:
    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps

    def search(self, who: Principal, query: RunQuery, *, owner: str | None = None) -> list[Run]:
        """A page of runs in the caller's scope (one job's when ``query.job_id``). An admin
        sees every owner's unless it names one."""
        require(who, Permission.READ)
        if query.job_id is not None and not looks_like_id(query.job_id):
            raise NotFound(f"no job with id {query.job_id!r}")
        scope = who.scope if not who.is_admin else owner
        return self.deps.store().run_search(scope, query)

    def get(self, who: Principal, run_id: str) -> Run:
        require(who, Permission.READ)
        run = self.deps.store().run_get(who.scope, run_id) if looks_like_id(run_id) else None
        if run is None:
            raise NotFound(f"no run with id {run_id!r}")
        return run

    def attempts(self, who: Principal, run_id: str) -> list[Attempt]:
        run = self.get(who, run_id)
        return self.deps.store().attempt_list(who.scope, run.id)

    def cancel(self, who: Principal, run_id: str) -> Run:
        """Cancel a waiting or running run (``Conflict`` if it already ended)."""
        require(who, Permission.WRITE)
        self.get(who, run_id)
        run = self.deps.store().run_cancel(
            who.scope, run_id, now=self.deps.clock().now(), actor=actor(who)
        )
        if run is None:
            raise NotFound(f"no run with id {run_id!r}")
        return run

    def requeue(self, who: Principal, run_id: str) -> Run:
        """Queue a dead run again with a fresh retry budget (``Conflict`` otherwise)."""
        require(who, Permission.WRITE)
        self.get(who, run_id)
        run = self.deps.store().run_requeue(
            who.scope, run_id, now=self.deps.clock().now(), actor=actor(who)
        )
        if run is None:
            raise NotFound(f"no run with id {run_id!r}")
        self.deps.wake_worker(run.queue)
        return run

    def requeue_where(self, who: Principal, query: RunQuery) -> int:
        """Requeue every dead run of the caller's scope the filter matches."""
        require(who, Permission.WRITE)
        if query.states is not None and set(query.states) != {RunState.DEAD}:
            raise InvalidInput("only dead runs can be requeued", field="filter.states")
        query = replace(query, states=[RunState.DEAD], limit=_PAGE, before=None)
        dead: list[Run] = []
        while True:
            page = self.deps.store().run_search(who.scope, query)
            dead += page
            if len(dead) > BULK_LIMIT:
                raise InvalidInput(
                    f"the filter matches more than {BULK_LIMIT} runs; narrow it", field="filter"
                )
            if len(page) < _PAGE:
                break
            query = replace(query, before=(page[-1].scheduled_for, page[-1].id))
        now = self.deps.clock().now()
        queues = set()
        changed = 0
        for run in dead:
            try:
                done = self.deps.store().run_requeue(who.scope, run.id, now=now, actor=actor(who))
            except Conflict:
                continue  # requeued or changed meanwhile
            if done is not None:
                queues.add(done.queue)
                changed += 1
        for queue in queues:
            self.deps.wake_worker(queue)
        return changed
