"""Commands that talk to a running gateway get their client here: the caller resolved from flags,
environment and context (``gateway.cli.context``), over mTLS with a certificate of the PKI
directory, and for signed requests with the signer's chain kept beside its key.

A gateway that cannot be reached fails at once with a hint; a signed request re-sent after a
transport failure says ``retrying (n/…)`` on stderr, and one whose fate stays unknown says so and
how to check. Refusals and transport failures are left to the top-level handler
(``gateway.cli.errors``), which shows the server's whole explanation.

The SDK (``gateway.client``, its signer state and audit verification) is imported here only, and
only when a command runs, so that ``yrdgw --help`` does not load gRPC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.errors import CONTEXT, UserError
from gateway.cli.output import err_console
from gateway.security.identity import Role

if TYPE_CHECKING:
    from gateway.client import GatewayClient
    from gateway.security.audit_chain import ChainCheck

CONNECT_TIMEOUT_S = 5.0
"""How long a command waits for the gateway to answer the connection before giving up."""


def refusal(exc: Exception) -> str:
    """A refusal's reason code (when it has one) and message, the reason said once."""
    reason = getattr(exc, "reason", "")
    text = str(exc)
    return text if not reason or text.startswith(reason) else f"{reason}: {text}"


def refusal_types() -> tuple[type[Exception], ...]:
    """What a client call raises when the gateway refuses it or cannot be reached."""
    from gateway.client import TransportError
    from gateway.errors import DomainError

    return (DomainError, TransportError)


def _check_files(cert_dir: Path, role: Role, region: str, name: str | None) -> None:
    from gateway.security.pki import PKIDir

    pki = PKIDir(cert_dir)
    if not pki.ca_cert.exists():
        raise UserError(
            f"no CA certificate in {cert_dir} ({pki.ca_cert} is missing)",
            "pass --cert-dir DIR (or YRDGW_CERT_DIR); create one with `yrdgw pki init --dir DIR`",
        )
    files = pki.files(role, region, name)
    who = f"{region} {role.value}" + (f" {name}" if name else "")
    for path in (files.cert, files.key, files.signing_key):
        if not path.exists():
            raise UserError(
                f"no certificate for {who} in {cert_dir} ({path} is missing)",
                "check --region and --admin, or issue it: "
                f"`yrdgw pki issue --region {region} --role {role.value}"
                + (f" --name {name}" if name else "")
                + f" --dir {cert_dir}`",
            )


def _reachable(client: GatewayClient, target: str) -> None:
    """Fail at once, with a hint, when the gateway does not accept the connection."""
    import socket
    import threading

    import grpc

    settled = threading.Event()
    seen: list[grpc.ChannelConnectivity] = []

    def watch(state: grpc.ChannelConnectivity) -> None:
        seen.append(state)
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            settled.set()

    client.channel.subscribe(watch, try_to_connect=True)
    try:
        settled.wait(CONNECT_TIMEOUT_S)
    finally:
        client.channel.unsubscribe(watch)
    if seen and seen[-1] is grpc.ChannelConnectivity.READY:
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            pass
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot reach the gateway at {target} ({exc.__class__.__name__}: {exc})",
            f"is `yrdgw serve` running at {target}? (--gateway, YRDGW_GATEWAY or the context)",
        ) from exc
    if not settled.is_set():
        raise UserError(
            f"the gateway at {target} did not answer within {CONNECT_TIMEOUT_S:g} s",
            "is it overloaded, or is something else listening on that port?",
        )
    raise UserError(
        f"the gateway at {target} refused the TLS connection",
        "do --cert-dir and the gateway share one CA, and is your certificate valid "
        "(not revoked or expired)? Is it a yrdgw gateway at all?",
    )


@contextmanager
def connect(
    gateway: str | None,
    cert_dir: Path | None,
    region: str | None,
    role: Role | None = None,
    name: str | None = None,
) -> Iterator[GatewayClient]:
    """A client of the gateway as the resolved caller, checked to be reachable. Refusals and
    transport failures inside the block reach the top-level handler."""
    from gateway.cli.context import resolve
    from gateway.client import GatewayClient
    from gateway.security.pki import PKIDir

    caller = resolve(gateway, cert_dir, region, role, name)
    CONTEXT["gateway"] = caller.gateway
    _check_files(caller.cert_dir, caller.role, caller.region, caller.admin)
    client = GatewayClient(
        caller.gateway,
        PKIDir(caller.cert_dir),
        region=caller.region,
        role=caller.role,
        name=caller.admin,
    )
    with client:
        _reachable(client, caller.gateway)
        client.on_resend = _retry_notice(client)
        yield client


def _retry_notice(client: GatewayClient) -> Callable[[int, Exception, float], None]:
    def notice(attempt: int, exc: Exception, remaining_s: float) -> None:
        err_console.print(
            f"retrying ({attempt}/…, {remaining_s:.0f} s left): {exc}",
            highlight=False,
            markup=False,
        )

    return notice


@contextmanager
def signing(
    gateway: str | None,
    cert_dir: Path | None,
    region: str | None,
    role: Role | None = None,
    name: str | None = None,
    *,
    check: str = "",
) -> Iterator[GatewayClient]:
    """A client whose signer (registry or administrator key) continues its saved chain, or the
    gateway's head when signer-state.json is missing; the chain is saved again on the way out.
    A request whose fate stays unknown after its re-sends says so, and CHECK (text naming the
    command in backticks) says how to find out."""
    from gateway.client import RESEND_CODES, TransportError
    from gateway.client.signer_state import load_state, save_state, state_path

    with connect(gateway, cert_dir, region, role, name) as client:
        try:
            loaded = load_state(client.files, client.signer)
        except (ValueError, KeyError, TypeError) as exc:
            path = state_path(client.files)
            raise UserError(
                f"the signer state {path} is corrupt ({exc.__class__.__name__}: {exc})",
                f"delete {path}: the chain head is then taken from the gateway",
            ) from exc
        if not loaded:
            client.sync_signer()
        try:
            yield client
        except TransportError as exc:
            if exc.code not in RESEND_CODES:
                raise
            raise UserError(
                f"no answer from {client_target()} ({exc.code.name}) after re-sending: the signed "
                "request may or may not have taken effect",
                f"check with {check} before trying again"
                if check
                else "check its result before trying again (re-sending the same command is "
                "a new request)",
            ) from exc
        finally:
            save_state(client.files, client.signer)


def client_target() -> str:
    return CONTEXT.get("gateway", "the gateway")


def verify_audit_log(client: GatewayClient) -> ChainCheck:
    """Fetch the audit log and the signed tree head over CLIENT and check every hash link."""
    from gateway.client import verify_remote_log

    return verify_remote_log(client)
