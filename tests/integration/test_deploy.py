"""The deployment artefacts in deploy/: alert rules pass promtool's checks and unit tests,
and every metric the rules and the Grafana dashboard name is one oncely exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from oncely.adapters.sqlite.store import SqliteStore
from oncely.observe.metrics import ProcessView, RuntimeMetrics
from oncely.runtime.clock import SystemClock

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "oncely-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "oncely-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "oncely-dashboard.json"
NAME = re.compile(r"\boncely_[a-z_]+")
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (scripts/ensure-tools installs Debian's prometheus)")
    return found


def test_alert_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_alert_rules_unit_tests_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    defined = set(re.findall(r"alert: (\w+)", RULES.read_text()))
    assert tested == defined, "every alert has a unit test"


def exported_families(tmp_path: Path) -> set[str]:
    store = SqliteStore(str(tmp_path / "m.db"))
    store.migrate()
    metrics = RuntimeMetrics(
        probe=lambda: ProcessView("n1", ("scheduler", "worker"), 3, {"default": (1, 10)}),
        store=lambda: store,
        now=SystemClock().now,
    )
    text = metrics.exposition().decode()
    store.close()
    return {family.name for family in text_string_to_metric_families(text)}


def referenced(text: str) -> set[str]:
    names = set()
    for name in NAME.findall(text):
        for suffix in SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        names.add(name)
    return names


def test_rules_and_dashboard_name_only_exported_metrics(tmp_path: Path) -> None:
    exported = exported_families(tmp_path)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    exprs += " " + " ".join(
        v["definition"] for v in dashboard["templating"]["list"] if "definition" in v
    )
    for source, text in (("rules", RULES.read_text()), ("dashboard", exprs)):
        missing = referenced(text) - exported
        assert not missing, f"{source} name metrics oncely does not export: {sorted(missing)}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] == "oncely-overview"


COMPOSE = DEPLOY / "docker-compose.yml"


def compose_command() -> list[str]:
    """``docker compose`` (the plugin) or ``docker-compose`` (Debian's package)."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    pytest.skip(
        "neither `docker compose` nor `docker-compose` is installed "
        "(scripts/ensure-tools installs Debian's docker-compose)"
    )


def test_compose_file_is_valid_and_runs_the_cluster(tmp_path: Path) -> None:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    env["ONCELY_DB_PASSWORD"] = "s3cret-from-env"
    done = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == {
        "postgres", "migrate", "scheduler-1", "scheduler-2", "worker-1", "worker-2", "api",
    }  # fmt: skip
    for name in ("scheduler-1", "scheduler-2", "worker-1", "worker-2", "api", "migrate"):
        service = services[name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        store = service["environment"]["ONCELY_STORE"]
        assert store == "postgresql://oncely:s3cret-from-env@postgres:5432/oncely"
    assert services["scheduler-1"]["command"][0] == "scheduler"
    assert services["worker-2"]["command"][0] == "worker"
    assert services["api"]["command"][0] == "api"
    assert services["migrate"]["command"] == ["db", "migrate"]
    assert (DEPLOY.parent / "Dockerfile").is_file()


def test_systemd_units_name_real_commands() -> None:
    import configparser

    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string(unit.read_text())
        assert parser["Service"]["EnvironmentFile"] == "/etc/oncely/oncely.env", unit.name
        command = parser["Service"]["ExecStart"].split()
        assert command[0].endswith("/oncely") and command[1] in ("scheduler", "worker", "api")
        assert float(parser["Service"]["TimeoutStopSec"]) > 0
    env = (DEPLOY / "systemd" / "oncely.env").read_text()
    assert "ONCELY_STORE=" in env
