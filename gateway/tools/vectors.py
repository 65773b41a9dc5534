"""Write (or check) the protocol's test vectors, ``docs/vectors/*.json``.

``python -m gateway.tools.vectors docs/vectors`` computes every vector with the gateway's own
functions (:mod:`gateway.tools.vector_cases`) and writes one JSON file per construction;
``--check`` writes nothing and fails (exit 1) when any file is missing, differs or is extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gateway.tools import (
    vector_audit,
    vector_cases,
    vector_holdings,
    vector_identity,
    vector_logs,
)
from gateway.tools.vector_cases import Json


def all_vectors() -> dict[str, Json]:
    """Every vector document, by file name (without ``.json``)."""
    return {
        "keys": vector_cases.key_vectors(),
        "envelope": vector_cases.envelope_vectors(),
        "envelope-chain": vector_cases.envelope_chain_vectors(),
        "envelope-tampered": vector_cases.tampered_vectors(),
        "audit-chain": vector_logs.audit_vectors(),
        "tree-head": vector_logs.tree_head_vectors(),
        "audit-commitments": vector_audit.commitment_vectors(),
        "reconciliation-report": vector_logs.report_vectors(),
        "canonical-json": vector_logs.canonical_json_vectors(),
        "case-verdict": vector_cases.case_verdict_vectors(),
        "identity-keys": vector_identity.identity_vectors(),
        "held-block-columns": vector_holdings.holdings_vectors(),
    }


def render(document: Json) -> str:
    """The file text of one vector document: 2-space indented JSON, UTF-8, newline at the end."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name → text of every vector file."""
    return {f"{name}.json": render(doc) for name, doc in all_vectors().items()}


def drift(folder: Path) -> list[str]:
    """What differs between ``folder`` and freshly computed vectors (empty: nothing)."""
    expected = rendered()
    problems = []
    for name, text in expected.items():
        path = folder / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from what the implementation computes")
    for path in sorted(folder.glob("*.json")):
        if path.name not in expected:
            problems.append(f"{path}: not a vector the implementation computes")
    return problems


def write(folder: Path) -> list[Path]:
    """Write every vector file into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: ``vectors [--check] FOLDER``."""
    parser = argparse.ArgumentParser(prog="python -m gateway.tools.vectors", description=__doc__)
    parser.add_argument("folder", type=Path, help="where the vector files live (docs/vectors)")
    parser.add_argument("--check", action="store_true", help="fail on drift, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = drift(args.folder)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python -m gateway.tools.vectors docs/vectors", file=sys.stderr)
            return 1
        print(f"{args.folder}: {len(rendered())} vector files up to date")
        return 0
    for path in write(args.folder):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
