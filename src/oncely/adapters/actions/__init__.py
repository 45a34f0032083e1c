"""Executors for HTTP, shell and SQL actions (see ``oncely.ports.actions.ActionExecutor``)."""

from oncely.adapters.actions.http import HttpExecutor
from oncely.adapters.actions.netguard import (
    BlockedAddress,
    check_address,
    classify_address,
    validate_http_target,
)
from oncely.adapters.actions.shell import ShellExecutor
from oncely.adapters.actions.sql import SqlExecutor

__all__ = [
    "BlockedAddress",
    "HttpExecutor",
    "ShellExecutor",
    "SqlExecutor",
    "check_address",
    "classify_address",
    "validate_http_target",
]
