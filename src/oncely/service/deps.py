"""What the service works with, handed in by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from oncely.domain.actions import Action
from oncely.domain.errors import PermissionDenied
from oncely.domain.principal import Permission, Principal
from oncely.ports.actions import ActionSettings
from oncely.ports.clock import Clock
from oncely.ports.store import Store


def _nothing(*_: object) -> None:
    return None


@dataclass
class ServiceDeps:
    store: Callable[[], Store]
    """The store (opened lazily: an ``App`` made at import time touches no database)."""
    clock: Callable[[], Clock]
    actions: ActionSettings
    """The server's action rules: shell on or off, networks HTTP may reach, SQL connections."""
    check_action: Callable[[Action, ActionSettings], None]
    """Refuses an action the server will never run (resolves HTTP hosts): from compose."""
    member_ttl: float = 10.0
    """Seconds after its last heartbeat a cluster member counts as gone (the lease TTL)."""
    wake_scheduler: Callable[[], None] = field(default=_nothing)
    wake_worker: Callable[[str | None], None] = field(default=_nothing)


def require(who: Principal, permission: Permission) -> None:
    if not who.can(permission):
        raise PermissionDenied(f"role {who.role.value!r} may not do this ({permission.value})")


def actor(who: Principal) -> str | None:
    """The audit actor: the principal's subject. The process's own authority (the embedded
    App, the local CLI) records job versions without an audit entry, as a script would."""
    return None if who.subject == "system" else who.subject
