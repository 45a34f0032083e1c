"""The REST API, role by role: every endpoint for admin, user and viewer; a second user
reaching for the first user's jobs and runs by id (404, never 403 or data); fields a caller
may not set; SSRF targets; shell for non-admins; hostile bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oncely.api.auth import route_rules
from tests.api.conftest import Rest, build

JOB = {"name": "nightly", "every": "1h", "task": "report", "payload": {"to": "a@example.com"}}


def make_job(rest: Rest, user: str = "alice", **kw: Any) -> dict[str, Any]:
    r = rest.call(user, "POST", "/v1/jobs", json={**JOB, **kw})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_every_v1_route_needs_a_credential_and_declares_a_permission(rest: Rest) -> None:
    rules = route_rules(rest.asgi)
    v1 = {k: v for k, v in rules.items() if " /v1/" in k and "/v1/auth/token" not in k}
    assert len(v1) >= 18
    assert all(rule and rule != "public" for rule in v1.values()), v1
    job = make_job(rest)
    for route in v1:
        methods, path = route.split(" ", 1)
        if "/v1/auth" in path or "/v1/users" in path or "/v1/audit" in path:
            continue
        url = path.replace("{job_id}", job["id"]).replace("{run_id}", job["id"])
        for method in methods.split(","):
            r = rest.call(None, method, url, json={})
            assert r.status_code == 401, (method, url, r.status_code)
            bad = rest.http.request(method, url, headers={"Authorization": "Bearer nope"}, json={})
            assert bad.status_code == 401, (method, url)


def test_user_manages_its_jobs_and_runs_end_to_end(rest: Rest) -> None:
    job = make_job(rest)
    assert job["owner"] == "alice" and job["payload"] == {"to": "a@example.com"}
    assert job["schedule"]["description"] == "every 1h"
    jid = job["id"]
    assert rest.call("alice", "GET", f"/v1/jobs/{jid}").json()["name"] == "nightly"
    patched = rest.call("alice", "PATCH", f"/v1/jobs/{jid}", json={"retries": 0, "queue": "q2"})
    assert patched.status_code == 200 and patched.json()["policy"]["max_retries"] == 0
    assert patched.json()["version"] == 2 and patched.json()["policy"]["queue"] == "q2"
    paused = rest.call("alice", "POST", f"/v1/jobs/{jid}/pause", json={"reason": "db upgrade"})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert rest.call("alice", "POST", f"/v1/jobs/{jid}/resume").json()["paused"] is False
    run = rest.call("alice", "POST", f"/v1/jobs/{jid}/trigger")
    assert run.status_code == 201 and run.json()["manual"] is True
    rid = run.json()["id"]
    assert run.json()["state"] == "queued" and run.json()["job"] == "nightly"
    listed = rest.call("alice", "GET", f"/v1/jobs/{jid}/runs").json()
    assert [r["id"] for r in listed["items"]] == [rid] and listed["next_cursor"] is None
    across = rest.call("alice", "GET", "/v1/runs", params={"state": ["queued"]}).json()
    assert [r["id"] for r in across["items"]] == [rid]
    detail = rest.call("alice", "GET", f"/v1/runs/{rid}").json()
    assert detail["attempts"] == [] and detail["id"] == rid
    assert rest.call("alice", "POST", f"/v1/runs/{rid}/requeue").status_code == 409  # not dead
    cancelled = rest.call("alice", "POST", f"/v1/runs/{rid}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert rest.call("alice", "POST", f"/v1/runs/{rid}/cancel").status_code == 409
    listed_jobs = rest.call("alice", "GET", "/v1/jobs", params={"last_outcome": "cancelled"})
    assert [j["id"] for j in listed_jobs.json()["items"]] == [jid]
    bulk = rest.call("alice", "POST", "/v1/runs/bulk/requeue", json={"filter": {"job_id": jid}})
    assert bulk.status_code == 200 and bulk.json() == {"count": 0}
    assert rest.call("alice", "DELETE", f"/v1/jobs/{jid}").status_code == 204
    assert rest.call("alice", "GET", f"/v1/jobs/{jid}").status_code == 404
    assert rest.call("alice", "GET", f"/v1/runs/{rid}").status_code == 200  # history stays


def test_viewer_reads_but_changes_nothing(rest: Rest) -> None:
    job = make_job(rest)
    jid = job["id"]
    run = rest.call("alice", "POST", f"/v1/jobs/{jid}/trigger").json()
    assert rest.call("vera", "GET", f"/v1/jobs/{jid}").status_code == 200
    assert rest.call("vera", "GET", f"/v1/runs/{run['id']}").status_code == 200
    assert len(rest.call("vera", "GET", "/v1/jobs").json()["items"]) == 1
    preview = rest.call("vera", "POST", "/v1/preview", json={"cron": "0 9 * * *"})
    assert preview.status_code == 200
    for method, path, body in (
        ("POST", "/v1/jobs", {**JOB, "name": "v"}),
        ("PATCH", f"/v1/jobs/{jid}", {"retries": 1}),
        ("DELETE", f"/v1/jobs/{jid}", None),
        ("POST", f"/v1/jobs/{jid}/pause", None),
        ("POST", f"/v1/jobs/{jid}/resume", None),
        ("POST", f"/v1/jobs/{jid}/trigger", None),
        ("POST", "/v1/jobs/bulk/pause", {}),
        ("POST", "/v1/jobs/bulk/resume", {}),
        ("POST", f"/v1/runs/{run['id']}/cancel", None),
        ("POST", f"/v1/runs/{run['id']}/requeue", None),
        ("POST", "/v1/runs/bulk/requeue", {}),
    ):
        r = rest.call("vera", method, path, json=body)
        assert r.status_code == 403, (method, path, r.status_code)
    after = rest.call("alice", "GET", f"/v1/jobs/{jid}").json()
    assert after["version"] == job["version"] and not after["paused"]


def test_a_second_user_cannot_reach_the_first_user_s_jobs_or_runs(rest: Rest) -> None:
    job = make_job(rest)
    jid = job["id"]
    rid = rest.call("alice", "POST", f"/v1/jobs/{jid}/trigger").json()["id"]
    for method, path, body in (
        ("GET", f"/v1/jobs/{jid}", None),
        ("PATCH", f"/v1/jobs/{jid}", {"retries": 0}),
        ("DELETE", f"/v1/jobs/{jid}", None),
        ("POST", f"/v1/jobs/{jid}/pause", None),
        ("POST", f"/v1/jobs/{jid}/resume", None),
        ("POST", f"/v1/jobs/{jid}/trigger", None),
        ("GET", f"/v1/jobs/{jid}/runs", None),
        ("GET", f"/v1/runs/{rid}", None),
        ("POST", f"/v1/runs/{rid}/cancel", None),
        ("POST", f"/v1/runs/{rid}/requeue", None),
    ):
        r = rest.call("bob", method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
        assert "nightly" not in r.text and "alice" not in r.text
    # Lists and bulk actions stay in bob's scope: no data, no counts.
    assert rest.call("bob", "GET", "/v1/jobs").json() == {"items": [], "next_cursor": None}
    assert rest.call("bob", "GET", "/v1/runs").json()["items"] == []
    assert rest.call("bob", "GET", "/v1/runs", params={"job_id": jid}).json()["items"] == []
    assert rest.call("bob", "GET", "/v1/jobs", params={"owner": "alice"}).json()["items"] == []
    assert rest.call("bob", "POST", "/v1/jobs/bulk/pause", json={}).json() == {"count": 0}
    # Nothing changed for alice.
    after = rest.call("alice", "GET", f"/v1/jobs/{jid}").json()
    assert after["version"] == 1 and not after["paused"]
    assert rest.call("alice", "GET", f"/v1/runs/{rid}").json()["state"] == "queued"
    # The admin sees every owner's, or one owner's.
    everyone = rest.call("root", "GET", "/v1/jobs").json()["items"]
    assert [j["owner"] for j in everyone] == ["alice"]
    assert rest.call("root", "GET", "/v1/jobs", params={"owner": "bob"}).json()["items"] == []
    assert rest.call("root", "GET", f"/v1/runs/{rid}").status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("owner", "bob"),
        ("version", 9),
        ("state", "running"),
        ("token", 5),
        ("id", "01a23fe8-c8a8-7197-9cda-403d5aac7be8"),
        ("next_fire_at", "2030-01-01T00:00:00Z"),
        ("created_at", "2030-01-01T00:00:00Z"),
    ],
)
def test_fields_a_caller_may_not_set_are_refused(rest: Rest, field: str, value: Any) -> None:
    r = rest.call("alice", "POST", "/v1/jobs", json={**JOB, field: value})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    job = make_job(rest)
    r = rest.call("alice", "PATCH", f"/v1/jobs/{job['id']}", json={field: value})
    assert r.status_code == 422 and r.json()["error"]["field"] == field
    assert rest.call("alice", "GET", f"/v1/jobs/{job['id']}").json()["version"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://10.0.0.5/x",
        "http://192.168.1.1/x",
        "http://0.0.0.0/x",
        "http://2130706433/x",
        "file:///etc/passwd",
        "gopher://example.com/x",
    ],
)
def test_http_actions_to_internal_targets_are_refused(rest: Rest, url: str) -> None:
    r = rest.call("alice", "POST", "/v1/jobs", json={**JOB, "task": None, "http": url})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"].startswith("http")
    r = rest.call("root", "POST", "/v1/jobs", json={**JOB, "task": None, "http": {"url": url}})
    assert r.status_code == 422
    job = make_job(rest, name="later")
    r = rest.call("alice", "PATCH", f"/v1/jobs/{job['id']}", json={"http": url})
    assert r.status_code == 422
    assert rest.call("alice", "GET", f"/v1/jobs/{job['id']}").json()["action"]["kind"] == "python"


def test_shell_and_sql_are_refused_for_non_admins(rest: Rest, tmp_path: Path) -> None:
    shell = {**JOB, "task": None, "shell": ["echo", "hi"]}
    r = rest.call("alice", "POST", "/v1/jobs", json=shell)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    sql = {**JOB, "task": None, "sql": {"connection": "main", "statement": "select 1"}}
    assert rest.call("alice", "POST", "/v1/jobs", json=sql).status_code == 403
    job = make_job(rest)
    r = rest.call("alice", "PATCH", f"/v1/jobs/{job['id']}", json={"shell": ["id"]})
    assert r.status_code == 403
    admin = rest.call("root", "POST", "/v1/jobs", json=shell)
    assert admin.status_code == 201 and admin.json()["action"]["argv"] == ["echo", "hi"]
    # A server that does not enable shell refuses it even to admins: its rule, not the CLI's.
    app, asgi, keys = build(tmp_path / "off")
    with TestClient(asgi) as http:
        r = http.post("/v1/jobs", json=shell, headers={"Authorization": f"Bearer {keys['root']}"})
    assert r.status_code == 422 and "shell actions are disabled" in r.json()["error"]["message"]
    app.close()


def test_hostile_input_gets_clear_errors_and_changes_nothing(rest: Rest) -> None:
    def post(body: Any = None, **kw: Any) -> Any:
        return rest.call("alice", "POST", "/v1/jobs", json=body, **kw)

    big = post({**JOB, "payload": "x" * (2 * 1024 * 1024)})
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    r = post({**JOB, "payload": "x" * (300 * 1024)})
    assert r.status_code == 422 and r.json()["error"]["field"] == "payload"
    r = rest.call(
        "alice",
        "POST",
        "/v1/jobs",
        content=b"{not json",
        headers={**rest.as_("alice"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    r = post({**JOB, "name": "n" * 500})
    assert r.status_code == 422 and r.json()["error"]["field"] == "name"
    r = post({**JOB, "every": None, "cron": "0 25 * * *"})
    assert r.status_code == 422 and "25" in r.json()["error"]["message"]
    r = post({**JOB, "every": None, "cron": "0 9 * * *", "timezone": "Mars/Olympus"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "timezone"
    r = post({**JOB, "http": "https://example.com"})
    assert r.status_code == 422 and "exactly one" in r.json()["error"]["message"]
    r = post({**JOB, "retries": "many"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "retries"
    r = post({**JOB, "name": "01a23fe8-c8a8-7197-9cda-403d5aac7be8"})
    assert r.status_code == 422 and "look like an id" in r.json()["error"]["message"]
    r = post(
        {**JOB, "http": {"url": "https://example.com", "headers": {"X": "a\r\nB: c"}}, "task": None}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "http.headers"
    assert rest.call("alice", "GET", "/v1/jobs", params={"cursor": "garbage"}).status_code == 422
    r = rest.call("alice", "GET", "/v1/jobs", params={"limit": 10_000})
    assert r.status_code == 422 and r.json()["error"]["field"] == "limit"
    assert rest.call("alice", "GET", "/v1/jobs/not-an-id").status_code == 404
    assert rest.call("alice", "GET", "/v1/jobs").json()["items"] == []


def test_unexpected_errors_say_nothing_about_the_server(rest: Rest) -> None:
    rest.app.store.close()  # every store call now fails inside the server
    r = rest.call("alice", "GET", "/v1/jobs")
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "code": "internal",
            "message": "internal error; the server log has the details",
            "field": None,
        }
    }
    assert "Traceback" not in r.text and "sqlite" not in r.text.lower()


def test_one_time_short_shape_and_replace(rest: Rest) -> None:
    r = rest.call(
        "alice",
        "POST",
        "/v1/jobs",
        json={
            "job_type": "email_send",
            "schedule_time": "2030-01-01T09:00:00Z",
            "payload": {"to": "x@example.com"},
            "retries": 3,
        },
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["schedule"]["kind"] == "at" and job["action"] == {
        **job["action"],
        "kind": "python",
        "task": "email_send",
    }
    assert job["next_fire_at"] == "2030-01-01T09:00:00Z" and job["policy"]["max_retries"] == 3
    r = rest.call("alice", "POST", "/v1/jobs", json={"job_type": "x", "schedule_time": "soon"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "schedule_time"
    make_job(rest)
    assert rest.call("alice", "POST", "/v1/jobs", json=JOB).status_code == 409
    again = rest.call(
        "alice", "POST", "/v1/jobs", params={"replace": True}, json={**JOB, "every": "2h"}
    )
    assert again.status_code == 201 and again.json()["version"] == 2


def test_lists_filter_and_page_with_cursors(rest: Rest) -> None:
    for i in range(7):
        make_job(rest, name=f"job {i}", queue="heavy" if i % 2 else "default")
    make_job(rest, name="ping", task=None, http="https://example.com/ping")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "name_contains": "JOB"}
        if cursor:
            params["cursor"] = cursor
        page = rest.call("alice", "GET", "/v1/jobs", params=params).json()
        seen += [j["name"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"job {i}" for i in range(7)]
    heavy = rest.call("alice", "GET", "/v1/jobs", params={"queue": "heavy"}).json()["items"]
    assert [j["name"] for j in heavy] == ["job 1", "job 3", "job 5"]
    http = rest.call("alice", "GET", "/v1/jobs", params={"action_kind": "http"}).json()["items"]
    assert [j["name"] for j in http] == ["ping"]
    r = rest.call(
        "alice", "POST", "/v1/jobs/bulk/pause", json={"filter": {"queue": "heavy"}, "reason": "x"}
    )
    assert r.json() == {"count": 3}
    paused = rest.call("alice", "GET", "/v1/jobs", params={"paused": True}).json()["items"]
    assert len(paused) == 3
    assert rest.call("alice", "POST", "/v1/jobs/bulk/resume", json={}).json() == {"count": 3}
    # Runs page newest first.
    jid = heavy[0]["id"]
    made = [rest.call("alice", "POST", f"/v1/jobs/{jid}/trigger").json()["id"] for _ in range(5)]
    pages: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = rest.call("alice", "GET", f"/v1/jobs/{jid}/runs", params=params).json()
        pages += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(pages) == sorted(made) and len(pages) == 5


def test_schedule_preview_flags_dst_and_names_bad_tokens(rest: Rest) -> None:
    r = rest.call(
        "alice",
        "POST",
        "/v1/preview",
        json={
            "cron": "30 2 * * *",
            "timezone": "Europe/Paris",
            "count": 3,
            "after": "2030-03-29T12:00:00Z",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["description"] and body["timezone"] == "Europe/Paris"
    flagged = [f for f in body["fires"] if f["dst"]]
    assert flagged and flagged[0]["dst"] == "shifted" and flagged[0]["note"]
    assert flagged[0]["utc"].startswith("2030-03-31T01:00")
    r = rest.call("alice", "POST", "/v1/preview", json={"cron": "61 * * * *"})
    assert r.status_code == 422 and "61" in r.json()["error"]["message"]
    assert r.json()["error"]["field"] == "cron"
    r = rest.call(
        "alice", "POST", "/v1/preview", json={"cron": "* * * * *", "timezone": "Nowhere/X"}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "timezone"


def test_trigger_with_a_payload_override_runs_with_it(rest: Rest) -> None:
    from tests.integration.test_app_embedded import run_until

    seen: list[Any] = []

    @rest.app.task("report")
    def report(ctx: Any) -> None:
        seen.append(ctx.payload)

    job = make_job(rest)
    jid = job["id"]
    own = rest.call("alice", "POST", f"/v1/jobs/{jid}/trigger", json={"payload": {"to": "b"}})
    assert own.status_code == 201, own.text
    plain = rest.call("alice", "POST", f"/v1/jobs/{jid}/trigger")
    assert plain.status_code == 201
    big = rest.call("alice", "POST", f"/v1/jobs/{jid}/trigger", json={"payload": "x" * 300_000})
    assert big.status_code == 422 and big.json()["error"]["field"] == "payload"
    bad = rest.call("alice", "POST", f"/v1/jobs/{jid}/trigger", json={"payload": 1, "when": "now"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "when"
    run_until(rest.app, lambda: len(seen) >= 2)
    assert sorted(seen, key=str) == sorted([{"to": "b"}, {"to": "a@example.com"}], key=str)
    assert rest.call("alice", "GET", f"/v1/jobs/{jid}").json()["payload"] == {"to": "a@example.com"}


def test_cluster_status_is_for_admins_and_shows_the_running_process(rest: Rest) -> None:
    from tests.integration.test_app_embedded import run_until

    for user in ("alice", "vera"):
        assert rest.call(user, "GET", "/v1/cluster").status_code == 403
    idle = rest.call("root", "GET", "/v1/cluster")
    assert idle.status_code == 200, idle.text
    body = idle.json()
    assert body["shard_count"] == 64 and body["shards_held"] == 0
    assert len(body["unheld_shards"]) == 64 and body["members"] == []
    make_job(rest)
    rest.call("alice", "POST", f"/v1/jobs/{make_job(rest, name='other')['id']}/trigger")
    seen: dict[str, Any] = {}

    def running() -> bool:
        # Read through the API while the scheduler and worker run in this process.
        status = rest.call("root", "GET", "/v1/cluster").json()
        if status["members"] and status["shards_held"] == 64:
            seen.update(status)
        return bool(seen)

    run_until(rest.app, running, timeout=30)
    [member] = seen["members"]
    assert member["live"] and member["shards"] == 64 and "scheduler" in member["roles"]
    assert seen["unheld_shards"] == []
