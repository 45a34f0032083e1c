"""Server configuration: one model (pydantic-settings), validated when the process starts.

Sources, later ones winning: defaults, a TOML file (``--config FILE`` or ``ONCELY_CONFIG``;
keys at top level or under ``[oncely]``), environment variables ``ONCELY_<NAME>``, then
command-line flags (the CLI passes them as overrides). ``load_settings`` reads them all and
remembers where each value came from (``Settings.origins``, shown by ``oncely config show``).
A ``Settings(...)`` built in code takes only what it is given: it never reads the
environment behind a test's or a script's back.

Every value is validated at start: a bad one stops the process with an error naming the
setting and where it came from (``ONCELY_PORT: port: ...``), before anything runs. Unknown
keys in the file are refused (a typo must not be silently ignored). Environment values keep
their simple forms: ``ONCELY_QUEUES=default,heavy=2``, ``ONCELY_HTTP_ALLOWED_NETWORKS=10.0.0.0/8,
fd00::/8``, ``ONCELY_SQL_CONNECTIONS=name=url,...`` (or a JSON object), booleans as
1/0/true/false/yes/no/on/off.

Everything that widens what jobs may do (shell, private networks, SQL connections) is off
or empty by default and can only be set here, by whoever runs the server, never by a job.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from oncely.domain.errors import InvalidInput
from oncely.ports.actions import ActionSettings

ENV_PREFIX = "ONCELY_"
SECRET_FIELDS = frozenset({"store", "sql_connections", "smtp_url"})
"""Settings whose values may carry passwords (URLs): masked by ``oncely config show``."""


class Settings(BaseSettings):
    """The effective configuration of one oncely process."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=True)

    store: str = "sqlite:///oncely.db"
    """``sqlite:///path.db`` or ``postgresql://user@host/db`` (``?schema=name``)."""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    queues: Mapping[str, int] = Field(default_factory=lambda: {"default": 10})
    allow_shell: bool = False
    http_allow_private: bool = False
    http_allowed_networks: tuple[str, ...] = ()
    sql_connections: Mapping[str, str] = Field(default_factory=dict)
    lookahead: float = Field(default=5.0, gt=0, le=3600)
    scheduler_lease_ttl: float = Field(default=2.5, gt=0, le=3600)
    worker_lease_ttl: float = Field(default=30.0, gt=0, le=3600)
    worker_prefetch: float = Field(default=0.5, ge=0, le=5.0)
    shutdown_grace: float = Field(default=30.0, ge=0)
    startup_store_wait: float = Field(default=300.0, ge=0, le=86_400)
    """Seconds a starting process waits for an unreachable store (retrying with a capped
    backoff) before it exits with an error; 0 exits at once."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_jobs: tuple[str, ...] = ()
    """Job names that get per-job metric series (a bounded list: labels must stay few)."""
    metrics_public: bool = False
    """Serve ``/metrics`` without a credential. Off by default: the figures count every
    owner's runs, so a scraper presents an admin's API key unless the port is private."""
    token_ttl: float = Field(default=900.0, ge=10, le=86_400)
    """Lifetime of an access token from ``POST /v1/auth/token``, in seconds."""
    login_attempts_per_user: int = Field(default=10, ge=1)
    """Failed logins per user name per ``login_window`` before 429 (per API process)."""
    login_attempts_per_address: int = Field(default=30, ge=1)
    """Logins per client address per ``login_window`` before 429 (per API process)."""
    login_window: float = Field(default=60.0, ge=1, le=86_400)
    retention: bool = True
    """Run the retention service (deletes old finished runs) with the scheduler role."""
    retention_succeeded: float = Field(default=7 * 86400, ge=0)
    """Seconds succeeded runs are kept (0: forever). A job's ``retention`` replaces it."""
    retention_skipped: float = Field(default=7 * 86400, ge=0)
    retention_missed: float = Field(default=30 * 86400, ge=0)
    retention_cancelled: float = Field(default=30 * 86400, ge=0)
    retention_batch: int = Field(default=1000, ge=1, le=100_000)
    """Runs deleted per statement at most."""
    retention_interval: float = Field(default=60.0, gt=0, le=86400)
    """Seconds between two retention passes."""
    notify: bool = True
    """Run the notification deliverer and dead-man's switch with the scheduler role."""
    notify_timeout: float = Field(default=10.0, gt=0, le=600)
    """Seconds a webhook delivery may take (Apprise channels get at least 30)."""
    smtp_url: str | None = None
    """The relay of ``email`` actions: ``smtp://host:25``, ``smtp+starttls://user:pass@host:587``
    or ``smtps://user:pass@host:465``. None: email actions are refused."""
    smtp_from: str | None = None
    """The sender address of ``email`` actions."""

    _origins: dict[str, str] = PrivateAttr(default_factory=dict)
    _error_origins: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _invalid(exc, type(self)._error_origins) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Built in code: only what it is given (``load_settings`` adds the file and env).
        return (init_settings,)

    # -- parsing the simple text forms (environment, flags) ---------------------------------

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("allow_shell", "http_allow_private", "notify", "retention", mode="before")
    @classmethod
    def _boolean(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        return value

    @field_validator("http_allowed_networks", "metrics_jobs", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("queues", mode="before")
    @classmethod
    def _queues(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_queues(value)
        if isinstance(value, Mapping) and not value:
            raise ValueError("at least one queue is needed")
        return value

    @field_validator("queues", mode="after")
    @classmethod
    def _queue_limits(cls, value: Mapping[str, int]) -> Mapping[str, int]:
        for name, limit in value.items():
            if not name or limit < 1:
                raise ValueError(f"queue {name!r}: concurrency must be at least 1")
        return dict(value)

    @field_validator("sql_connections", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return _parse_mapping(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.worker_prefetch > self.worker_lease_ttl / 3:
            raise ValueError("worker_prefetch must be at most a third of worker_lease_ttl")
        return self

    # -- uses -----------------------------------------------------------------------------

    def action_settings(self) -> ActionSettings:
        return ActionSettings(
            allow_shell=self.allow_shell,
            http_allow_private=self.http_allow_private,
            http_allowed_networks=self.http_allowed_networks,
            sql_connections=dict(self.sql_connections),
            smtp_url=self.smtp_url,
            smtp_from=self.smtp_from,
        )

    def origin(self, name: str) -> str:
        """Where the effective value of ``name`` came from: ``default``, ``file PATH``,
        ``env ONCELY_NAME`` or ``flag`` (set by ``load_settings``)."""
        return self._origins.get(name, "default")


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


def _parse_mapping(text: str) -> dict[str, str]:
    """JSON object, or ``name=url,name=url``."""
    text = text.strip()
    if text.startswith("{"):
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return {str(k): str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected name=value, got {part!r}")
        out[key.strip()] = value.strip()
    return out


# -- loading --------------------------------------------------------------------------------


class _Given(PydanticBaseSettingsSource):
    """Values already gathered (from a file, the environment or flags), as a source."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self.values = dict(values)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def _file_values(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read config file {path}: {exc}", field="config") from exc
    section = data.get("oncely", data)
    if not isinstance(section, dict):
        raise InvalidInput(f"{path}: [oncely] must be a table", field="config")
    unknown = set(section) - set(Settings.model_fields)
    if unknown:
        raise InvalidInput(
            f"{path}: unknown settings {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    return dict(section)


def _env_values(env: Mapping[str, str]) -> dict[str, str]:
    return {
        name: env[ENV_PREFIX + name.upper()]
        for name in Settings.model_fields
        if ENV_PREFIX + name.upper() in env
    }


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from the file (``ONCELY_CONFIG`` if not given), the environment and
    explicit overrides (``None`` values are ignored). ``InvalidInput`` names the setting and
    its source when a value is bad."""
    env = os.environ if env is None else env
    explicit = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(explicit) - set(Settings.model_fields)
    if unknown:
        raise TypeError(f"unknown settings {unknown}")
    config_file = config_file or env.get(ENV_PREFIX + "CONFIG")
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_file:
        layers.append((f"file {config_file}", _file_values(Path(config_file))))
    layers.append(("env", _env_values(env)))
    layers.append(("flag", explicit))
    origins: dict[str, str] = {}
    for label, values in layers:
        for name in values:
            origins[name] = f"env {ENV_PREFIX}{name.upper()}" if label == "env" else label

    class _Loaded(Settings):
        _error_origins = origins

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return tuple(_Given(settings_cls, values) for _, values in reversed(layers))

    loaded = _Loaded()
    settings = Settings(**{name: getattr(loaded, name) for name in Settings.model_fields})
    settings._origins = origins
    return settings


def _invalid(exc: ValidationError, origins: Mapping[str, str]) -> InvalidInput:
    problems = []
    first: str | None = None
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "settings"
        first = first or name
        where = origins.get(name)
        prefix = f"{where}: " if where else ""
        problems.append(f"{prefix}{name}: {error['msg']}")
    return InvalidInput("invalid configuration: " + "; ".join(problems), field=first)
