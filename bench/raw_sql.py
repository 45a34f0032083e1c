"""The raw limit: a queue in plain SQL on PostgreSQL, with no framework around it.

A table of rows to run; a client claims a batch (``FOR UPDATE SKIP LOCKED`` and an update,
one statement) and completes it (one update), each an autocommit round trip, and reports
rows per second for batch sizes 1, 10 and 1000. That is about what a Python process on one
connection can get out of PostgreSQL here, and what oncely's claim/complete loop is measured
against.
"""

from __future__ import annotations

import threading
import time

from bench.common import Result, log, pg_connect

SCHEMA = "bench_raw"

DDL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.q (
    id          bigserial PRIMARY KEY,
    due_at      timestamptz NOT NULL DEFAULT now(),
    state       smallint NOT NULL DEFAULT 0,
    claimed_at  timestamptz,
    finished_at timestamptz,
    payload     text
);
CREATE INDEX q_waiting ON {SCHEMA}.q (due_at) WHERE state = 0;
"""

CLAIM = f"""
UPDATE {SCHEMA}.q SET state = 1, claimed_at = now()
WHERE id IN (
    SELECT id FROM {SCHEMA}.q WHERE state = 0 AND due_at <= now()
    ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED
)
RETURNING id
"""

COMPLETE = f"UPDATE {SCHEMA}.q SET state = 2, finished_at = now() WHERE id = ANY(%s)"


def _drain(batch: int, counts: list[int], index: int) -> None:
    with pg_connect() as conn:
        done = 0
        while True:
            ids = [r[0] for r in conn.execute(CLAIM, (batch,)).fetchall()]
            if not ids:
                break
            conn.execute(COMPLETE, (ids,))
            done += len(ids)
        counts[index] = done


def run(batches: dict[int, int], clients: tuple[int, ...] = (1, 2)) -> list[Result]:
    """``batches``: batch size -> rows to process with it; each with 1 and 2 clients."""
    results = []
    with pg_connect() as conn:
        for (batch, rows), n_clients in [(b, c) for b in batches.items() for c in clients]:
            conn.execute(DDL)
            t0 = time.perf_counter()
            with conn.cursor().copy(f"COPY {SCHEMA}.q (payload) FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row((f"row {i}",))
            insert_s = time.perf_counter() - t0
            conn.execute(f"ANALYZE {SCHEMA}.q")
            counts = [0] * n_clients
            threads = [
                threading.Thread(target=_drain, args=(batch, counts, i)) for i in range(n_clients)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            took = time.perf_counter() - t0
            done = sum(counts)
            label = f"batch {batch}, {n_clients} client{'s' if n_clients > 1 else ''}"
            r = Result("RAW", "bare SQL", label, expected=rows, ran=done)
            r.lost = rows - done
            r.throughput = done / took
            r.duration = took
            r.extra = {
                "batch": batch,
                "clients": n_clients,
                "copy_rows_per_s": round(rows / insert_s),
            }
            log(f"  {label:<20}: {r.throughput:9.0f} rows/s (COPY {rows / insert_s:.0f}/s)")
            results.append(r)
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    return results
