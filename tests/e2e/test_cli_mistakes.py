"""The mistakes an operator makes, run through the real `yrdgw` in subprocesses: each is said in a
few lines with what to do, exits with its documented code, and never shows a traceback.

One PKI and one gateway serve every row; the rows run concurrently (each a process) in a module
fixture, and each row is then checked as its own test case.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.cli.errors import ExitCode
from tests.served import ServedGateway

# Some 55 processes start in the fixture: on a loaded machine that takes minutes.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
YRDGW = str(Path(sys.executable).parent / "yrdgw")
SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "samples"

OK, ERROR, USAGE, FINDINGS, NOTHING = (
    ExitCode.OK,
    ExitCode.ERROR,
    ExitCode.USAGE,
    ExitCode.FINDINGS,
    ExitCode.NOTHING_TO_DO,
)


@dataclass(frozen=True)
class Mistake:
    """A command line ({gw}, {pki}, {tmp}, {cfg}, {port}, {tls} are filled in), the exit code it
    must end with and texts its output must hold (and must not)."""

    id: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    never: tuple[str, ...] = ()


def m(
    id: str,
    args: str,
    code: int,
    *says: str,
    env: dict[str, str] | None = None,
    never: tuple[str, ...] = (),
) -> Mistake:
    return Mistake(id, tuple(args.split()), code, says, env or {}, never)


GW = "--gateway {gw} --cert-dir {pki}"
PG_DOWN = "postgresql+psycopg://yrd:s3cret@127.0.0.1:1/test"

MISTAKES = [
    # -- databases ---------------------------------------------------------------------------
    m(
        "postgres-scheme",
        "db upgrade --database-url postgres://u:s3cret@h/db",
        USAGE,
        "postgresql+psycopg://u:***@h/db",
        never=("s3cret",),
    ),
    m("psycopg2-url", "db upgrade --database-url postgresql+psycopg2://u@h/db", USAGE, "psycopg 3"),
    m("not-a-url", "db upgrade --database-url nonsense", USAGE, "not a database URL"),
    m(
        "database-down",
        f"db upgrade --database-url {PG_DOWN}",
        ERROR,
        "cannot use the database postgresql+psycopg://yrd:***@127.0.0.1:1/test",
        "is the database server running",
        never=("s3cret",),
    ),
    m(
        "ledger-check-db-down",
        f"ledger check --database-url {PG_DOWN}",
        ERROR,
        "is the database server running",
    ),
    m(
        "ledger-check-no-file",
        "ledger check --database-url sqlite:///{tmp}/absent/gw.db",
        ERROR,
        "no database at",
        "`yrdgw db upgrade` creates",
    ),
    m(
        "audit-verify-no-file",
        "audit verify --database-url sqlite:///{tmp}/absent.db",
        ERROR,
        "no database at",
    ),
    m(
        "reconcile-list-not-ours",
        "reconcile list -c {cfg} --database-url sqlite:///{tmp}/empty.db",
        ERROR,
        "not a yrdgw database",
    ),
    m(
        "expire-db-down",
        f"transfer expire -c {{cfg}} --database-url {PG_DOWN}",
        ERROR,
        "cannot use the database",
    ),
    m(
        "recognition-units-no-file",
        "recognition units recognitions/x --database-url sqlite:///{tmp}/absent.db",
        ERROR,
        "no database at",
    ),
    m(
        "db-current-no-file",
        "db current --database-url sqlite:///{tmp}/absent.db",
        ERROR,
        "no database at",
    ),
    # -- configuration -----------------------------------------------------------------------
    m(
        "config-typo",
        "db upgrade -c {tmp}/typo.toml",
        ERROR,
        "typo.toml",
        "unknown setting 'lisen'",
        "did you mean 'listen'?",
    ),
    m(
        "config-toml-syntax",
        "db upgrade -c {tmp}/bad.toml",
        ERROR,
        "bad.toml",
        "TOML syntax error",
        "line 1",
    ),
    m(
        "config-missing",
        "db upgrade -c {tmp}/none.toml",
        ERROR,
        "no configuration file",
        "gateway.example.toml",
    ),
    m(
        "config-missing-env",
        "ledger check",
        ERROR,
        "no configuration file",
        env={"YRDGW_CONFIG": "{tmp}/none.toml"},
    ),
    m(
        "env-not-an-int",
        "db upgrade --database-url sqlite:///{tmp}/w.db",
        ERROR,
        "YRDGW_MAX_WORKERS",
        "valid integer",
        env={"YRDGW_MAX_WORKERS": "abc"},
    ),
    m(
        "serve-twice",
        "serve -c {cfg} --listen 127.0.0.1:{port}",
        ERROR,
        "cannot listen on 127.0.0.1:{port}",
        "another `yrdgw serve`",
        never=("E0000", "grpc"),
    ),
    m(
        "serve-no-certs",
        "serve -c {cfg} --cert-dir {tmp}/nocerts --listen 127.0.0.1:0",
        ERROR,
        "nocerts",
    ),
    # -- reaching the gateway ----------------------------------------------------------------
    m(
        "gateway-down",
        "health --gateway 127.0.0.1:1 --cert-dir {pki} --region 310000",
        ERROR,
        "cannot reach the gateway at 127.0.0.1:1",
        "is `yrdgw serve` running",
    ),
    m(
        "gateway-default-port",
        "health --gateway 127.0.0.1 --cert-dir {pki} --region 310000",
        ERROR,
        "127.0.0.1:50051",
        never=(":443",),
    ),
    m(
        "gateway-not-tls",
        "health --gateway {tls} --cert-dir {pki} --region 310000",
        ERROR,
        "refused the TLS connection",
        "share one CA",
    ),
    m(
        "signed-call-gateway-down",
        "transfer propose t-1 --to 320000 --range 1-2 --gateway 127.0.0.1:1 --cert-dir {pki} "
        "--region 310000",
        ERROR,
        "is `yrdgw serve` running",
    ),
    m("no-region", f"health {GW}", USAGE, "which region are you?", "--region"),
    m(
        "no-cert-dir",
        "health --gateway {gw} --cert-dir {tmp}/nowhere --region 310000",
        ERROR,
        "no CA certificate in",
        "pki init",
    ),
    m(
        "no-identity",
        f"health {GW} --region 440000",
        ERROR,
        "no certificate for 440000",
        "pki issue",
    ),
    m(
        "no-such-admin",
        f"keys list {GW} --region 310000 --admin admin-z",
        ERROR,
        "no certificate for 310000 admin admin-z",
    ),
    m(
        "unknown-context",
        f"health {GW} --region 310000",
        USAGE,
        "no context named 'nosuch'",
        env={"YRDGW_CONTEXT": "nosuch"},
    ),
    m(
        "context-use-unknown",
        "context use nosuch",
        ERROR,
        "no context named 'nosuch'",
        "yrdgw context set",
    ),
    # -- the command line itself ---------------------------------------------------------------
    m(
        "region-five-digits",
        "registry publish x.json --region 31000 --cert-dir {pki}",
        USAGE,
        "six-digit",
    ),
    m("filter-region-bad", f"transfer list {GW} --region 310000 --source 31", USAGE, "six-digit"),
    m(
        "range-malformed",
        f"transfer propose t-2 --to 320000 --range 5-x {GW} --region 310000",
        USAGE,
        "START-END",
    ),
    m(
        "purpose-unknown",
        f"transfer retire r-1 --purpose bogus --beneficiary b {GW} --region 310000",
        USAGE,
        "ets-offset",
    ),
    m(
        "retirement-purpose-unknown",
        f"transfer retirements list --purpose transfer {GW} --region 310000",
        USAGE,
        "ets-offset",
    ),
    m(
        "retirement-filter-region-bad",
        f"transfer retirements list --of-region 3100 {GW} --region 310000",
        USAGE,
        "six-digit",
    ),
    m("report-format-unknown", "reconcile report 1 --format xml -c {cfg}", USAGE, "csv"),
    m("output-unknown", f"keys list {GW} --region 310000 -o xml", USAGE, "yaml"),
    m("unknown-command", "transfr list", USAGE, "No such command"),
    m("unknown-option", "health --regoin 310000", USAGE, "No such option"),
    m(
        "convert-native-needs-target",
        "adapters convert x.json --region 310000 --to native",
        USAGE,
        "--target-region",
    ),
    # -- refusals by the gateway ---------------------------------------------------------------
    m(
        "transfer-unknown",
        f"transfer show regions/310000/transfers/nope {GW} --region 310000",
        ERROR,
        "TRANSFER_NOT_FOUND",
        "yrdgw transfer list",
    ),
    m(
        "retirement-unknown",
        f"transfer retirements show regions/310000/retirements/nope {GW} --region 310000",
        ERROR,
        "RETIREMENT_NOT_FOUND",
        "yrdgw transfer retirements list",
    ),
    m(
        "retirement-year-bad",
        f"transfer retirements list --compliance-year 1999 {GW} --region 310000",
        ERROR,
        "compliance_year",
    ),
    m(
        "brackets-kept",
        f"transfer show regions/310000/transfers/[x] {GW} --region 310000",
        ERROR,
        "transfers/[x]",
    ),
    m(
        "serials-unknown",
        f"transfer propose t-3 --to 320000 --range 1-100 {GW} --region 330000",
        ERROR,
        "SERIALS_UNKNOWN",
        "origin_region = 330000",
    ),
    m(
        "recognition-unknown",
        f"recognition show recognitions/nope {GW} --region 310000",
        ERROR,
        "NOT_FOUND",
    ),
    m(
        "revoke-key-needs-admin",
        f"keys revoke abc --reason r {GW} --region 310000",
        USAGE,
        "--admin NAME",
    ),
    m(
        "approve-needs-admin",
        f"recognition approve recognitions/x --comment c {GW} --region 310000",
        USAGE,
        "--admin NAME",
    ),
    m(
        "duplicates-resolve-needs-admin",
        f"duplicates resolve duplicateCases/dc-1 --duplicate --comment c {GW} --region 310000",
        USAGE,
        "only an administrator",
        "--admin NAME",
    ),
    m(
        "duplicates-resolve-which",
        f"duplicates resolve duplicateCases/dc-1 --comment c --admin admin-b {GW} --region 310000",
        USAGE,
        "either --distinct or --duplicate",
    ),
    m(
        "duplicates-standing-with-distinct",
        f"duplicates resolve duplicateCases/dc-1 --distinct --standing regions/310000/projects/x "
        f"--comment c --admin admin-b {GW} --region 310000",
        USAGE,
        "--standing goes with --duplicate",
    ),
    m(
        "duplicates-case-unknown",
        f"duplicates show duplicateCases/nope {GW} --region 310000",
        ERROR,
        "DUPLICATE_CASE_NOT_FOUND",
        "yrdgw duplicates list",
    ),
    m("duplicates-state-unknown", f"duplicates list --state closed {GW}", USAGE, "open"),
    m(
        "duplicates-region-bad",
        f"duplicates list --of-region 3100 {GW} --region 310000",
        USAGE,
        "six-digit",
    ),
    m(
        "revoke-unknown-key",
        f"keys revoke 00000000000000000000000000000000 --reason r --admin admin-a {GW} "
        "--region 310000",
        ERROR,
        "SIGNING_KEY_NOT_FOUND",
    ),
    m(
        "publish-missing-file",
        f"registry publish {{tmp}}/absent.json {GW} --region 310000",
        ERROR,
        "no such file",
        "absent.json",
    ),
    m(
        "signer-state-corrupt",
        "transfer propose t-4 --to 310000 --range 1-2 --gateway {gw} "
        "--cert-dir {tmp}/pki-copy --region 320000",
        ERROR,
        "signer-state.json is corrupt",
        "delete",
    ),
    # -- files and PKI -------------------------------------------------------------------------
    m(
        "pki-issue-exists",
        "pki issue --region 310000 --dir {pki}",
        ERROR,
        "already holds",
        "--force",
    ),
    m("pki-issue-bad-region", "pki issue --region 31 --dir {pki}", USAGE, "six-digit"),
    m("pki-init-twice", "pki init --dir {pki}", ERROR, "already holds a CA"),
    m("demo-keep-twice", "demo --keep {tmp}/kept", ERROR, "not empty", "another --keep"),
    m(
        "convert-missing-file",
        "adapters convert {tmp}/absent.json --region 310000",
        ERROR,
        "no such file",
    ),
    m(
        "snapshot-file-wrong",
        "reconcile run -c {cfg} --snapshot {tmp}/snap.json",
        ERROR,
        "not a snapshot file",
    ),
    m(
        "submit-snapshot-not-mine",
        f"reconcile submit {{tmp}}/snap-330000.json {GW} --region 310000",
        USAGE,
        "snapshot of 330000",
    ),
    # -- findings and nothing to do ------------------------------------------------------------
    m(
        "reconcile-nothing",
        "reconcile run -c {cfg} --region 320000",
        NOTHING,
        "nothing to reconcile",
        "reconcile submit",
    ),
    m("report-unknown", "reconcile report 999 -c {cfg}", ERROR, "NOT_FOUND"),
]


@dataclass
class World:
    values: dict[str, str]
    results: dict[str, subprocess.CompletedProcess[str]]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [YRDGW, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "YRDGW_CONTEXTS": env["_contexts"], **env},
        check=False,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("mistakes")
    pki = tmp / "pki"
    subprocess.run([YRDGW, "pki", "init", "--dir", str(pki)], check=True, capture_output=True)
    (tmp / "typo.toml").write_text('lisen = "127.0.0.1:0"\n')
    (tmp / "bad.toml").write_text('listen = "127.0.0.1:0\n')
    (tmp / "empty.db").write_bytes(b"")
    (tmp / "kept").mkdir()
    (tmp / "kept" / "file").write_text("x")
    (tmp / "snap.json").write_text('{"snapshot_time": "2026-01-01T00:00:00+08:00"}')
    (tmp / "snap-330000.json").write_text(
        '{"region": "330000", "snapshot_time": "2026-01-01T00:00:00+08:00", "blocks": []}'
    )
    shutil.copytree(pki, tmp / "pki-copy")
    (tmp / "pki-copy/regions/320000/registry/signer-state.json").write_text("{not json")
    database = f"sqlite:///{tmp / 'gw.sqlite3'}"
    cfg = tmp / "gateway.toml"
    cfg.write_text(
        f'listen = "127.0.0.1:0"\ndatabase_url = "{database}"\ncert_dir = "{pki}"\n'
        'metrics_listen = ""\nlog_format = "json"\nshutdown_grace_s = 1\n'
        "scheduler_enabled = false\n"
    )
    gateway = ServedGateway(cfg)
    # Something that accepts TCP connections and closes them: not a TLS server.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def refuse() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=refuse, daemon=True).start()
    try:
        port = gateway.wait_started(timeout=60)
        values = {
            "gw": gateway.target,
            "pki": str(pki),
            "tmp": str(tmp),
            "cfg": str(cfg),
            "port": str(port),
            "tls": f"127.0.0.1:{listener.getsockname()[1]}",
        }
        env_base = {"_contexts": str(tmp / "contexts.toml")}
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {
                mistake.id: pool.submit(
                    _run,
                    [_fill(a, values) for a in mistake.args],
                    {**env_base, **{k: _fill(v, values) for k, v in mistake.env.items()}},
                )
                for mistake in MISTAKES
            }
            results = {key: f.result() for key, f in futures.items()}
        yield World(values, results)
    finally:
        listener.close()
        gateway.kill()


def test_there_are_at_least_forty_mistakes() -> None:
    assert len(MISTAKES) >= 40
    assert len({x.id for x in MISTAKES}) == len(MISTAKES)


@pytest.mark.parametrize("mistake", MISTAKES, ids=[x.id for x in MISTAKES])
def test_a_mistake_is_said_in_a_few_lines(world: World, mistake: Mistake) -> None:
    result = world.results[mistake.id]
    shown = f"$ yrdgw {' '.join(mistake.args)}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, shown
    assert result.returncode == mistake.code, shown
    output = result.stdout + result.stderr
    for text in mistake.says:
        assert _fill(text, world.values) in output, shown
    for text in mistake.never:
        assert _fill(text, world.values) not in output, shown
    if mistake.code in (ERROR, NOTHING) and "error:" in result.stderr:
        said = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(said) <= 6, shown


def test_a_missing_sqlite_file_is_not_created(world: World) -> None:
    assert not (Path(world.values["tmp"]) / "absent").exists()
    assert not (Path(world.values["tmp"]) / "absent.db").exists()
    assert (Path(world.values["tmp"]) / "empty.db").stat().st_size == 0


def test_debug_shows_the_traceback(world: World) -> None:
    result = _run(
        ["--debug", "db", "upgrade", "--database-url", "nonsense"],
        {"_contexts": str(Path(world.values["tmp"]) / "contexts.toml")},
    )
    assert result.returncode == USAGE
    # The URL check raises before anything else; the traceback shows where.
    assert "Traceback" in result.stderr and "not a database URL" in result.stderr
