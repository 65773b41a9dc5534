"""Layer rules import-linter cannot express: the services build no SQL (every statement lives in
``gateway/storage``), and no module of ``gateway`` or ``adapters`` grows past 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"
ADAPTERS = ROOT / "adapters"
# What a service may take from SQLAlchemy: the types of a transaction it opens and passes on.
SERVICE_SQLALCHEMY = {"Connection", "Session"}


def _sqlalchemy_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("sqlalchemy"))
    return names


def test_services_build_no_sql() -> None:
    offenders = {
        str(path.relative_to(GATEWAY)): sorted(extra)
        for path in sorted((GATEWAY / "services").glob("*.py"))
        if (extra := _sqlalchemy_names(path) - SERVICE_SQLALCHEMY)
    }
    assert offenders == {}, f"SQL construction outside gateway/storage: {offenders}"


def test_no_gateway_or_adapters_module_over_600_lines() -> None:
    modules = [*GATEWAY.rglob("*.py"), *ADAPTERS.rglob("*.py")]
    assert len(modules) > 50 and any(path.is_relative_to(ADAPTERS) for path in modules)
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules
        if "migrations" not in path.parts
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}, f"modules over 600 lines: {long}"


def test_the_check_sees_a_statement(tmp_path: Path) -> None:
    """The rule above is not vacuous: a module building a select is caught."""
    module = tmp_path / "m.py"
    module.write_text("from sqlalchemy import select\nfrom sqlalchemy.orm import Session\n")
    assert _sqlalchemy_names(module) - SERVICE_SQLALCHEMY == {"select"}
