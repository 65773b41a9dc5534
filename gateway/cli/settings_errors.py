"""A configuration that does not validate, said as the operator can fix it: the file or the
``YRDGW_*`` variable, the setting, what is wrong, and the closest known setting for a typo."""

from __future__ import annotations

import os
from typing import Any

from gateway.cli.errors import ExitCode, Explained, did_you_mean


def describe(exc: Any, config: str) -> Explained:
    """One line per problem of a pydantic ValidationError raised while loading the settings."""
    from gateway.config import GatewaySettings

    known = sorted(GatewaySettings.model_fields)
    lines: list[str] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        key = loc[0] if loc else "?"
        where = _source(key, error.get("input"), config)
        if error.get("type") == "extra_forbidden":
            lines.append(f"{where}: unknown setting {'.'.join(loc)!r}{did_you_mean(key, known)}")
        else:
            lines.append(f"{where}: {'.'.join(loc)}: {error.get('msg', 'invalid')}")
    first, *rest = lines or ["invalid configuration"]
    return Explained(
        first,
        rest,
        "the settings and their defaults are in docs/gateway.example.toml",
        ExitCode.ERROR,
    )


def _source(key: str, value: Any, config: str) -> str:
    variable = f"YRDGW_{key.upper()}"
    if variable in os.environ and (value is None or str(value) == os.environ[variable]):
        return variable
    if variable in os.environ and not config:
        return variable
    return config or "configuration"
