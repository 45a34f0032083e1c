"""The REST API and the typed client over a real socket (uvicorn on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from oncely.client import Client
from oncely.domain.errors import InvalidInput, NotFound, PermissionDenied
from tests.api.conftest import Rest


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


def test_oversized_request_heads_are_refused_by_the_server(live: Rest) -> None:
    huge = {"X-Filler": "x" * 200_000}
    try:
        r = live.call("alice", "GET", "/v1/jobs", headers=huge)
    except httpx.HTTPError:
        return  # the server closed the connection on the oversized head: refused too
    assert r.status_code in (400, 413, 431)


def test_async_client_against_a_live_server(live: Rest) -> None:
    import asyncio

    from oncely.client import AsyncClient

    async def main() -> None:
        url = str(live.http.base_url)
        async with AsyncClient(url, token=live.keys["alice"]) as alice:
            job = await alice.create_job({"name": "async", "every": "1h", "task": "t"})
            run = await alice.trigger_job(job.id, payload={"n": 1})
            assert run.manual and (await alice.get_run(run.id)).id == run.id
            page = await alice.list_runs(job_id=job.id)
            assert [r.id for r in page.items] == [run.id]
            assert (await alice.pause_job(job.id)).paused
            await alice.delete_job(job.id)
            with pytest.raises(NotFound):
                await alice.get_job(job.id)

    asyncio.run(main())
