"""One configuration: defaults < TOML file < ONCELY_* environment < flags, validated at
start with errors naming the setting and its source; secrets masked when shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from oncely.config import Settings, load_settings
from oncely.domain.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]


def test_sources_in_order_with_origins(tmp_path: Path) -> None:
    conf = tmp_path / "oncely.toml"
    conf.write_text(
        '[oncely]\nstore = "postgresql://a@db/x"\nport = 9001\n'
        "queues = { default = 20, heavy = 2 }\n"
        'http_allowed_networks = ["10.20.0.0/16"]\nlookahead = 4\n'
    )
    env = {"ONCELY_PORT": "9002", "ONCELY_ALLOW_SHELL": "yes", "ONCELY_QUEUES": "default,io=3"}
    s = load_settings(conf, env, lookahead=3.0, host=None)
    assert s.store == "postgresql://a@db/x" and s.origin("store") == f"file {conf}"
    assert s.port == 9002 and s.origin("port") == "env ONCELY_PORT"
    assert s.allow_shell is True
    assert dict(s.queues) == {"default": 10, "io": 3}
    assert s.http_allowed_networks == ("10.20.0.0/16",)
    assert s.lookahead == 3.0 and s.origin("lookahead") == "flag"
    assert s.host == "127.0.0.1" and s.origin("host") == "default"


def test_config_file_named_by_environment_and_top_level_keys(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('sql_connections = { dw = "postgresql://etl@dw/x" }\nlog_format = "json"\n')
    s = load_settings(env={"ONCELY_CONFIG": str(conf)})
    assert dict(s.sql_connections) == {"dw": "postgresql://etl@dw/x"}
    assert s.log_format == "json"


def test_settings_built_in_code_never_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONCELY_PORT", "1234")
    assert Settings().port == 8080
    assert load_settings(env={}).port == 8080
    assert load_settings().port == 1234


@pytest.mark.parametrize(
    ("env", "field", "text"),
    [
        ({"ONCELY_PORT": "eighty"}, "port", "env ONCELY_PORT: port: Input should be a valid"),
        ({"ONCELY_PORT": "70000"}, "port", "port: Input should be less than or equal to 65535"),
        ({"ONCELY_ALLOW_SHELL": "perhaps"}, "allow_shell", "expected true or false"),
        ({"ONCELY_LOG_FORMAT": "xml"}, "log_format", "env ONCELY_LOG_FORMAT: log_format:"),
        ({"ONCELY_LOOKAHEAD": "0"}, "lookahead", "lookahead: Input should be greater than 0"),
        ({"ONCELY_QUEUES": "default=0"}, None, "concurrency must be at least 1"),
        ({"ONCELY_WORKER_PREFETCH": "4"}, "settings", "a third of worker_lease_ttl"),
    ],
)
def test_bad_values_name_the_setting_and_source(
    env: dict[str, str], field: str | None, text: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_settings(env={**env, "ONCELY_WORKER_LEASE_TTL": "9"})
    assert text in str(caught.value)
    if field is not None:
        assert caught.value.field == field


def test_unknown_or_unreadable_file_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text("[oncely]\nprot = 80\n")
    with pytest.raises(InvalidInput, match="unknown settings prot"):
        load_settings(conf, {})
    conf.write_text("port = \n")
    with pytest.raises(InvalidInput, match="cannot read config file"):
        load_settings(conf, {})


def test_config_show_masks_secrets_and_says_where_values_came_from(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "ONCELY_STORE": "postgresql://app:s3cret@db.internal/oncely",
        "ONCELY_SQL_CONNECTIONS": "dw=postgresql://etl:hunter2@dw/x",
    }
    done = subprocess.run(
        [sys.executable, "-m", "oncely.cli.main", "--log-format", "json", "config", "show"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "s3cret" not in out and "hunter2" not in out
    assert 'store = "postgresql://app:***@db.internal/oncely"  # env ONCELY_STORE' in out
    assert '"dw": "postgresql://etl:***@dw/x"' in out
    assert 'log_format = "json"  # flag' in out
    assert "port = 8080  # default" in out
    bad = subprocess.run(
        [sys.executable, "-m", "oncely.cli.main", "config", "show"],
        capture_output=True, text=True, env={**env, "ONCELY_PORT": "x"}, cwd=tmp_path,
        check=False, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "env ONCELY_PORT: port:" in bad.stderr
