"""The dashboard in a real browser against a real `oncely up`: logging in, making a job through
the form (and being told which cron token is wrong), watching it run live, pausing it,
triggering it with a payload, requeueing a dead run from the failures inbox, owner isolation,
and hostile names and output rendered inert under a strict CSP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.web.conftest import ADMIN, ADMIN_PASSWORD, SCREENSHOTS, USERS, Server

pytestmark = pytest.mark.timeout(180)


class Session:
    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.dialogs: list[str] = []
        self.responses: list[Any] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("response", lambda r: self.responses.append(r))


@pytest.fixture
def login(browser: Browser, server: Server) -> Iterator[Any]:
    opened: list[BrowserContext] = []

    def open_as(name: str, password: str) -> Session:
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        opened.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        session = Session(context, page)
        page.goto(server.url + "/")
        expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
        page.get_by_label("User name").fill(name)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        return session

    yield open_as
    for context in opened:
        context.close()


def create_job(page: Page, url: str, name: str, cron: str, task: str, **extra: str) -> str:
    page.goto(url + "/jobs/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Cron expression").fill(cron)
    page.get_by_label("Task name").fill(task)
    for label, value in extra.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Create job").click()
    expect(page.get_by_text("Job created.")).to_be_visible()
    match = re.search(r"/jobs/([0-9a-f-]{36})(?:\?|$)", page.url)
    assert match, page.url
    return match.group(1)


def test_login_refuses_a_wrong_password_and_sets_a_safe_cookie(
    browser: Browser, server: Server
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/jobs")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fjobs$"))
    page.get_by_label("User name").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    page.get_by_label("User name").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()  # back where it was sent
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["oncely_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert cookies["oncely_csrf"]["httpOnly"] and cookies["oncely_csrf"]["sameSite"] == "Strict"
    # Logging out ends the session: the pages send the browser back to the login form.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(server.url + "/jobs")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    context.close()


def test_a_form_without_the_csrf_token_is_refused(login: Any, server: Server) -> None:
    s = login(*("alice", USERS["alice"]))
    job_id = create_job(s.page, server.url, "csrf target", "0 3 * * *", "greet")
    # The session cookie is sent (same site), but a forged form lacks the token.
    forged = s.context.request.post(
        f"{server.url}/jobs/{job_id}/pause", form={"paused": "yes"}, max_redirects=0
    )
    assert forged.status == 403
    wrong = s.context.request.post(
        f"{server.url}/jobs/{job_id}/pause", form={"paused": "yes", "csrf": "0" * 64},
        max_redirects=0,
    )
    assert wrong.status == 403
    s.page.goto(f"{server.url}/jobs/{job_id}")
    expect(s.page.get_by_role("button", name="Pause")).to_be_visible()  # not paused


def test_create_watch_and_pause_a_job(login: Any, server: Server) -> None:
    s = login("alice", USERS["alice"])
    page = s.page
    page.goto(server.url + "/jobs/new")
    page.get_by_label("Name", exact=True).fill("heartbeat")
    cron = page.get_by_label("Cron expression")
    # The live preview follows the typing: a bad token is named as it is typed...
    cron.fill("*/2 * * * 61 *")
    expect(page.locator("#preview .preview-error")).to_contain_text("61")
    # ...and a good expression shows its next fires.
    cron.fill("*/2 * * * * *")
    expect(page.locator("#preview .preview-words")).to_contain_text("Every 2 seconds")
    expect(page.locator("#preview .fires li")).to_have_count(10)
    # Submitting a bad cron shows the error under the cron field, naming the token.
    cron.fill("0 25 * * *")
    page.get_by_label("Task name").fill("greet")
    page.get_by_role("button", name="Create job").click()
    error = page.locator("#cron-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("25")
    expect(cron).to_have_attribute("aria-invalid", "true")
    # Fixed, it is created and runs; the recent runs refresh without a reload.
    page.get_by_label("Cron expression").fill("*/2 * * * * *")
    page.get_by_role("button", name="Create job").click()
    expect(page.get_by_text("Job created.")).to_be_visible()
    job_url = page.url
    marker = page.evaluate("() => { window.__same = 1; return window.__same; }")
    assert marker == 1
    runs = page.locator("#job-runs")
    expect(runs.locator(".state.s-succeeded").first).to_be_visible(timeout=20_000)
    assert page.evaluate("() => window.__same") == 1  # the same document: no reload happened
    expect(runs.locator(".state.s-succeeded").nth(2)).to_be_visible(timeout=20_000)
    page.reload()  # the chart is drawn with the page
    expect(page.locator("svg.chart polyline.c-dur")).to_have_count(1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "job-detail.png"), full_page=True)

    # Pause it: the scheduler stops firing it.
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Paused.")).to_be_visible()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.goto(server.url + "/jobs?q=heartbeat")
    row = page.locator("table.jobs tbody tr", has_text="heartbeat")
    expect(row.locator("td").last).to_have_text("yes")
    page.goto(job_url)
    expect(page.locator(".head .state.s-paused")).to_have_text("paused")


def test_trigger_now_with_a_payload_after_confirming(login: Any, server: Server) -> None:
    s = login("alice", USERS["alice"])
    page = s.page
    create_job(page, server.url, "on demand", "0 8 * * *", "greet")
    job_url = page.url
    page.get_by_text("Trigger now…").click()
    page.get_by_label("Payload for this run only").fill('{"name": "from the web"}')
    page.get_by_role("button", name="Run now").click()  # not confirmed: nothing is sent
    page.wait_for_timeout(300)
    assert page.url == job_url
    page.get_by_label(re.compile("Yes, run on demand now")).check()
    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    expect(page.get_by_text("Triggered.")).to_be_visible()
    # The run page refreshes itself until the run ends.
    expect(page.locator("#run-state")).to_have_text("succeeded", timeout=20_000)
    expect(page.locator("#run-output")).to_contain_text("hello from the web")
    expect(page.locator(".timeline")).to_contain_text("fencing token")
    # Once the run has ended, the page stops polling for it.
    expect(page.locator("#run-body")).not_to_have_attribute("data-live", re.compile(".*"))
    # Without a payload the job's own is used.
    page.goto(job_url)
    page.get_by_text("Trigger now…").click()
    page.get_by_label(re.compile("Yes, run on demand now")).check()
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-output")).to_contain_text("hello world", timeout=20_000)


def test_deadline_field_and_the_expected_but_missing_list(login: Any, server: Server) -> None:
    s = login("bob", USERS["bob"])
    page = s.page
    label = "Deadline: alert unless it succeeds at least this often (90s, 1h; empty for none)"
    page.goto(server.url + "/jobs/new")
    page.get_by_label("Name", exact=True).fill("must succeed")
    page.get_by_label("Cron expression").fill("0 0 1 1 *")
    page.get_by_label("Task name").fill("greet")
    page.get_by_label(label).fill("1s")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#deadline-error")).to_contain_text("60 s")
    page.get_by_label(label).fill("2h")
    page.get_by_role("button", name="Create job").click()
    expect(page.get_by_text("Job created.")).to_be_visible()
    expect(page.get_by_text("Alert if no success within 2 hours.")).to_be_visible()
    page.goto(server.url + "/")
    expect(page.locator("#missing + p")).to_have_text(
        "Every job with a deadline has succeeded in time."
    )


def test_bulk_pause_and_resume_with_a_reason(login: Any, server: Server) -> None:
    s = login("alice", USERS["alice"])
    page = s.page
    ids = [create_job(page, server.url, f"bulk {n}", "0 7 * * *", "greet") for n in range(3)]
    page.goto(server.url + "/jobs?q=bulk")
    expect(page.locator("#jobs-count")).to_have_text("3 of 3 jobs")
    page.get_by_label("Select bulk 0").check()
    page.get_by_label("Select bulk 2").check()
    page.get_by_label("Reason").fill("maintenance window")
    page.get_by_role("button", name="Pause selected").click()
    expect(page.get_by_text("Paused 2 of 2 jobs.")).to_be_visible()
    page.goto(server.url + "/jobs?q=bulk&paused=yes")
    expect(page.locator("#jobs-count")).to_have_text("2 of 2 jobs")
    page.goto(f"{server.url}/jobs/{ids[0]}")
    audit = page.locator("table", has_text="job.pause")
    expect(audit).to_contain_text("alice")
    page.goto(server.url + "/jobs?q=bulk")
    page.get_by_label("Select bulk 0").check()
    page.get_by_role("button", name="Resume selected").click()
    expect(page.get_by_text("Resumed 1 of 1 jobs.")).to_be_visible()
    page.goto(server.url + "/jobs?q=bulk&paused=no")
    expect(page.locator("#jobs-count")).to_have_text("2 of 2 jobs")


def test_requeue_a_dead_run_from_the_failures_inbox(login: Any, server: Server) -> None:
    s = login("alice", USERS["alice"])
    page = s.page
    job_id = create_job(page, server.url, "always fails", "0 4 * * *", "boom", Retries="0")
    page.get_by_text("Trigger now…").click()
    page.get_by_label(re.compile("Yes, run always fails now")).check()
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-state")).to_have_text("dead", timeout=20_000)
    expect(page.locator("#run-error")).to_contain_text("boom: no reason")
    run_url = page.url
    page.goto(server.url + "/failures")
    group = page.locator("section.group", has_text="boom: no reason")
    expect(group).to_be_visible()
    group.get_by_role("button", name=re.compile("Requeue this run")).first.click()
    expect(page.get_by_text("Requeued.")).to_be_visible()
    page.goto(run_url)
    # Requeued with a fresh budget, it fails again: one more attempt in the timeline.
    expect(page.locator(".timeline li", has_text="attempt 2")).not_to_have_count(0, timeout=20_000)
    assert job_id in page.content()


def test_another_user_cannot_see_the_job(login: Any, server: Server) -> None:
    alice = login("alice", USERS["alice"])
    job_id = create_job(alice.page, server.url, "alice private job", "0 5 * * *", "greet")
    bob = login("bob", USERS["bob"])
    bob.page.goto(server.url + "/jobs?q=private")
    expect(bob.page.get_by_text("No jobs match.")).to_be_visible()
    bob.page.goto(server.url + "/jobs")
    expect(bob.page.get_by_text("alice private job")).to_have_count(0)
    response = bob.page.goto(f"{server.url}/jobs/{job_id}")
    assert response is not None and response.status == 404
    expect(bob.page.get_by_role("heading", name="Not found")).to_be_visible()
    response = bob.page.goto(f"{server.url}/jobs/{job_id}/edit")
    assert response is not None and response.status == 404
    # Acting on it is refused the same way.
    forged = bob.context.request.post(f"{server.url}/jobs/{job_id}/trigger", form={})
    assert forged.status in (403, 404)
    # The admin sees every owner's jobs.
    admin = login(ADMIN, ADMIN_PASSWORD)
    admin.page.goto(server.url + "/jobs?q=private")
    expect(admin.page.get_by_role("link", name="alice private job")).to_be_visible()


def _store_hostile_job(server: Server, name: str, owner: str) -> str:
    """A job whose name the service would refuse, written straight into the store: what an
    older version, an import or a hand-edited row could have left there. The dashboard must
    render it inert all the same."""
    from oncely.adapters.sqlite import SqliteStore
    from oncely.service.jobs import build_job
    from oncely.wire import JobCreate

    store = SqliteStore(server.env["ONCELY_STORE"].removeprefix("sqlite:///"))
    try:
        now = datetime.now(UTC)
        spec = JobCreate(name="placeholder", cron="0 6 * * *", task="hostile",
                         payload={"x": "<script>alert(2)</script>"})
        job = replace(build_job(spec, name="placeholder", owner=owner, now=now), name=name)
        return store.job_create(job, now=now).id
    finally:
        store.close()


def test_hostile_names_and_output_render_inert(login: Any, server: Server) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    s = login("alice", USERS["alice"])
    page = s.page
    # The form refuses the name, and shows it back as text.
    page.goto(server.url + "/jobs/new")
    page.get_by_label("Name", exact=True).fill(hostile)
    page.get_by_label("Cron expression").fill("0 6 * * *")
    page.get_by_label("Task name").fill("hostile")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#name-error")).to_contain_text("job name must start")
    expect(page.get_by_label("Name", exact=True)).to_have_value(hostile)
    # One already in the store renders as text everywhere, with its output.
    job_id = _store_hostile_job(server, hostile, "alice")
    page.goto(f"{server.url}/jobs/{job_id}")
    expect(page.get_by_role("heading", name=hostile)).to_be_visible()
    expect(page.get_by_text('"<script>alert(2)</script>"')).to_be_visible()
    page.get_by_text("Trigger now…").click()
    page.get_by_label(re.compile("Yes, run")).check()
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-state")).to_have_text("succeeded", timeout=20_000)
    expect(page.locator("#run-output")).to_contain_text("<script>alert('out')</script>")
    for path in ("/", "/runs", "/failures", f"/calendar?job={job_id}", "/jobs"):
        page.goto(server.url + path)
    expect(page.get_by_role("link", name=hostile)).to_be_visible()
    page.wait_for_timeout(3500)  # a live refresh swaps the table in again
    expect(page.get_by_role("link", name=hostile)).to_be_visible()
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert s.dialogs == []
    html = [r for r in s.responses if r.request.resource_type == "document"]
    assert len(html) >= 6
    for response in html:
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "default-src 'none'" in csp, response.url
        assert "unsafe-inline" not in csp


def test_screenshots_of_the_main_pages(login: Any, server: Server) -> None:
    s = login(ADMIN, ADMIN_PASSWORD)
    page = s.page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    create_job(page, server.url, "nightly report", "0 2 * * *", "greet",
               **{"Time zone": "America/New_York"})
    create_job(page, server.url, "every ten seconds", "*/10 * * * * *", "greet")
    page.goto(server.url + "/")
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)
    page.goto(server.url + "/jobs")
    page.screenshot(path=str(SCREENSHOTS / "jobs.png"), full_page=True)
    # The cluster: this one process is a live member holding every shard lease.
    page.get_by_role("link", name="Cluster").click()
    members = page.locator("table", has_text="Last heartbeat")
    expect(members.locator(".state.s-succeeded")).to_have_text(["live"])
    expect(page.locator(".shardgrid li.held")).to_have_count(64)
    # The queue shows while a run of it waits: the ten-second job's next fire is a run from
    # about three seconds before it is due (the scheduler's refill), and the page refreshes
    # itself every three seconds: within three periods a refresh has landed in that window.
    expect(page.locator("table", has_text="Due now")).to_contain_text("default", timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "cluster.png"), full_page=True)
    # Only admins see it.
    user = login("bob", USERS["bob"])
    response = user.page.goto(server.url + "/cluster")
    assert response is not None and response.status == 403


def test_runs_filters_calendar_and_admin_pages(login: Any, server: Server) -> None:
    s = login("alice", USERS["alice"])
    page = s.page
    job_id = create_job(page, server.url, "every second", "* * * * * *", "greet")
    expect(page.locator("#job-runs .state.s-succeeded").nth(1)).to_be_visible(timeout=20_000)
    page.get_by_role("button", name="Pause").click()
    # Runs: by job and state; relative times carry the exact instant.
    page.goto(server.url + "/runs")
    page.get_by_label("Job (name or id)").fill("every second")
    page.get_by_label("State").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#runs-rows tbody tr")
    expect(rows.first).to_contain_text("every second")
    states = rows.locator(".state").all_text_contents()
    assert states and set(states) == {"succeeded"}
    title = rows.first.locator("time").first.get_attribute("title")
    assert title and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", title)
    page.get_by_label("State").select_option("dead")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No runs.")).to_be_visible()
    # Calendar: today's cell counts the runs that happened against the expected fires.
    page.goto(f"{server.url}/calendar?job={job_id}")
    heading = page.get_by_role("heading", name=re.compile("Calendar .*: every second"))
    expect(heading).to_be_visible()
    today = datetime.now(UTC).date().isoformat()
    cell = page.locator("svg.heat g", has=page.locator(f"title:text-matches('^{today}')"))
    expect(cell).to_have_count(1)
    text = cell.locator("title").text_content() or ""
    assert re.search(r": [1-9]\d* of \d+ expected fires ran", text)
    # All of the user's jobs at once.
    page.goto(server.url + "/calendar")
    all_jobs = re.compile(r"^All your jobs: [1-9]\d* fires ran of [1-9]\d* expected")
    summary = page.get_by_text(all_jobs)
    expect(summary).to_be_visible()
    # Admin pages are for admins; a user is refused.
    response = page.goto(server.url + "/admin")
    assert response is not None and response.status == 403
    admin = login(ADMIN, ADMIN_PASSWORD)
    admin.page.goto(server.url + "/admin")
    users = admin.page.locator("table", has_text="alice")
    expect(users.first).to_be_visible()
    expect(admin.page.locator("#audit + table")).to_contain_text("job.create")


def test_keyboard_skip_link_and_focus(login: Any, server: Server) -> None:
    s = login("bob", USERS["bob"])
    page = s.page
    page.goto(server.url + "/jobs")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.evaluate("e => getComputedStyle(e).left") != "-999px"  # shown when focused
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.closest('main') !== null")
    assert focused  # the next stop is inside the content
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_live_tables_stop_refreshing_while_the_tab_is_hidden(login: Any, server: Server) -> None:
    s = login("bob", USERS["bob"])
    page = s.page
    page.goto(server.url + "/runs")
    live = page.locator("#runs-rows")
    expect(live).to_have_attribute("data-refreshed", re.compile(r"\d+"), timeout=10_000)

    def set_visibility(state: str) -> None:
        page.evaluate(
            """state => {
                Object.defineProperty(document, "visibilityState", {value: state,
                                                                     configurable: true});
                document.dispatchEvent(new Event("visibilitychange"));
            }""",
            state,
        )

    set_visibility("hidden")
    page.wait_for_timeout(500)
    hidden_at = live.get_attribute("data-refreshed")
    page.wait_for_timeout(4000)  # more than one polling period
    assert live.get_attribute("data-refreshed") == hidden_at
    set_visibility("visible")  # refreshes at once, then polls again
    expect(live).not_to_have_attribute("data-refreshed", hidden_at or "", timeout=2000)
