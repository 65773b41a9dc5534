"""The SDK stays lean: importing ``gateway.client`` loads none of the server's code or its
dependencies, so a registry that only wants the client needs grpcio, grpcio-status,
grpcio-health-checking, protobuf and cryptography (and the pure domain packages)."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_ONLY = (
    "sqlalchemy",
    "alembic",
    "apscheduler",
    "starlette",
    "pydantic",
    "pydantic_settings",
    "psycopg",
    "structlog",
    "typer",
    "rich",
    "uvicorn",
    "jinja2",
    "prometheus_client",
    "openpyxl",
    # Tracing is the client-tracing extra: imported only for GatewayClient(..., tracing=True).
    "opentelemetry",
    "gateway.tracing",
    "gateway.services",
    "gateway.storage",
    "gateway.config",
    "gateway.rpc",
    "gateway.server",
    "gateway.assembly",
    "gateway.cli",
    "gateway.console",
    "gateway.scheduler",
)

_PROBE = """
import json, sys
import gateway.client
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def test_import_gateway_client_loads_no_server_module() -> None:
    loaded = _loaded_after(_PROBE)
    assert "gateway.client" in loaded and "gateway.contract" in loaded
    server = [m for m in loaded if any(m == s or m.startswith(s + ".") for s in SERVER_ONLY)]
    assert server == [], f"import gateway.client loaded server modules: {server[:20]}"


def test_contract_imports_only_generated_code() -> None:
    loaded = _loaded_after(
        "import json, sys, gateway.contract; print(json.dumps(sorted(sys.modules)))"
    )
    ours = [m for m in loaded if m.split(".")[0] in ("gateway", "adapters", "mutual_recognition")]
    assert ours == ["gateway", "gateway.contract"]
