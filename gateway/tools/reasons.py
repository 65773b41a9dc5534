"""Render (or check) ``docs/reasons.md`` from the reason catalogue (:mod:`gateway.reasons`).

``python -m gateway.tools.reasons docs/reasons.md`` writes the file; ``--check`` writes nothing
and fails (exit 1) when the committed file differs from the rendering.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.reasons import ANSWERS, REASONS, Reason

INTRO = """\
# Error reasons

<!-- Generated from gateway/reasons/ by `python -m gateway.tools.reasons docs/reasons.md`;
     do not edit by hand: change the catalogue and re-run (make reasons). -->

Every refusal the gateway sends carries a `google.rpc.ErrorInfo` with `domain = "yrd-interop"` and
one of the reasons below (see `docs/protocol.md` §10 for the status model). The catalogue in code
(`gateway/reasons/`) is the one source of truth: an error class whose reason is not declared there
with its code cannot be defined (`gateway/errors.py`), the one mapping to a gRPC status refuses to
send an undeclared reason (`gateway/rpc/status.py`; the caller then gets `INTERNAL`), Publish's
per-envelope results carry only reasons declared as in-band, and CheckRecognized only the answer
reasons of §3. Clients MUST branch on `(code, reason)`; a client SHOULD treat a reason it does not
know by its code alone.

Columns:

- **reason** — `ErrorInfo.reason` (for Publish: `EnvelopeResult.reason`).
- **code** — the gRPC status code.
- **meaning** — what was wrong.
- **rpcs** — the RPCs that can return it (`*` = every RPC; `Publish` = `Publish` and
  `PublishEnvelope`; `Answer` = `AcceptTransfer`, `RejectTransfer`, `CancelTransfer`; `Decide` =
  `ApproveRecognition`, `RejectRecognition`; `Signed` = every RPC carrying a signed envelope:
  Publish, ProposeTransfer, Answer, Retire, RequestRecognition, Decide, RevokeRecognition);
  `—` = declared (a class carries it) but no RPC sends it today.
- **retry** — whether sending again can help: `same` = send the very same bytes again (the outcome
  was unknown); `fix` = only a corrected request can succeed; `later` = the same request may
  succeed once the state changes (another party acts, time passes); `resync` = re-sign from the
  gateway's chain head (`ListSigningKeys`); `no` = never (final).
- **check** — `ErrorInfo.metadata["check"]` when the refusal is a numbered transfer check.
- **in-band** — `yes` when Publish reports it in `EnvelopeResult` instead of a call status.
"""

GATEWAY_NOTE = """
`CLIENT_GONE` appears only in the gateway's log line when the caller cancelled or its deadline
passed; nothing is sent.
"""

RECOGNITION_INTRO = """
The recognition domain's errors keep their reason; their code follows their kind. The domain also
raises `ROLE_NOT_ALLOWED` (the gateway role requesting a recognition) and `WRONG_REGION`
(requesting for a subject of another region; deciding for another region): those are the gateway
reasons of §1, listed there.
"""

ANSWER_INTRO = """
`CheckRecognizedResponse.reason` (and the text of a `NOT_RECOGNISED` refusal) uses these values from
`mutual_recognition/check.py`. They are answers with gRPC `OK`.
"""

ANSWER_NOTE = """
`Transfer.reasons[].reason` holds the transfer's final state name (`REJECTED`, `CANCELLED`,
`EXPIRED`), with the free-text reason as message — not a reason of this catalogue (see
`docs/protocol.md` §15 point 3).
"""

HEADER = (
    "| reason | code | meaning | rpcs | retry | check | in-band |\n|---|---|---|---|---|---|---|\n"
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(r: Reason) -> str:
    retry = "—" if r.retry is None else r.retry.value
    if r.retry_note:
        retry += f" ({r.retry_note})"
    check = "" if r.check is None else str(r.check)
    if r.check_note:
        check += f" ({r.check_note})"
    cells = [
        r.name,
        r.code,
        _cell(r.meaning),
        ", ".join(r.rpcs) or "—",
        retry,
        check,
        "yes" if r.in_band else "",
    ]
    return "| " + " | ".join(cells) + " |"


def render() -> str:
    """The text of ``docs/reasons.md``."""
    parts = [INTRO, "\n## 1. Gateway reasons (`gateway/errors.py`)\n\n", HEADER]
    parts += [_row(r) + "\n" for r in REASONS.values() if r.domain == "gateway"]
    parts += [
        GATEWAY_NOTE,
        "\n## 2. Recognition reasons (`mutual_recognition/errors.py`, mapped by"
        " `gateway/errors.py`)\n",
        RECOGNITION_INTRO,
        "\n",
        HEADER,
    ]
    parts += [_row(r) + "\n" for r in REASONS.values() if r.domain == "recognition"]
    parts += ["\n## 3. Answer reasons (not errors)\n", ANSWER_INTRO, "\n"]
    parts += ["| reason | recognised | meaning |\n", "|---|---|---|\n"]
    parts += [
        f"| {a.name} | {'yes' if a.recognised else 'no'} | {_cell(a.meaning)} |\n"
        for a in ANSWERS.values()
    ]
    parts.append(ANSWER_NOTE)
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``reasons [--check] FILE``."""
    parser = argparse.ArgumentParser(prog="python -m gateway.tools.reasons", description=__doc__)
    parser.add_argument("file", type=Path, help="the rendered catalogue (docs/reasons.md)")
    parser.add_argument("--check", action="store_true", help="fail on drift, write nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.file.read_text(encoding="utf-8") if args.file.exists() else None
        if current != text:
            print(f"{args.file}: differs from the catalogue in gateway/reasons", file=sys.stderr)
            print(f"run: python -m gateway.tools.reasons {args.file}", file=sys.stderr)
            return 1
        print(f"{args.file}: up to date ({len(REASONS)} reasons, {len(ANSWERS)} answers)")
        return 0
    args.file.write_text(text, encoding="utf-8")
    print(f"wrote {args.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
