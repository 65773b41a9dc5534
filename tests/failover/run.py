"""The failover harness, long version (``make failover``): several runs, each with several
failovers of PostgreSQL (a new synchronous standby rebuilt after each), and the figures.

    python -m tests.failover.run --seeds 2 --transfers 600 --failovers 4
    python -m tests.failover.run --seed 1234 --transfers 150 --failovers 1

Exits 1 when any run found a problem (its seed and the command that replays it are printed), and
2 when PostgreSQL's binaries cannot be run here (the reason is printed).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

from gateway.logs import configure_logging
from gateway.security.pki import PKIDir, init
from tests.failover.cluster import cluster_problem
from tests.failover.harness import FailoverFigures, FailoverPlan, FailoverRun


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.failover.run", description=__doc__)
    parser.add_argument("--seeds", type=int, default=1, help="runs")
    parser.add_argument(
        "--seed",
        type=int,
        default=int(os.environ["YRDGW_FAILOVER_SEED"])
        if os.environ.get("YRDGW_FAILOVER_SEED")
        else None,
        help="first seed (YRDGW_FAILOVER_SEED; random when absent)",
    )
    parser.add_argument("--transfers", type=int, default=600, help="proposals per run")
    parser.add_argument("--failovers", type=int, default=4, help="failovers per run")
    parser.add_argument(
        "--asynchronous",
        action="store_true",
        help="negative control: leave the standby behind before each failover (answers are lost)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the gateways' logs here")
    args = parser.parse_args(argv)
    problem = cluster_problem()
    if problem is not None:
        print(f"failover harness: cannot run PostgreSQL here: {problem}", file=sys.stderr)
        return 2
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    configure_logging("json", "warning")
    with tempfile.TemporaryDirectory(prefix="yrdgw-failover-") as scratch:
        root = args.workdir or Path(scratch)
        pki = PKIDir(root / "pki")
        if not pki.ca_cert.exists():
            init(pki)
        total = FailoverFigures("postgresql")
        failed = False
        for seed in range(first, first + args.seeds):
            plan = FailoverPlan(
                seed,
                transfers=args.transfers,
                failovers=args.failovers,
                asynchronous=args.asynchronous,
            )
            print(f"seed {seed}: {args.transfers} transfers, {args.failovers} failovers …")
            sys.stdout.flush()
            figures = FailoverRun(plan, pki, root / f"run-{seed}").execute()
            total.merge(figures)
            if figures.failed:
                failed = True
                print(f"FAILED seed {seed}; replay with: {plan.rerun()}")
                for line in figures.problems[:30]:
                    print(f"    {line}")
        print("\nfailover harness — PostgreSQL primary + synchronous standby, 2 gateways")
        print("\n".join(total.summary()))
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
