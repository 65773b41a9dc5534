"""`yrdgw` starts light: importing the command line, `--help` and a group's `--help` load typer
and the CLI's own modules, not the SDK, the server or its database layer (each command imports
those when it runs). How fast that is stays a number measured by hand; this checks the cause."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

HEAVY = (
    "sqlalchemy",
    "alembic",
    "grpc",
    "cryptography",
    "gateway.services",
    "gateway.storage",
    "gateway.client",
    "gateway.config",
    "gateway.server",
    "gateway.app",
)

LOADED = """
import json, sys
from gateway.cli import main
sys.argv = ["yrdgw", *json.loads(sys.argv[1])]
if sys.argv[1:]:
    try:
        main()
    except SystemExit:
        pass
print("\\n" + json.dumps(sorted(sys.modules)))
"""


def loaded_modules(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", LOADED, json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    modules: list[str] = json.loads(result.stdout.rstrip().rsplit("\n", 1)[-1])
    return modules


@pytest.mark.parametrize(
    "args", [(), ("--help",), ("transfer", "--help"), ("reconcile", "run", "--help")]
)
def test_the_command_line_starts_without_the_server(args: tuple[str, ...]) -> None:
    modules = loaded_modules(*args)
    assert "gateway.cli" in modules
    assert [m for m in modules if m in HEAVY or m.startswith(tuple(f"{h}." for h in HEAVY))] == []
