"""``yrdgw adapters convert`` with records of other regions, run as a subprocess: a Shanghai
methodology rendered in Anhui's format and read back from that Anhui document is the same record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import SAMPLES, run

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("target", ["320000", "330000", "340000"])
def test_convert_renders_and_reads_foreign_records(tmp_path: Path, target: str) -> None:
    source = str(SAMPLES / "310000-methodology.json")
    common = json.loads(run("adapters", "convert", "--region", "310000", source).stdout)
    native = run(
        "adapters", "convert", "--region", "310000", "--to", "native", "--target-region", target,
        source,
    )  # fmt: skip
    assert native.returncode == 0 and native.stderr == ""
    document = tmp_path / "foreign"
    document.write_bytes(
        native.stdout.encode("gb18030" if target == "340000" else "utf-8").replace(b"\r\r", b"\r")
    )
    back = run("adapters", "convert", "--region", target, str(document))
    assert json.loads(back.stdout) == common
    assert common["region"] == "310000" and common["formula"] == "ER = EG × EF_grid"
