"""``python -m tests.chaos``: run the chaos suite and print the checker's report.

    python -m tests.chaos --duration 600 --schedulers 3 --workers 3 [--seed N]

Exits 0 when every check passed, 1 otherwise (the report names the seed to rerun with).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.chaos.harness import Options, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--duration", type=float, default=600, help="seconds of faults")
    parser.add_argument("--schedulers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="replay a run's fault draw")
    parser.add_argument("--log-dir", type=Path, default=None, help="keep process logs here")
    args = parser.parse_args(argv)
    if args.schedulers < 1 or args.workers < 1:
        parser.error("--schedulers and --workers must be at least 1")
    if args.duration <= 0:
        parser.error("--duration must be positive")
    report = run(
        Options(
            duration=args.duration,
            schedulers=args.schedulers,
            workers=args.workers,
            seed=args.seed,
            log_dir=args.log_dir,
            say=lambda line: print(line, flush=True),
        )
    )
    print(report.text(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
