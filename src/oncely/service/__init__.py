"""The service layer: the one place that decides what a caller may do with jobs and runs.

Every call takes the caller (a ``Principal``) first. The service validates input, checks the
caller's permission (``Principal.can``), confines every store call to the caller's scope
(``Principal.scope``: its owner, or every owner for admins), applies the server's action rules
(shell and SQL only for ``PRIVILEGED_ACTIONS`` and only when the server enables them; HTTP
targets resolved and checked against the network rules) and wakes the in-process loops after
a change. ``oncely.App``, the CLI and the REST API are thin callers of it: none of them checks
anything on its own, so the three can never disagree.

Isolation: another owner's job or run is ``NotFound``, exactly as a missing one; lists only
ever return the caller's scope. A job is looked up by id (``get``) or by name (``by_name``),
never by guessing: names shaped like ids are refused at creation, so ``find`` (which takes
either, for people typing at a CLI) is unambiguous.
"""

from __future__ import annotations

from oncely.service.backfills import BackfillService
from oncely.service.cluster import ClusterService
from oncely.service.deps import ServiceDeps
from oncely.service.imports import ImportService
from oncely.service.jobs import JobService
from oncely.service.notifications import ChannelCheck, NotificationService, shape_only
from oncely.service.runs import RunService


class Service:
    """Jobs and runs, for one store and one server configuration."""

    def __init__(self, deps: ServiceDeps, *, check_channel: ChannelCheck = shape_only) -> None:
        self.deps = deps
        self.jobs = JobService(deps)
        self.runs = RunService(deps)
        self.cluster = ClusterService(deps)
        self.notifications = NotificationService(deps, check_channel)
        self.imports = ImportService(deps)
        self.backfills = BackfillService(deps)


__all__ = ["Service", "ServiceDeps"]
