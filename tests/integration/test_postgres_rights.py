"""The database rights docs/postgresql.md gives the oncely role are enough, and no more is
needed: a role that is not a superuser, cannot create databases or roles, has no CREATE on
the database and owns only its schema migrates it, runs jobs end to end (scheduler, worker,
retention) and cannot touch another schema."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

import oncely
from oncely.config import Settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def oncely_role(pg_url: str) -> Iterator[tuple[str, str]]:
    """A login role and a schema it owns, made as docs/postgresql.md says; dropped after."""
    suffix = uuid.uuid4().hex[:10]
    role, schema = f"oncely_role_{suffix}", f"oncely_rights_{suffix}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION'
        )
        admin.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"')
        admin.execute(f'REVOKE CREATE ON SCHEMA public FROM "{role}"')
    try:
        yield role, schema
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_schema_owner_role_is_enough(pg_url: str, oncely_role: tuple[str, str]) -> None:
    role, schema = oncely_role
    url = pg_url.replace("postgres@", f"{role}@", 1) + f"?schema={schema}"
    app = oncely.App(
        settings=Settings(
            store=url, shutdown_grace=1, retention_succeeded=1, retention_interval=0.5
        )
    )
    ran: list[str] = []

    @app.task("tick")
    def tick(ctx: oncely.TaskContext) -> None:
        ran.append(ctx.run_id)

    app.add_job("every second", cron="* * * * * *", task="tick")
    run = app.trigger("every second")

    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(app.run_async(stop=stop))
        deadline = time.monotonic() + 15
        while len(ran) < 4 and time.monotonic() < deadline and not runner.done():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # a retention pass under the role's rights
        stop.set()
        await runner

    asyncio.run(main())
    assert run.id in ran and len(ran) >= 4
    app.close()
    with psycopg.connect(pg_url.replace("postgres@", f"{role}@", 1), autocommit=True) as conn:
        current = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert current == (role, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.oncely_should_not_exist (x int)")
