"""schemathesis against the live ``/openapi.json`` for the authentication operations (login,
identity, users, API keys, audit): generated valid and invalid requests, as an admin (who may
call all of them), get no 5xx and answers that match the published schema."""

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
    tmp: Path = tmp_path_factory.mktemp("schemathesis-auth")
    app, asgi, keys = build(tmp)
    with serve(asgi) as url:
        # Something to page through and to find.
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


def test_auth_operations_match_their_schema_and_never_5xx(
    live_schema: schemathesis.BaseSchema,
) -> None:
    keys = live_schema.test_keys  # type: ignore[attr-defined]
    url = live_schema.test_url  # type: ignore[attr-defined]
    tested = []
    operations = live_schema.include(path_regex="^/v1/(auth|users|api-keys|audit)")
    for result in operations.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=url,
                # An API key: a generated password change of root cannot end it.
                headers={"Authorization": f"Bearer {keys['root']}"},
                checks=[not_a_server_error, response_schema_conformance],
                timeout=30,
            )

        check()
    assert sorted(tested) == sorted(
        [
            "POST /v1/auth/token",
            "GET /v1/auth/me",
            "GET /v1/users",
            "POST /v1/users",
            "GET /v1/users/{name}",
            "PATCH /v1/users/{name}",
            "GET /v1/api-keys",
            "POST /v1/api-keys",
            "DELETE /v1/api-keys/{key_id}",
            "GET /v1/audit",
        ]
    )
