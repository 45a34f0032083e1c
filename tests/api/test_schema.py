"""schemathesis against the live ``/openapi.json``: generated requests to every /v1 job, run
and preview operation get no 5xx and answers that match the published schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")  # a test dependency (pyproject [test])

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from tests.api.conftest import build, serve  # noqa: E402


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
    assert len(tested) == 19, tested  # with the two /v1/jobs/{job_id}/backfills operations
