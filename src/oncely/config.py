"""Server configuration: defaults, then an optional TOML file, then ``ONCELY_*`` environment
variables, then command-line flags (applied by the CLI). Later sources win.

Everything that widens what jobs may do (shell, private networks, SQL connections) is off
or empty by default and can only be set here, by whoever runs the server, never by a job.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from oncely.domain.errors import InvalidInput
from oncely.ports.actions import ActionSettings


@dataclass(frozen=True)
class Settings:
    store: str = "sqlite:///oncely.db"
    host: str = "127.0.0.1"
    port: int = 8080
    queues: Mapping[str, int] = field(default_factory=lambda: {"default": 10})
    allow_shell: bool = False
    http_allow_private: bool = False
    http_allowed_networks: tuple[str, ...] = ()
    sql_connections: Mapping[str, str] = field(default_factory=dict)
    lookahead: float = 5.0
    scheduler_lease_ttl: float = 2.5
    worker_lease_ttl: float = 30.0
    worker_prefetch: float = 0.5
    shutdown_grace: float = 30.0
    log_level: str = "INFO"
    metrics_jobs: tuple[str, ...] = ()
    log_format: str = "text"
    token_ttl: float = 900.0
    """Lifetime of an access token from ``POST /v1/auth/token``, in seconds."""
    login_attempts_per_user: int = 10
    """Failed logins per user name per ``login_window`` before 429 (per API process)."""
    login_attempts_per_address: int = 30
    """Logins per client address per ``login_window`` before 429 (per API process)."""
    login_window: float = 60.0
    notify: bool = True
    """Run the notification deliverer and dead-man's switch with the scheduler role."""
    notify_timeout: float = 10.0
    """Seconds a webhook delivery may take (Apprise channels get at least 30)."""

    def __post_init__(self) -> None:
        for name in ("lookahead", "scheduler_lease_ttl", "worker_lease_ttl"):
            if not 0 < getattr(self, name) <= 3600:
                raise InvalidInput(f"{name} must be in (0, 3600] seconds")
        if not 0 <= self.worker_prefetch <= min(5.0, self.worker_lease_ttl / 3):
            raise InvalidInput(
                "worker_prefetch must be between 0 and 5 s (and a third of the lease)"
            )
        if self.shutdown_grace < 0:
            raise InvalidInput("shutdown_grace must not be negative")
        if not 10 <= self.token_ttl <= 86_400:
            raise InvalidInput("token_ttl must be between 10 s and one day", field="token_ttl")
        if self.login_attempts_per_user < 1 or self.login_attempts_per_address < 1:
            raise InvalidInput("login attempt limits must be at least 1", field="login_attempts")
        if not 1 <= self.login_window <= 86_400:
            raise InvalidInput("login_window must be between 1 s and one day", field="login_window")

    def action_settings(self) -> ActionSettings:
        return ActionSettings(
            allow_shell=self.allow_shell,
            http_allow_private=self.http_allow_private,
            http_allowed_networks=self.http_allowed_networks,
            sql_connections=dict(self.sql_connections),
        )


def parse_queues(text: str, default_concurrency: int = 10) -> dict[str, int]:
    """``"default,heavy=2"`` -> ``{"default": 10, "heavy": 2}``."""
    queues: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, limit = part.partition("=")
        try:
            value = int(limit) if limit else default_concurrency
        except ValueError:
            raise InvalidInput(f"queue {name!r}: concurrency {limit!r} is not a number") from None
        if value < 1:
            raise InvalidInput(f"queue {name!r}: concurrency must be at least 1")
        queues[name.strip()] = value
    if not queues:
        raise InvalidInput("at least one queue is needed")
    return queues


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise InvalidInput(f"{name}: expected true or false, got {text!r}")


def _parse_mapping(name: str, text: str) -> dict[str, str]:
    """JSON object, or ``name=url,name=url``."""
    text = text.strip()
    if text.startswith("{"):
        value = json.loads(text)
        if not isinstance(value, dict):
            raise InvalidInput(f"{name}: expected a JSON object")
        return {str(k): str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise InvalidInput(f"{name}: expected name=value, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _coerce(name: str, current: Any, value: Any) -> Any:
    if isinstance(current, bool):
        return value if isinstance(value, bool) else _parse_bool(name, str(value))
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple):
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return tuple(value)
    if name == "queues":
        if isinstance(value, str):
            return parse_queues(value)
        return {str(k): int(v) for k, v in value.items()}
    if name == "sql_connections":
        return _parse_mapping(name, value) if isinstance(value, str) else dict(value)
    return str(value)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from the file (``ONCELY_CONFIG`` if not given), the environment and
    explicit overrides (``None`` values are ignored)."""
    env = os.environ if env is None else env
    settings = Settings()
    names = {f.name for f in fields(Settings)}
    config_file = config_file or env.get("ONCELY_CONFIG")
    if config_file:
        path = Path(config_file)
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"cannot read config file {path}: {exc}") from exc
        section = data.get("oncely", data)
        unknown = set(section) - names
        if unknown:
            raise InvalidInput(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        settings = replace(
            settings, **{k: _coerce(k, getattr(settings, k), v) for k, v in section.items()}
        )
    from_env = {
        name: _coerce(name, getattr(settings, name), env[f"ONCELY_{name.upper()}"])
        for name in names
        if f"ONCELY_{name.upper()}" in env
    }
    settings = replace(settings, **from_env)
    explicit = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(explicit) - names
    if unknown:
        raise TypeError(f"unknown settings {unknown}")
    return replace(
        settings, **{k: _coerce(k, getattr(settings, k), v) for k, v in explicit.items()}
    )
