"""Errors the domain raises. Each carries a message meant for the person who gave the input."""

from __future__ import annotations


class OncelyError(Exception):
    """Base class of every error oncely raises on purpose."""


class InvalidInput(OncelyError, ValueError):
    """Input that can never be accepted: an invalid cron, an unknown time zone, a bad URL...

    ``field`` names the part of the input that is wrong, so the API can point at it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(OncelyError, LookupError):
    """The job or run does not exist, or belongs to another owner (the two are not told apart)."""


class Conflict(OncelyError):
    """The request contradicts the stored state: a duplicate job name, a run that ended."""


class StoreUnavailable(OncelyError):
    """The store could not be reached (the database is down, restarting or unreachable):
    worth retrying, unlike a wrong URL or a schema the process may not use."""


class PermissionDenied(OncelyError):
    """The caller's role does not allow this (a viewer changing a job, a user creating a
    shell action). Never raised for another owner's job or run: those are ``NotFound``."""
