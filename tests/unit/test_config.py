"""Configuration: defaults, a TOML file, and YRDGW_* environment variables (which win)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import GatewaySettings, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YRDGW_CONFIG", raising=False)
    s = GatewaySettings()
    assert s.listen == "127.0.0.1:50051"
    assert s.database_url == "sqlite:///./var/yrdgw.sqlite3"
    assert s.cert_dir == Path("certs/dev")


def test_toml_file_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('listen = "127.0.0.1:6000"\nmax_concurrent_rpcs = 8\nlog_format = "json"\n')
    monkeypatch.setenv("YRDGW_MAX_CONCURRENT_RPCS", "16")
    s = load_settings(cfg)
    assert s.listen == "127.0.0.1:6000"
    assert s.max_concurrent_rpcs == 16
    assert s.log_format == "json"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YRDGW_CONFIG", raising=False)
    monkeypatch.setenv("YRDGW_MAX_MESSAGE_BYTES", "0")
    with pytest.raises(ValidationError):
        GatewaySettings()


def test_settings_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YRDGW_CONFIG", raising=False)
    s = GatewaySettings()
    with pytest.raises(ValidationError):
        s.listen = "0.0.0.0:1"  # type: ignore[misc]
