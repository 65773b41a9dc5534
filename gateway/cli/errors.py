"""Exit codes, and the one place where a failure becomes one or two lines for the operator.

``main`` (in ``gateway.cli``) sends every exception a command lets through to :func:`explain`,
which knows the failures an operator can cause (a file, an address, a database, a refusal of the
gateway) and says what failed, on what, and what to do. Anything else is a bug and says so. The
traceback is shown only with ``--debug`` or ``YRDGW_DEBUG=1``.
"""

from __future__ import annotations

import difflib
import enum
import errno
import itertools
import os
import re
from dataclasses import dataclass, field
from typing import Any


class ExitCode(enum.IntEnum):
    """What ``yrdgw`` exits with, for every command (the README's table is rendered from this)."""

    OK = 0
    """Done."""
    ERROR = 1
    """Failed: the gateway refused, a file, address or database was wrong or unreachable."""
    USAGE = 2
    """The command line itself was wrong (unknown option, bad value, missing argument)."""
    FINDINGS = 3
    """The check ran and found something: discrepancies, tampering, invariant violations."""
    NOTHING_TO_DO = 4
    """There was nothing to act on (e.g. no holdings snapshot to reconcile)."""


class UserError(Exception):
    """A failure the operator can fix: MESSAGE (what failed, on what) and HINT (what to do)."""

    def __init__(self, message: str, hint: str = "", code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


@dataclass
class Explained:
    """A failure as the operator sees it: the first line, detail lines, a hint and the code."""

    message: str
    details: list[str] = field(default_factory=list)
    hint: str = ""
    code: ExitCode = ExitCode.ERROR


def debugging() -> bool:
    """Whether tracebacks are wanted (``--debug`` sets ``YRDGW_DEBUG=1`` for the process)."""
    return os.environ.get("YRDGW_DEBUG", "") not in ("", "0", "false", "no")


_PASSWORD = re.compile(r"(://[^:/@]*:)[^/]*@")


def mask(url: str) -> str:
    """A database URL with its password replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", url)


CONTEXT: dict[str, str] = {}
"""What the running command acts on, for the explanation of a failure: ``gateway`` (address),
``database`` (URL), ``config`` (file), ``file`` (an input file)."""


def explain(exc: BaseException) -> Explained:
    """The operator's view of a failure; unknown exceptions are reported as bugs."""
    for kind, explainer in _explainers():
        if isinstance(exc, kind):
            found: Explained | None = explainer(exc)
            if found is not None:
                return found
    return Explained(
        f"unexpected {type(exc).__name__}: {exc}",
        hint="this is a bug in yrdgw; run again with --debug and report the traceback",
    )


def _user(exc: Any) -> Explained:
    return Explained(exc.message, hint=exc.hint, code=exc.code)


REASON_HINTS: dict[str, str] = {
    "NOT_RECOGNISED": "the source region asks for recognition: "
    "`yrdgw recognition request {project} --to DESTINATION`",
    "SNAPSHOT_MISSING": "the registry submits one: `yrdgw reconcile submit FILE`",
    "INSUFFICIENT_UNITS": "see what you hold: `yrdgw ledger holdings`",
    "SERIALS_NOT_HELD": "see what you hold: `yrdgw ledger holdings`",
    "SERIALS_NOT_ACTIVE": "see what you hold: `yrdgw ledger holdings`",
    "SIGN_TIME_OUT_OF_RANGE": "check this host's clock (the gateway allows sign_time_skew_s)",
    "REPORT_NOT_FOUND": "list reports with `yrdgw reconcile list`",
    "SEQUENCE_GAP": "the signer's chain head is stale; delete signer-state.json beside the key "
    "and try again (it is re-read from the gateway)",
    "PREVIOUS_HASH_MISMATCH": "the signer's chain head is stale; delete signer-state.json beside "
    "the key and try again (it is re-read from the gateway)",
    "CERTIFICATE_REVOKED": "this certificate is revoked; issue a new one with `yrdgw pki issue`",
    "SIGNING_KEY_UNKNOWN": "a newly issued key is loaded when the gateway starts or gets SIGHUP",
    "SIGNING_KEY_REVOKED": "issue a new key (`yrdgw pki issue --force`), then SIGHUP the gateway",
    "WRONG_REGION": "--region is your own region (YRDGW_REGION, or the context's)",
    "ROLE_NOT_ALLOWED": "this call needs another role (administrators: --admin NAME)",
    "STORAGE_UNAVAILABLE": "the gateway's database is not answering; try again shortly",
    "TRANSFER_NOT_FOUND": "list transfers with `yrdgw transfer list`",
    "RETIREMENT_NOT_FOUND": "list retirements with `yrdgw transfer retirements list`",
    "RECOGNITION_NOT_FOUND": "list recognitions with `yrdgw recognition list`",
    "UNITS_HELD": "a duplicate case holds these units until its deciding regions resolve it: "
    "`yrdgw duplicates show {case}`",
    "DUPLICATE_CASE_NOT_FOUND": "list cases with `yrdgw duplicates list`",
    "NOT_DECIDING_REGION": "only administrators of the case's deciding regions "
    "({deciding_regions}) decide it: --region and --admin of one of them",
    "DUPLICATE_CASE_CLOSED": "the case is already resolved ({state}); see the outcome with "
    "`yrdgw duplicates show CASE`",
    "CASE_ALREADY_DECIDED": "each administrator decides a case once; another administrator of "
    "your region (--admin) may decide it",
    "STANDING_INVALID": "--standing names one of the case's two subjects, with --duplicate only "
    "(see them with `yrdgw duplicates show CASE`)",
}
"""A hint per reason; ``{key}`` is filled from the refusal's metadata (``{case}``: the first of
its ``cases``), else left as a placeholder in capitals."""


def _hint(reason: str, metadata: dict[str, str]) -> str:
    values = dict(metadata)
    if "cases" in values:
        values.setdefault("case", values["cases"].split(",")[0].strip())
    placeholders = {"project": "SUBJECT"}
    return re.sub(
        r"\{(\w+)\}",
        lambda m: values.get(m[1]) or placeholders.get(m[1], m[1].upper()),
        REASON_HINTS.get(reason, ""),
    )


def _domain(exc: Any) -> Explained:
    details = [f"{f}: {d}" for f, d in sorted(exc.field_errors.items())]
    details += [f"{k} = {v}" for k, v in sorted(exc.metadata.items())]
    message = exc.message or str(exc)
    reason = exc.reason
    first = message if message.startswith(reason) else f"{reason}: {message}"
    return Explained(first, details, _hint(reason, dict(exc.metadata)))


def _transport(exc: Any) -> Explained:
    target = CONTEXT.get("gateway", "the gateway")
    code = exc.code.name
    detail = exc.details.splitlines()[0] if exc.details else code
    if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        hint = f"is `yrdgw serve` running at {target}? (--gateway, YRDGW_GATEWAY or the context)"
        if "handshake" in detail.lower() or "ssl" in detail.lower() or "tls" in detail.lower():
            hint = "the TLS handshake failed: do --cert-dir and the gateway share one CA?"
        return Explained(f"cannot reach the gateway at {target} ({code})", [detail], hint)
    return Explained(f"{code} from {target}: {detail}")


def _pki(exc: Exception) -> Explained:
    text = str(exc)
    hint = ""
    if "no CA" in text or "does not exist" in text:
        hint = "create a PKI with `yrdgw pki init --dir DIR`, or point --cert-dir at one"
    if "already" in text:
        hint = "choose another directory, or remove this one first"
    return Explained(text, hint=hint)


def _os(exc: OSError) -> Explained | None:
    name = exc.filename
    if exc.errno == errno.EADDRINUSE:
        return Explained(
            f"address in use: {name or exc.strerror}",
            hint="another process (another `yrdgw serve`?) listens there; stop it or use --listen",
        )
    if isinstance(exc, FileNotFoundError):
        what = name if name is not None else str(exc)
        return Explained(f"no such file: {what}", hint=_file_hint(str(what)))
    if isinstance(exc, PermissionError):
        return Explained(f"permission denied: {name}", hint="check the file's owner and mode")
    if isinstance(exc, IsADirectoryError):
        return Explained(f"{name} is a directory, not a file")
    if name is not None:
        return Explained(f"{name}: {exc.strerror}")
    return Explained(str(exc))


def _file_hint(path: str) -> str:
    if "/gateway/" in path:
        return "the gateway's certificate and keys are missing: check cert_dir (`yrdgw pki init`)"
    if path.endswith((".pem",)) or "/regions/" in path:
        return (
            "no certificate for this identity: check --cert-dir and --region (or issue it with "
            "`yrdgw pki issue`)"
        )
    if path.endswith(".toml") or "configuration" in path:
        return "pass --config FILE or set YRDGW_CONFIG (see docs/gateway.example.toml)"
    return ""


def _sqlalchemy(exc: Exception) -> Explained | None:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    url = mask(CONTEXT.get("database", "the database"))
    if isinstance(exc, NoSuchModuleError):
        return Explained(
            f"unsupported database URL {url}",
            hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
            code=ExitCode.USAGE,
        )
    if isinstance(exc, ArgumentError):
        return Explained(
            f"not a database URL: {url}",
            hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
            code=ExitCode.USAGE,
        )
    if isinstance(exc, OperationalError):
        lines = [line.strip() for line in str(exc.orig).splitlines() if line.strip()]
        return Explained(
            f"cannot use the database {url}",
            lines[:2],
            "is the database server running, and does the database exist? "
            "(--database-url, or database_url in the configuration)",
        )
    return None


def _module(exc: ModuleNotFoundError) -> Explained | None:
    if exc.name == "psycopg2":
        return Explained(
            f"psycopg2 is not installed (database URL {mask(CONTEXT.get('database', ''))})",
            hint="use the psycopg 3 driver: postgresql+psycopg://USER@HOST:PORT/DB",
            code=ExitCode.USAGE,
        )
    return None


def _pydantic(exc: Any) -> Explained:
    from gateway.cli.settings_errors import describe

    return describe(exc, CONTEXT.get("config", ""))


def _toml(exc: Exception) -> Explained:
    where = CONTEXT.get("config", "the configuration file")
    return Explained(
        f"{where}: TOML syntax error: {exc}",
        hint="fix the line named; every value is key = value, strings in double quotes",
    )


def _json(exc: Exception) -> Explained:
    return Explained(f"not valid JSON: {exc}")


def _external_list(exc: Any) -> Explained:
    where = CONTEXT.get("file", "the list")
    details = [str(issue) for issue in exc.issues]
    if exc.total > len(exc.issues):
        details.append(f"… and {exc.total - len(exc.issues)} more")
    return Explained(
        f"EXTERNAL_LIST_INVALID: {where}: {exc.total} problem(s), nothing imported",
        details,
        "fix the rows named and import the whole list again (columns and formats: "
        "docs/operations.md, part C; template: docs/templates/external-list.csv)",
    )


def _keyboard(_exc: BaseException) -> Explained:
    return Explained("interrupted", code=ExitCode(1))


def _explainers() -> list[tuple[type[BaseException], Any]]:
    """(exception class, explainer) pairs, the most specific first."""
    import json
    import sys
    import tomllib

    found: list[tuple[type[BaseException], Any]] = [
        (UserError, _user),
        (KeyboardInterrupt, _keyboard),
        (tomllib.TOMLDecodeError, _toml),
        (json.JSONDecodeError, _json),
        (ModuleNotFoundError, _module),
    ]
    from gateway.errors import DomainError

    found.append((DomainError, _domain))

    # Only what the command already loaded can have raised; importing more here would be slow.
    if "adapters.external_list" in sys.modules:
        found.append((sys.modules["adapters.external_list"].ExternalListError, _external_list))
    if "gateway.client.errors" in sys.modules:
        found.append((sys.modules["gateway.client.errors"].TransportError, _transport))
    if "gateway.security.pki" in sys.modules:
        found.append((sys.modules["gateway.security.pki"].PKIError, _pki))
    if "sqlalchemy.exc" in sys.modules:
        found.append((sys.modules["sqlalchemy.exc"].SQLAlchemyError, _sqlalchemy))
    if "pydantic" in sys.modules:
        found.append((sys.modules["pydantic"].ValidationError, _pydantic))
    found.append((OSError, _os))
    return found


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of CHOICES, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def exit_code_table() -> str:
    """The README's table of exit codes, from :class:`ExitCode` (a test keeps them equal)."""
    docs = _member_docs()
    rows = [f"| {c.value} | `{c.name}` | {docs[c.name]} |" for c in ExitCode]
    return "\n".join(["| code | name | meaning |", "|---|---|---|", *rows])


def _member_docs() -> dict[str, str]:
    """Each ExitCode member's docstring (the string literal after it in the class body)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(ExitCode))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.Assign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            docs[node.targets[0].id] = " ".join(str(after.value.value).split())  # type: ignore[attr-defined]
    return docs
