"""REST API speed on both stores (a manual workload; issue 8 item 9).

    .venv/bin/python -m bench.api                       # 100,000 jobs, 1,000,000 runs, both stores
    .venv/bin/python -m bench.api --stores sqlite --jobs 200 --runs 2000 --create 50   # smoke

For each store it makes its own database (a fresh SQLite file; a PostgreSQL schema named
``oncely_apibench_<random>``), creates a user and an API key with the library, starts a real
``oncely api`` process (uvicorn) on a free loopback port and talks to it with httpx and the key:

1. jobs created one by one (``POST /v1/jobs``): ``--create`` sequential requests, then the same
   number from ``--clients`` concurrent clients; jobs/s and p50/p99 per request. The API has no
   bulk create: ``POST /v1/import/crontab`` is its only many-jobs-in-one-request route (admin,
   shell jobs only); it is timed with a ``--create``-line crontab and a server allowing shell.
2. it seeds ``--jobs`` jobs and ``--runs`` runs (bench/seed.py) and times listing: first page,
   filtered pages, a deep cursor page (the ``--deep``-th page), runs across jobs, per job, by
   state; p50/p99 of ``--repeat`` requests after a warm-up.

The database is removed at the end. Results print as a Markdown table (``--out`` writes it).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

import oncely
from bench.seed import seed_jobs, seed_runs_pg, seed_runs_sqlite
from oncely.auth import Authenticator
from oncely.config import Settings
from oncely.domain.principal import Role

PG = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench passphrase 123"


@dataclass
class Result:
    store: str
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, rate: str, p50: str, p99: str) -> None:
        self.rows.append((what, rate, p50, p99))
        print(f"  {what:<52} {rate:>10} {p50:>9} {p99:>9}", flush=True)


def pct(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(store_url: str, *, allow_shell: bool) -> Iterator[str]:
    """A real ``oncely api`` process on loopback; its base URL once /readyz answers 200."""
    port = free_port()
    env = {**os.environ, "ONCELY_ALLOW_SHELL": "true" if allow_shell else "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oncely.cli.main", "--store", store_url, "api",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"oncely api exited {proc.returncode}: {err[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("oncely api not ready after 60 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def job_body(tag: str, n: int) -> dict[str, object]:
    return {"name": f"api {tag} {n:06d}", "cron": f"{n % 60} * * * *", "task": "noop",
            "timezone": "Europe/Paris"}


def create_one_by_one(url: str, key: str, tag: str, count: int, clients: int) -> list[float]:
    """``count`` POST /v1/jobs split over ``clients`` threads, each with its own connection;
    every request's seconds (raises on any non-201)."""
    times: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def client(index: int) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                          timeout=60) as http:
            for n in range(index, count, clients):
                t0 = time.perf_counter()
                r = http.post("/v1/jobs", json=job_body(tag, n))
                mine.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    errors.append(f"{r.status_code} {r.text[:300]}")
                    return
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"create failed: {errors[0]}")
    return times


def timed_get(http: httpx.Client, path: str, repeat: int) -> list[float]:
    r = http.get(path)  # warm-up
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = http.get(path)
        times.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
    return times


def run_store(kind: str, args: argparse.Namespace) -> Result:
    tmp = Path(tempfile.mkdtemp(prefix=f"{args.prefix}_"))
    schema = f"{args.prefix}_{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        db_path = tmp / "api.db"
        store_url = f"sqlite:///{db_path}"
    else:
        store_url = f"{PG}?schema={schema}"
    result = Result("SQLite" if kind == "sqlite" else "PostgreSQL")
    print(f"\n{result.store} ({store_url})", flush=True)
    app = oncely.App(settings=Settings(store=store_url), owner="alice")
    try:
        auth = Authenticator(app.store, app.clock)
        alice = auth.create_user("alice", PASSWORD, role=Role.USER)
        root = auth.create_user("root", PASSWORD, role=Role.ADMIN)
        _, key = auth.create_api_key(alice, "bench")
        _, root_key = auth.create_api_key(root, "bench")
        with api_server(store_url, allow_shell=True) as url:
            n = args.create
            create_one_by_one(url, key, "warm", 1, 1)  # first request: imports, connections
            t0 = time.perf_counter()
            seq = create_one_by_one(url, key, "seq", n, 1)
            took = time.perf_counter() - t0
            result.add("create one by one, 1 client", f"{n / took:.0f} jobs/s",
                       f"{pct(seq, .5) * 1000:.1f} ms", f"{pct(seq, .99) * 1000:.1f} ms")
            t0 = time.perf_counter()
            par = create_one_by_one(url, key, "par", n, args.clients)
            took = time.perf_counter() - t0
            result.add(f"create one by one, {args.clients} clients", f"{n / took:.0f} jobs/s",
                       f"{pct(par, .5) * 1000:.1f} ms", f"{pct(par, .99) * 1000:.1f} ms")
            crontab = "".join(f"{i % 60} * * * * /bin/true bench-{i}\n" for i in range(n))
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {root_key}"},
                              timeout=300) as http:
                t0 = time.perf_counter()
                r = http.post("/v1/import/crontab", json={"crontab": crontab})
                took = time.perf_counter() - t0
            if r.status_code == 200:
                result.add(f"bulk: crontab import, {n} lines, 1 request",
                           f"{n / took:.0f} jobs/s", f"{took * 1000:.0f} ms", "-")
            else:
                result.notes.append(f"crontab import refused: {r.status_code} {r.text[:200]}")
                print("  " + result.notes[-1])

        seeded = seed_jobs(app, args.jobs, quiet=True)
        app.close()
        if kind == "sqlite":
            ran = seed_runs_sqlite(str(db_path), args.runs, quiet=True)
        else:
            ran = seed_runs_pg(PG, schema, args.runs, quiet=True)
        result.notes.append(
            f"seeded {args.jobs:,} jobs in {seeded:.0f} s (App.add_jobs, 5,000 a transaction) and "
            f"{args.runs:,} runs in {ran:.0f} s (one INSERT ... SELECT)"
        )
        print("  " + result.notes[-1], flush=True)
        with api_server(store_url, allow_shell=False) as url, httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as http:
            first = http.get("/v1/jobs", params={"name_contains": "000042"}).json()["items"]
            job_id = first[0]["id"]
            cursor = None
            for _ in range(args.deep):
                page = http.get("/v1/jobs", params={"cursor": cursor} if cursor else {}).json()
                cursor = page["next_cursor"]
            deep = f"/v1/jobs?cursor={cursor}"
            runs_page = http.get("/v1/runs").json()
            for _ in range(args.deep - 1):
                runs_page = http.get("/v1/runs", params={"cursor": runs_page["next_cursor"]}).json()
            deep_runs = f"/v1/runs?cursor={runs_page['next_cursor']}"
            paths = [
                ("jobs: first page (50)", "/v1/jobs"),
                ("jobs: name_contains=000042 (1 match)", "/v1/jobs?name_contains=000042"),
                ("jobs: name_contains=report (all match)", "/v1/jobs?name_contains=report"),
                ("jobs: paused=true (none)", "/v1/jobs?paused=true"),
                ("jobs: paused=false", "/v1/jobs?paused=false"),
                (f"jobs: cursor page {args.deep + 1}", deep),
                ("runs: first page, across jobs", "/v1/runs"),
                (f"runs: cursor page {args.deep + 1}, across jobs", deep_runs),
                ("runs: state=dead", "/v1/runs?state=dead"),
                ("runs: state=running", "/v1/runs?state=running"),
                ("runs: one job (/v1/jobs/{id}/runs)", f"/v1/jobs/{job_id}/runs"),
                ("runs: one job, state=dead", f"/v1/jobs/{job_id}/runs?state=dead"),
            ]
            for what, path in paths:
                times = timed_get(http, path, args.repeat)
                result.add(what, "-", f"{pct(times, .5) * 1000:.1f} ms",
                           f"{pct(times, .99) * 1000:.1f} ms")
    finally:
        app.close()
        if kind == "postgres":
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def markdown(results: list[Result], args: argparse.Namespace, loads: list[float]) -> str:
    lines = [
        "# REST API speed (bench/api.py)",
        "",
        f"**Date:** {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"**Machine:** {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}  ",
        f"**Load average (1 min) during the run:** min {min(loads):.1f}, median "
        f"{statistics.median(loads):.1f}, max {max(loads):.1f}  ",
        f"**Sizes:** {args.jobs:,} jobs, {args.runs:,} runs; {args.create} jobs created per "
        f"create row, {args.clients} concurrent clients; listing p50/p99 of {args.repeat} "
        "requests after one warm-up, over loopback HTTP with an API key",
        "",
    ]
    for r in results:
        lines += [f"## {r.store}", "", "| what | rate | p50 | p99 |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in r.rows]
        lines += [""] + [f"- {n}" for n in r.notes] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n")[0])
    p.add_argument("--stores", default="sqlite,postgres")
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=1_000_000)
    p.add_argument("--create", type=int, default=500, help="jobs per create measurement")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--deep", type=int, default=20, help="cursor pages to follow for the deep one")
    p.add_argument("--prefix", default="oncely_apibench",
                   help="names of the PostgreSQL schema and temporary directory start with this")
    p.add_argument("--out", default=None, help="write the Markdown report here")
    args = p.parse_args(argv)
    loads: list[float] = [os.getloadavg()[0]]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(5):
            loads.append(os.getloadavg()[0])

    threading.Thread(target=sample, daemon=True).start()
    results = []
    try:
        for kind in args.stores.split(","):
            results.append(run_store(kind.strip(), args))
    finally:
        stop.set()
    text = markdown(results, args, loads)
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
