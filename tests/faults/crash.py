"""The crash harness, long version (``make faults``): several seeds × thousands of transfers with
SIGKILLs, on SQLite and on PostgreSQL, and the figures per backend.

    python -m tests.faults.crash --seeds 3 --transfers 2000 --kills 10
    python -m tests.faults.crash --backend sqlite --seeds 1 --seed 1234 --transfers 150 --kills 3

Exits 1 when any run found a problem (its seed and the command that replays it are printed).
PostgreSQL is skipped with the reason when it is unreachable, unless CI=true.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from gateway.logs import configure_logging
from gateway.security.pki import PKIDir, init
from tests.conftest import IN_CI, POSTGRES_URL, postgres_problem
from tests.faults.harness import Backend, CrashPlan, Figures, Run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.crash", description=__doc__)
    parser.add_argument(
        "--backend",
        action="append",
        choices=["sqlite", "postgresql"],
        help="repeatable; both by default",
    )
    parser.add_argument("--seeds", type=int, default=3, help="runs per backend")
    parser.add_argument("--seed", type=int, help="first seed (random when absent)")
    parser.add_argument("--transfers", type=int, default=2000, help="proposals per run")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs per run")
    parser.add_argument("--workdir", type=Path, help="keep databases and logs here")
    args = parser.parse_args(argv)
    backends: list[Backend] = args.backend or ["sqlite", "postgresql"]
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    seeds = [first + i for i in range(args.seeds)]
    configure_logging("json", "warning")

    with tempfile.TemporaryDirectory(prefix="yrdgw-crash-") as scratch:
        root = args.workdir or Path(scratch)
        pki = PKIDir(root / "pki")
        if not pki.ca_cert.exists():
            init(pki)
        failed = False
        for backend in backends:
            postgres = None
            if backend == "postgresql":
                problem = postgres_problem()
                if problem is not None:
                    if IN_CI:
                        print(f"CI=true and {problem}", file=sys.stderr)
                        return 1
                    print(f"\npostgresql: skipped ({problem})")
                    continue
                postgres = POSTGRES_URL
            total = Figures(backend)
            for seed in seeds:
                plan = CrashPlan(seed, backend, transfers=args.transfers, kills=args.kills)
                print(f"{backend} seed {seed}: {args.transfers} transfers, {args.kills} kills …")
                sys.stdout.flush()
                figures = Run(plan, pki, root / f"{backend}-{seed}", postgres).execute()
                total.merge(figures)
                if figures.failed:
                    failed = True
                    print(f"FAILED {backend} seed {seed}; replay with: {plan.rerun()}")
                    for line in figures.problems[:30]:
                        print(f"    {line}")
            print(f"\ncrash harness — {backend}")
            print("\n".join(total.lines()))
            sys.stdout.flush()
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
