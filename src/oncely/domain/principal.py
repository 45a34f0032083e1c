"""Who is calling, and what each role may do.

Every call into the service layer carries a ``Principal``. The rules here are the one place that
decides what a role may do; the service applies them, and every adapter (REST, CLI, ``App``)
only says who the caller is. Owners are isolated from each other: a non-admin principal is
confined to its own owner, and another owner's job or run is reported as absent, never as
forbidden (so ids cannot be probed).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    ADMIN = "admin"
    """Everything: every owner's jobs and runs, users, shell and SQL actions, the cluster."""
    USER = "user"
    """Reads and manages its own jobs and runs."""
    VIEWER = "viewer"
    """Reads its own jobs and runs; changes nothing."""


class Permission(enum.StrEnum):
    READ = "read"
    """Read jobs, runs, attempts and previews (confined to the owner unless admin)."""
    WRITE = "write"
    """Create, change, pause, trigger, delete jobs; cancel and requeue runs."""
    ADMIN = "admin"
    """Users, API keys of others, the audit log of every owner, privileged actions."""
    PRIVILEGED_ACTIONS = "privileged_actions"
    """Create or change jobs whose action runs code on the server (shell, SQL)."""


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.USER: frozenset({Permission.READ, Permission.WRITE}),
    Role.VIEWER: frozenset({Permission.READ}),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: ``subject`` names it (a user name, ``<user>:key:<prefix>`` for
    an API key, ``cli:<os user>``...), ``owner`` is the owner whose jobs it works on, ``role``
    what it may do."""

    subject: str
    owner: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in _GRANTS[self.role]

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def scope(self) -> str | None:
        """The owner every store query is confined to: ``None`` (every owner) for admins."""
        return None if self.is_admin else self.owner


def system_principal(owner: str = "default") -> Principal:
    """The process's own authority: the embedded ``App`` and the local CLI, which have the
    store's credentials and so could do anything anyway. Acts as ``owner`` by default."""
    return Principal(subject="system", owner=owner, role=Role.ADMIN)
