"""What the README and the example configuration say about the command line stays true."""

from __future__ import annotations

from pathlib import Path

from gateway.cli.errors import exit_code_table
from gateway.config import GatewaySettings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_shows_the_exit_codes_of_the_enum() -> None:
    assert exit_code_table() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_example_configuration_loads_and_names_every_setting() -> None:
    example = ROOT / "docs" / "gateway.example.toml"
    loaded = load_settings(example)
    assert loaded.model_dump() == GatewaySettings().model_dump()
    text = example.read_text(encoding="utf-8")
    missing = [name for name in GatewaySettings.model_fields if f"{name} =" not in text]
    missing = [n for n in missing if f"[{n}." not in text]
    assert missing == []
