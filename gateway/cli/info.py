"""``yrdgw info``: what the gateway says about itself (GatewayInfoService.GetGatewayInfo)."""

from __future__ import annotations

from gateway.cli import remote
from gateway.cli.options import (
    CertDirOpt,
    GatewayOpt,
    NameOpt,
    RegionOpt,
    RoleOpt,
)
from gateway.cli.output import Format, OutputOpt, console, show, table


def info(
    gateway: GatewayOpt = None,
    cert_dir: CertDirOpt = None,
    region: RegionOpt = None,
    role: RoleOpt = None,
    name: NameOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """The protocol version, the gateway's signing keys (current first; they verify audit tree
    heads and reconciliation reports), the regions, the policies in force and the limits."""
    with remote.connect(gateway, cert_dir, region, role, name) as client:
        facts = client.gateway_info()
    if output is not Format.TABLE:
        # -o name: the gateway's signing key ids, current first.
        show(facts, output, name=lambda f: "\n".join(k.key_id for k in f.signing_keys))
        return
    from yrd.interop.v1 import gateway_info_service_pb2 as pb

    console.print(f"protocol {facts.protocol.package} {facts.protocol.version}")
    keys = table("gateway key id", "status", "valid from", "valid until", "public key (hex)")
    for k in facts.signing_keys:
        keys.add_row(
            k.key_id,
            pb.GatewaySigningKeyStatus.Name(k.status).removeprefix("GATEWAY_SIGNING_KEY_STATUS_"),
            k.valid_from.ToJsonString() if k.HasField("valid_from") else "",
            k.valid_until.ToJsonString() if k.HasField("valid_until") else "",
            k.public_key.hex(),
        )
    console.print(keys)
    regions = table("region", "name", "roles", "serial unit (g)", "approvals")
    for r in facts.regions:
        roles = ", ".join(pb.RegionRole.Name(x).removeprefix("REGION_ROLE_") for x in r.roles)
        regions.add_row(
            r.region,
            f"{r.name_en} {r.name_zh}",
            roles,
            str(r.serial_unit_grams),
            str(r.required_approvals),
        )
    console.print(regions)
    policies = facts.policies
    console.print(
        f"recognition enforced: {policies.recognition_enforced}; "
        f"transfer proposal TTL: {policies.transfer_proposal_ttl.ToTimedelta()}"
    )
    for p in policies.ets_offset_policies:
        window = p.vintage_window_years if p.HasField("vintage_window_years") else "none"
        console.print(
            f"ETS offsets in {p.region}: at most {p.max_share} of the obligation "
            f"({p.max_outside_share} from outside), vintage window {window} years, "
            f"multiples of {p.quantity_multiple_grams} g"
        )
