"""The overlap policy, decided when runs are claimed.

Overlap cannot be decided when a fire is materialized (nobody knows then whether the
previous run will still be going), so the claim decides it: the store locks the jobs of the
candidate runs, looks up their live runs, and applies this function's answer in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from oncely.domain.policy import Overlap


@dataclass(frozen=True)
class ClaimCandidate:
    run_id: str
    job_id: str
    overlap: Overlap
    scheduled_for: datetime


@dataclass(frozen=True)
class OverlapDecision:
    claim: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    """Candidates that will not run (state ``skipped``)."""
    cancel: list[str] = field(default_factory=list)
    """Live runs to cancel (``replace``); their workers' fenced writes will be refused."""


def resolve_overlap(
    candidates: Sequence[ClaimCandidate], live: Mapping[str, Sequence[str]]
) -> OverlapDecision:
    """Decide which candidates run.

    ``candidates`` come in claim order; ``live`` maps job ids to their runs that have started
    and not ended (``running`` or ``retrying``), candidates excluded.

    - ``allow``: every candidate runs.
    - ``forbid``: a job with a live run gets none; otherwise its first candidate runs and the
      others are skipped (they would overlap it).
    - ``replace``: the live runs are cancelled and the newest candidate runs; older candidates
      of the same job are skipped (they were replaced before they started).
    """
    decision = OverlapDecision()
    by_job: dict[str, list[ClaimCandidate]] = {}
    for candidate in candidates:
        by_job.setdefault(candidate.job_id, []).append(candidate)
    for job_id, group in by_job.items():
        policy = group[0].overlap
        if policy == "allow":
            decision.claim.extend(c.run_id for c in group)
        elif policy == "forbid":
            if live.get(job_id):
                decision.skip.extend(c.run_id for c in group)
            else:
                decision.claim.append(group[0].run_id)
                decision.skip.extend(c.run_id for c in group[1:])
        else:
            newest = max(group, key=lambda c: c.scheduled_for)
            decision.cancel.extend(live.get(job_id, ()))
            decision.claim.append(newest.run_id)
            decision.skip.extend(c.run_id for c in group if c is not newest)
    return decision


def overlap_settled(
    decision: OverlapDecision,
    candidates: Sequence[ClaimCandidate],
    live: Mapping[str, Sequence[str]],
) -> dict[str, list[tuple[str, str]]]:
    """The (run id, job id) pairs the decision skips and cancels, as ``skipped`` and
    ``cancelled`` keyword arguments for a claim's answer (empty, at no cost, when it settles
    nothing: the common case)."""
    if not decision.skip and not decision.cancel:
        return {}
    job_of = {c.run_id: c.job_id for c in candidates}
    for job_id, runs in live.items():
        job_of.update((run_id, job_id) for run_id in runs)
    return {
        "skipped": [(r, job_of[r]) for r in decision.skip],
        "cancelled": [(r, job_of[r]) for r in decision.cancel],
    }
