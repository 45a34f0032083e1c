"""The chaos checker itself: a clean record passes, and each kind of breach is caught.

The records are built by hand (the same shapes ``observe`` reads from PostgreSQL and the
ledger), so every rule is shown to fail when it should, without a cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.chaos.checker import Fault, Observed, Plan, judge
from tests.support.http_ledger import Delivery

BASE = 1_800_000_000.0  # a multiple of 15: every schedule below fires on it


def _dt(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _plan() -> Plan:
    plan = Plan(ledger_url="http://127.0.0.1:1/effect")
    plan.cron = {"job-s": ("second", 1), "job-h": ("every-5s", 5)}
    plan.oneshots = {"job-o": BASE + 7.5}
    plan.http_jobs = {"job-h", "job-o"}
    plan.window_start = BASE
    plan.faults_end = BASE + 18
    plan.paused_at = BASE + 23  # judged up to BASE + 20
    plan.drained_at = BASE + 30
    return plan


def _clean() -> Observed:
    seen = Observed([], [], [], [], {})
    fires = [("job-s", BASE + k) for k in range(21)]
    fires += [("job-h", BASE + 5 * k) for k in range(5)]
    fires += [("job-o", BASE + 7.5)]
    for i, (job, due) in enumerate(fires):
        run = f"run-{i}"
        seen.runs.append((run, job, _dt(due), "succeeded"))
        seen.attempts.append((run, 1, _dt(due + 0.01), _dt(due + 0.3), "succeeded", "w", None))
        if job == "job-s":
            seen.effects.append((run, _dt(due), _dt(due + 0.01)))
        else:
            seen.deliveries.append(Delivery(run, 1, 1, "", due + 0.01, due + 0.3, 200, True))
            seen.applied[run] = 1
    return seen


def _run_of(seen: Observed, job: str, due: float) -> str:
    return next(r[0] for r in seen.runs if r[1] == job and r[2] == _dt(due))


def test_a_clean_record_passes() -> None:
    report = judge(_clean(), _plan(), [Fault("kill", "worker-1", BASE + 3, BASE + 5, "")])
    assert report.ok, report.text()
    assert report.figures["fires expected"] == 21 + 5 + 1
    assert report.figures["duplicates"] == 0
    assert report.figures["lost"] == 0
    assert report.figures["overlapping attempts"] == 0


def _drop_fire(seen: Observed) -> None:
    run = _run_of(seen, "job-s", BASE + 4)
    seen.runs = [r for r in seen.runs if r[0] != run]


def _twice(seen: Observed) -> None:
    seen.runs.append(("run-extra", "job-s", _dt(BASE + 4), "succeeded"))
    seen.effects.append(("run-extra", _dt(BASE + 4), _dt(BASE + 4.01)))


def _double_effect(seen: Observed) -> None:
    run = _run_of(seen, "job-s", BASE + 6)
    seen.effects.append((run, _dt(BASE + 6), _dt(BASE + 6.5)))


def _lost_delivery(seen: Observed) -> None:
    del seen.applied[_run_of(seen, "job-h", BASE + 10)]


def _overlap(seen: Observed) -> None:
    run = _run_of(seen, "job-h", BASE + 10)
    seen.deliveries.append(Delivery(run, 2, 2, "", BASE + 10.2, BASE + 10.5, 200, False))


def _early(seen: Observed) -> None:
    run = _run_of(seen, "job-s", BASE + 8)
    seen.effects = [(r, due, _dt(BASE + 7.999) if r == run else at) for r, due, at in seen.effects]


def _early_delivery(seen: Observed) -> None:
    run = _run_of(seen, "job-o", BASE + 7.5)
    seen.deliveries = [
        Delivery(d.key, 1, 1, "", BASE + 7.4, BASE + 7.7, 200, True) if d.key == run else d
        for d in seen.deliveries
    ]


def _set_state(state: str) -> Callable[[Observed], None]:
    def mutate(seen: Observed) -> None:
        run = _run_of(seen, "job-s", BASE + 12)
        seen.runs = [(r, j, d, state if r == run else s) for r, j, d, s in seen.runs]
        if state != "succeeded":
            seen.effects = [e for e in seen.effects if e[0] != run]

    return mutate


def _missing_oneshot(seen: Observed) -> None:
    seen.runs = [r for r in seen.runs if r[1] != "job-o"]


@pytest.mark.parametrize(
    ("mutate", "problem", "figure"),
    [
        (_drop_fire, "fires have no run", ("lost", 1)),
        (_twice, "fires made two runs", ("duplicates", 1)),
        (_double_effect, "more than once", ("duplicates", 1)),
        (_lost_delivery, "left no effect", ("lost", 1)),
        (_overlap, "overlapped", ("overlapping attempts", 1)),
        (_early, "before due", ("early starts", 1)),
        (_early_delivery, "before due", ("early starts", 1)),
        (_set_state("running"), "never ended", ("unended runs", 1)),
        (_set_state("dead"), "did not succeed", None),
        (_missing_oneshot, "one-shot", ("lost", 1)),
    ],
)
def test_each_breach_is_caught(
    mutate: Callable[[Observed], None], problem: str, figure: tuple[str, int] | None
) -> None:
    seen = copy.deepcopy(_clean())
    mutate(seen)
    report = judge(seen, _plan(), [])
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems
    if figure is not None:
        assert report.figures[figure[0]] == figure[1], report.text()


def test_failover_is_measured_from_the_fault_and_not_across_an_outage() -> None:
    seen = _clean()
    run = _run_of(seen, "job-s", BASE + 2)
    seen.attempts = [a for a in seen.attempts if a[0] != run]
    seen.attempts.append((run, 1, _dt(BASE + 2.01), _dt(BASE + 6), "lost", "w1", "lease expired"))
    seen.attempts.append((run, 2, _dt(BASE + 9), _dt(BASE + 9.1), "succeeded", "w2", None))
    kill = Fault("kill", "worker-1", BASE + 3, BASE + 4, "")
    report = judge(seen, _plan(), [kill])
    assert report.ok, report.text()
    assert str(report.figures["worst failover"]).startswith("6.00 s (kill worker-1")
    # The same wait with a PostgreSQL restart in it is the outage's, not the kill's.
    outage = Fault("pg_fast", "postgresql", BASE + 5, BASE + 8, "", ready=BASE + 8)
    report = judge(seen, _plan(), [kill, outage])
    assert not str(report.figures["worst failover"]).startswith("6.00")
    assert str(report.figures["worst recovery"]).startswith("0.01 s")
