"""Dashboard page times on PostgreSQL with many jobs and runs (a manual workload).

    .venv/bin/python -m bench.web_pages --jobs 100000 --runs 2000000

Makes its own schema, stores ``--jobs`` jobs for one user (``add_jobs``) and ``--runs`` runs
spread over the last 30 days (one INSERT ... SELECT: most succeeded, some dead, a few running),
serves the real HTTP app (dashboard included) on loopback, logs in through the login form and
times each page as a browser would fetch it: the median and the worst of ``--repeat`` requests,
after one warm-up. The schema is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
import uuid
from datetime import UTC, datetime

import httpx
import psycopg
from tests.integration.live_server import serve

import oncely
from bench.seed import seed_jobs, seed_runs_pg
from oncely.api.server import create_http_app
from oncely.auth import Authenticator
from oncely.config import Settings
from oncely.domain.principal import Role
from oncely.ports.store import RunQuery

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench passphrase 123"


def seed(app: oncely.App, schema: str, jobs: int, runs: int) -> None:
    seed_jobs(app, jobs)
    seed_runs(schema, runs)


def seed_runs(schema: str, runs: int) -> None:
    seed_runs_pg(PG, schema, runs)


def login(http: httpx.Client, name: str) -> None:
    page = http.get("/login")
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert token
    done = http.post("/login", data={"username": name, "password": PASSWORD, "csrf": token[1]})
    assert done.status_code == 303, done.text


def timed(http: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    status = http.get(path).status_code  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = http.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        status = r.status_code
    return statistics.median(times), max(times), status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--schema", default=None, help="reuse a kept schema (no seeding)")
    args = parser.parse_args()
    schema = args.schema or f"oncely_webbench_{uuid.uuid4().hex[:8]}"
    app = oncely.App(settings=Settings(store=f"{PG}?schema={schema}"), owner="alice")  # type: ignore[call-arg]
    auth = Authenticator(app.store, app.clock)
    try:
        if args.schema is not None and args.runs and not app.service.runs.search(
            app.principal, RunQuery(limit=1)
        ):
            seed_runs(schema, args.runs)
        if args.schema is None:
            for name, role in (("alice", Role.USER), ("root", Role.ADMIN)):
                auth.create_user(name, PASSWORD, role=role)
            seed(app, schema, args.jobs, args.runs)
        http_app = create_http_app(lambda: (True, {}), auth=auth, service=app.service)
        with serve(http_app) as url, httpx.Client(base_url=url, timeout=60) as http:
            for who in ("alice", "root"):
                http.cookies.clear()
                login(http, who)
                first = http.get("/jobs?q=000042")
                job_id = re.search(r'href="/jobs/([0-9a-f-]{36})"', first.text)
                runs = http.get("/runs?state=dead")
                run_id = re.search(r'href="/runs/([0-9a-f-]{36})"', runs.text)
                nxt = re.search(r'href="(/jobs\?after=[^"]+)"', http.get("/jobs").text)
                assert job_id
                assert run_id
                assert nxt
                pages = [
                    "/", "/jobs", nxt[1].replace("&amp;", "&"), "/jobs?q=000042",
                    "/jobs?q=report&paused=no&kind=python", f"/jobs/{job_id[1]}",
                    f"/jobs/{job_id[1]}/edit", "/runs", "/runs?state=dead",
                    "/runs?state=running", f"/runs?job={job_id[1]}", f"/runs/{run_id[1]}",
                    "/failures", f"/calendar?job={job_id[1]}", "/jobs/new",
                    "/preview?kind=cron&cron=0+9+*+*+MON-FRI&timezone=Europe/Paris",
                ]
                print(f"\n{who} ({args.jobs:,} jobs, {args.runs:,} runs on PostgreSQL)")
                print(f"{'page':<60} {'median ms':>10} {'max ms':>8}")
                for path in pages:
                    med, worst, status = timed(http, path, args.repeat)
                    shown = path if len(path) < 58 else path[:55] + "..."
                    print(f"{shown:<60} {med:10.1f} {worst:8.1f}  {status}")
    finally:
        app.close()
        if not args.keep and args.schema is None:
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        kept = "kept" if args.keep or args.schema is not None else "dropped"
        print(f"\nschema {schema} {kept} at {datetime.now(UTC):%H:%M}")


if __name__ == "__main__":
    main()
