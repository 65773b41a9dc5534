"""`-o json|yaml|name` of every command that prints objects: the output parses, the names it
gives are the ones `-o name` prints, and each can be fed to the matching `show`. Tables keep
identifiers whole on a narrow terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.served import ServedGateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
YRDGW = str(Path(sys.executable).parent / "yrdgw")
SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "samples"


def run(*args: str, columns: int = 200, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [YRDGW, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": str(columns), **(env or {})},
        check=False,
    )
    assert result.returncode == 0, f"yrdgw {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


class World:
    def __init__(self, tmp: Path, gateway: ServedGateway, database: str) -> None:
        self.tmp = tmp
        self.pki = tmp / "pki"
        self.gateway = gateway
        self.database = database
        self.cfg = tmp / "gateway.toml"

    def call(self, *args: str, region: str = "310000", **kw: Any) -> str:
        env = {
            "YRDGW_GATEWAY": self.gateway.target,
            "YRDGW_CERT_DIR": str(self.pki),
            "YRDGW_REGION": region,
            "YRDGW_CONTEXTS": str(self.tmp / "contexts.toml"),
        }
        return run(*args, env=env, **kw)

    def json(self, *args: str, region: str = "310000") -> Any:
        """A command's -o json (run once: it may change something)."""
        return json.loads(self.call(*args, "-o", "json", region=region))

    def read(self, *args: str, region: str = "310000") -> Any:
        """A reading command's -o json, which its -o yaml equals."""
        doc = self.json(*args, region=region)
        assert yaml.safe_load(self.call(*args, "-o", "yaml", region=region)) == doc
        return doc

    def names(self, *args: str, region: str = "310000") -> list[str]:
        return self.call(*args, "-o", "name", region=region).split()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("output")
    run("pki", "init", "--dir", str(tmp / "pki"))
    database = f"sqlite:///{tmp / 'gw.sqlite3'}"
    (tmp / "gateway.toml").write_text(
        f'listen = "127.0.0.1:0"\ndatabase_url = "{database}"\ncert_dir = "{tmp / "pki"}"\n'
        'metrics_listen = ""\nlog_format = "json"\nshutdown_grace_s = 1\n'
        "scheduler_enabled = false\nrecognition_enforced = false\n"
    )
    gateway = ServedGateway(tmp / "gateway.toml")
    try:
        gateway.wait_started(timeout=60)
        yield World(tmp, gateway, database)
    finally:
        gateway.kill()


def test_each_object_printing_command_round_trips_its_identifiers(world: World) -> None:
    files = [str(SAMPLES / f"340000-{k}.csv") for k in ("methodology", "project", "issuance")]
    published = world.json("registry", "publish", *files, region="340000")
    records = [r for f in published for r in f["records"]]
    assert len(published) == 3 and all(f["accepted"] for f in published) and records

    proposed = world.json(
        "transfer",
        "propose",
        "t-out-1",
        "--to",
        "310000",
        "--range",
        "1000-2000999",
        region="340000",
    )
    name = proposed["name"]
    assert name == "regions/340000/transfers/t-out-1"
    listed = world.read("transfer", "list", "--destination", "310000")
    assert [t["name"] for t in listed] == world.names("transfer", "list", "--destination", "310000")
    assert name in [t["name"] for t in listed]
    for shown_name in world.names("transfer", "list"):
        assert world.read("transfer", "show", shown_name)["name"] == shown_name
    accepted = world.json("transfer", "accept", name)
    assert accepted["state"] == "TRANSFER_STATE_COMPLETED"

    held = world.read("ledger", "holdings")
    assert [b["name"] for b in held] == world.names("ledger", "holdings")
    assert {b["serials"]["start"] for b in held} == {"1000"}

    retired = world.json(
        "transfer",
        "retire",
        "r-out-1",
        "--purpose",
        "charitable",
        "--beneficiary",
        "x",
        "--origin",
        "340000",
        "--range",
        "1000-1000999",
    )
    assert retired["name"] == "regions/310000/retirements/r-out-1"
    retirements = world.read("transfer", "retirements", "list", "--of-region", "310000")
    assert [r["name"] for r in retirements] == [retired["name"]]
    assert world.names("transfer", "retirements", "list") == [retired["name"]]
    for shown_name in world.names("transfer", "retirements", "list", "--purpose", "charitable"):
        shown = world.read("transfer", "retirements", "show", shown_name)
        assert shown == retired  # what retire printed, blocks included
    assert world.read("transfer", "retirements", "list", "--purpose", "ets-offset") == []
    assert world.read("transfer", "retirements", "list", "--of-region", "340000") == []
    table = world.call("transfer", "retirements", "show", retired["name"])
    assert "340000 1000..1000999" in table and "from outside 310000" in table

    subject = "regions/340000/methodologies/AH-FFX-PV-2024-02"
    requested = world.json(
        "recognition", "request", subject, "--version", "1", "--to", "320000", region="340000"
    )
    assert [r["subject"] for r in requested] == [subject]
    recognitions = world.read("recognition", "list")
    assert [r["name"] for r in recognitions] == world.names("recognition", "list")
    for rec in world.names("recognition", "list"):
        assert world.read("recognition", "show", rec)[0]["name"] == rec

    keys = world.read("keys", "list", "--of-region", "320000")
    ids = world.names("keys", "list", "--of-region", "320000")
    assert [k["key_id"] for k in keys] == ids and len(ids) == 3

    info = world.read("info")
    assert world.names("info")[0] == info["signing_keys"][0]["key_id"]
    assert world.read("audit", "verify")["ok"] is True

    adapters = world.read("adapters", "list")
    assert [a["name"] for a in adapters] == world.names("adapters", "list")

    # On the gateway's host.
    ops = ("-c", str(world.cfg))
    snapshot = world.tmp / "sh.json"
    world.call("reconcile", "snapshot", "--of-region", "310000", "--out", str(snapshot), *ops)
    world.call("reconcile", "run", "--snapshot", str(snapshot), *ops)
    reports = world.read("reconcile", "list", *ops)
    assert [r["name"] for r in reports] == world.names("reconcile", "list", *ops)
    for report in world.names("reconcile", "list", *ops):
        assert json.loads(world.call("reconcile", "report", report, *ops))["name"] == report
    assert world.read("ledger", "check", *ops) == {"ok": True, "problems": []}
    current = world.read("db", "current", *ops)
    assert current["current"] == current["head"]
    history = world.read("db", "history")
    assert history[0]["name"] == current["head"]

    world.call("context", "set", "sh", "--region", "310000", "--cert-dir", str(world.pki))
    assert world.names("context", "list") == ["sh"]


def test_tables_keep_identifiers_whole_on_a_narrow_terminal(world: World) -> None:
    files = [str(SAMPLES / f"310000-{k}.json") for k in ("methodology", "project", "issuance")]
    world.call("registry", "publish", *files, region="310000")
    long_id = "a-rather-long-transfer-identifier-for-the-narrow-test"
    world.call("transfer", "propose", long_id, "--to", "320000", "--range", "1000001000-1000001999")
    name = f"regions/310000/transfers/{long_id}"
    narrow = world.call("transfer", "list", "--source", "310000", columns=60)
    assert any(name in line for line in narrow.splitlines()), narrow
    keys = world.call("keys", "list", "--of-region", "330000", columns=50)
    for key_id in world.names("keys", "list", "--of-region", "330000"):
        assert any(key_id in line for line in keys.splitlines())


def test_the_caller_comes_from_the_context_or_the_only_identity(world: World) -> None:
    import shutil

    # A registry's own certificate directory: the CA and its one identity.
    mine = world.tmp / "ah-only"
    (mine / "regions/340000").mkdir(parents=True)
    shutil.copy(world.pki / "ca.pem", mine / "ca.pem")
    shutil.copytree(world.pki / "regions/340000/registry", mine / "regions/340000/registry")
    contexts = str(world.tmp / "contexts-caller.toml")
    env = {"YRDGW_CONTEXTS": contexts, "YRDGW_GATEWAY": world.gateway.target}
    # No --region: the only identity's region (in the full PKI it is a usage error).
    assert run("health", "--cert-dir", str(mine), env=env).strip() == "SERVING"
    run(
        "context",
        "set",
        "sh-admin",
        "--gateway",
        world.gateway.target,
        "--cert-dir",
        str(world.pki),
        "--region",
        "310000",
        "--admin",
        "admin-a",
        env={"YRDGW_CONTEXTS": contexts},
    )
    run("context", "use", "sh-admin", env={"YRDGW_CONTEXTS": contexts})
    keys = json.loads(
        run("keys", "list", "--of-region", "310000", "-o", "json", env={"YRDGW_CONTEXTS": contexts})
    )
    assert len(keys) == 3
    # A flag wins over the context.
    assert (
        run(
            "health", "--region", "320000", "--admin", "admin-b", env={"YRDGW_CONTEXTS": contexts}
        ).strip()
        == "SERVING"
    )


def _refused(world: World, *args: str, region: str = "310000") -> subprocess.CompletedProcess[str]:
    """A command the gateway refuses: exit 1, said on stderr with a hint, no traceback."""
    result = subprocess.run(
        [YRDGW, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "COLUMNS": "200",
            "YRDGW_GATEWAY": world.gateway.target,
            "YRDGW_CERT_DIR": str(world.pki),
            "YRDGW_REGION": region,
            "YRDGW_CONTEXTS": str(world.tmp / "contexts.toml"),
        },
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr, result.stderr
    return result


def test_duplicates_list_show_and_resolve_round_trip_their_names(world: World) -> None:
    from gateway.samples import WUJIANG_ISSUANCE, duplicate_pair_documents

    pair = duplicate_pair_documents()
    for region, ext in (("310000", "json"), ("320000", "xml")):
        files = [str(SAMPLES / f"{region}-methodology.{ext}")]
        for i, (_, body) in enumerate(pair[region]):
            path = world.tmp / f"pair-{region}-{i}.{ext}"
            path.write_bytes(body)
            files.append(str(path))
        published = world.json("registry", "publish", *files, region=region)
        assert all(f["accepted"] for f in published), published

    listed = world.read("duplicates", "list", "--state", "open", "--of-region", "320000")
    names = world.names("duplicates", "list", "--strength", "certain")
    assert [c["name"] for c in listed] == names and len(names) == 1
    (case,) = listed
    assert case["first"]["identity"]["site"]["datum"] == "COORDINATE_DATUM_WGS84"
    assert case["second"]["identity"]["site"] == {
        "latitude": "31.045964",
        "longitude": "120.893771",
        "datum": "COORDINATE_DATUM_GCJ02",  # as filed; site_wgs84 is the converted one
    }
    assert case["evidence"]["distance_metres"] == "31.5"
    for name in names:
        assert world.read("duplicates", "show", name) == case
    assert world.read("duplicates", "list", "--state", "distinct") == []
    assert world.read("duplicates", "list", "--strength", "possible") == []
    assert world.names("duplicates", "list", "--subject", case["second"]["subject"]) == names
    assert world.names("duplicates", "list", "--limit", "1", "--page-size", "1") == names
    table = world.call("duplicates", "show", names[0], columns=100)
    assert names[0] in table and "0310118004567" in table and "(GCJ02)" in table

    # Held units are refused, with the case to look at.
    held = _refused(
        world,
        "transfer",
        "propose",
        "t-held",
        "--to",
        "310000",
        "--range",
        "30001000000-30001000999",
        region="320000",
    )
    assert "UNITS_HELD" in held.stderr and f"yrdgw duplicates show {names[0]}" in held.stderr
    outsider = _refused(
        world, "duplicates", "resolve", names[0], "--distinct", "--comment", "x",
        "--admin", "admin-a", region="330000",
    )  # fmt: skip
    assert "NOT_DECIDING_REGION" in outsider.stderr and "310000,320000" in outsider.stderr

    admin = ("--comment", "同一电站", "--duplicate", "--admin")
    first = world.json("duplicates", "resolve", names[0], *admin, "admin-a")
    assert first["state"] == "DUPLICATE_CASE_STATE_OPEN" and len(first["decisions"]) == 1
    again = _refused(world, "duplicates", "resolve", names[0], *admin, "admin-a")
    assert "CASE_ALREADY_DECIDED" in again.stderr and "another administrator" in again.stderr
    wrong = _refused(
        world, "duplicates", "resolve", names[0], *admin, "admin-b", "--standing",
        "regions/310000/projects/nope",
    )  # fmt: skip
    assert "STANDING_INVALID" in wrong.stderr and "--standing names one" in wrong.stderr
    assert world.names("duplicates", "resolve", names[0], *admin, "admin-b") == names
    done = world.json("duplicates", "resolve", names[0], *admin, "admin-a", region="320000")
    assert done["state"] == "DUPLICATE_CASE_STATE_DUPLICATE"
    assert done["standing"] == case["first"]["subject"]  # the earlier one, by default
    outcomes = {i["issuance"]: i["outcome"] for i in done["issuances"]}
    assert outcomes[WUJIANG_ISSUANCE] == "HOLD_OUTCOME_CANCELLED"
    assert world.read("duplicates", "show", names[0]) == done
    closed = _refused(world, "duplicates", "resolve", names[0], *admin, "admin-b", region="320000")
    assert "DUPLICATE_CASE_CLOSED" in closed.stderr
