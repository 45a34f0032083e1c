"""The chaos suite's task, imported by its workers (``--app tests.chaos.app:app``).

``effect`` writes one row in ``public.chaos_effects`` in the run's completing transaction,
stamped with the database server's clock (a worker may run with a skewed clock on purpose).
Its row exists exactly when the attempt's outcome was recorded as a success, so more than
one row for a run is an effect made twice.
"""

from __future__ import annotations

import oncely

app = oncely.App()

EFFECTS_DDL = (
    "CREATE TABLE IF NOT EXISTS public.chaos_effects (run_id uuid NOT NULL, "
    "job_id uuid NOT NULL, scheduled_for timestamptz NOT NULL, token bigint NOT NULL, "
    "attempt integer NOT NULL, at timestamptz NOT NULL)"
)


@app.task("effect", transactional=True)
def effect(ctx: oncely.TaskContext) -> str:
    ctx.connection.execute(
        "INSERT INTO public.chaos_effects (run_id, job_id, scheduled_for, token, attempt, at) "
        "VALUES (%s, %s, %s, %s, %s, clock_timestamp())",
        (ctx.run_id, ctx.job_id, ctx.scheduled_for, ctx.fencing_token, ctx.attempt),
    )
    return "effect"
