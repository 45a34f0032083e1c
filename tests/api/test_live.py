"""The REST API over a real socket (uvicorn on loopback), and schemathesis against its live
``/openapi.json``: generated requests to every operation get no 5xx and answers that match
the published schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from oncely.client import Client
from oncely.domain.errors import InvalidInput, NotFound, PermissionDenied
from tests.api.conftest import Rest, build, serve


def test_isolation_and_limits_over_a_real_socket(live: Rest) -> None:
    job = live.call("alice", "POST", "/v1/jobs", json={"name": "n", "every": "1m", "task": "t"})
    assert job.status_code == 201
    jid = job.json()["id"]
    run = live.call("alice", "POST", f"/v1/jobs/{jid}/trigger").json()
    assert live.call("bob", "GET", f"/v1/jobs/{jid}").status_code == 404
    assert live.call("bob", "POST", f"/v1/jobs/{jid}/trigger").status_code == 404
    assert live.call("bob", "GET", f"/v1/runs/{run['id']}").status_code == 404
    assert live.call(None, "GET", "/v1/jobs").status_code == 401
    assert live.call(None, "GET", "/healthz").json() == {"status": "ok"}

    # A declared oversized body, and a chunked one with no length, are both refused.
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = live.call(
        "alice", "POST", "/v1/jobs", content=big, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    r = live.call(
        "alice", "POST", "/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert [j["name"] for j in live.call("alice", "GET", "/v1/jobs").json()["items"]] == ["n"]


def test_typed_client_against_a_live_server(live: Rest) -> None:
    url = str(live.http.base_url)
    with Client(url, token=live.keys["alice"]) as alice, Client(url, token=live.keys["bob"]) as bob:
        job = alice.create_job({"name": "report", "cron": "0 9 * * *", "task": "send"})
        assert job.schedule.expr == "0 9 * * *" and job.owner == "alice"
        run = alice.trigger_job(job.id)
        assert run.manual and alice.get_run(run.id).attempts == []
        assert [j.id for j in alice.iter_jobs(limit=1)] == [job.id]
        assert alice.find_job("report").id == job.id
        assert alice.update_job(job.id, {"retries": 1}).policy.max_retries == 1
        assert alice.pause_job(job.id, reason="test").paused
        with pytest.raises(NotFound):
            bob.get_job(job.id)
        with pytest.raises(NotFound):
            bob.find_job("report")
        with pytest.raises(PermissionDenied):
            bob.create_job({"name": "sh", "every": "1m", "shell": ["true"]})
        with pytest.raises(InvalidInput) as caught:
            alice.create_job({"name": "bad", "cron": "0 25 * * *", "task": "t"})
        assert caught.value.field == "cron"
        preview = alice.preview("0 9 * * MON-FRI", timezone="Europe/Paris", count=3)
        assert len(preview.fires) == 3
        alice.delete_job(job.id)
        assert alice.list_jobs().items == []


# -- schemathesis -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    app, asgi, keys = build(tmp, allow_shell=True)
    with serve(asgi) as url:
        # Something to find, so generated ids sometimes hit real rows.
        httpx.post(
            f"{url}/v1/jobs",
            json={"name": "seed", "every": "1h", "task": "t"},
            headers={"Authorization": f"Bearer {keys['alice']}"},
        ).raise_for_status()
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        schema.test_keys = keys  # type: ignore[attr-defined]
        schema.test_url = url  # type: ignore[attr-defined]
        yield schema
    app.close()


def test_api_answers_match_its_schema_and_never_5xx(live_schema: schemathesis.BaseSchema) -> None:
    """Every /v1 operation, with generated valid and invalid requests (as alice, a user)."""
    keys = live_schema.test_keys  # type: ignore[attr-defined]
    url = live_schema.test_url  # type: ignore[attr-defined]
    tested = []
    for result in live_schema.include(path_regex="^/v1/(jobs|runs|preview)").get_all_operations():
        operation = result.ok()
        tested.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=url,
                headers={"Authorization": f"Bearer {keys['alice']}"},
                checks=[not_a_server_error, response_schema_conformance],
                timeout=30,
            )

        check()
    assert len(tested) == 17, tested
