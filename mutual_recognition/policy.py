"""Approval policy: how many distinct administrators of each recognising region must approve."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mutual_recognition.errors import InvalidPolicy, UnknownRegion
from mutual_recognition.model import check_region

__all__ = ["ApprovalPolicy"]

_MAX_APPROVALS = 100


def _region(region: object) -> str:
    try:
        if not isinstance(region, str):
            raise UnknownRegion(f"{region!r} is not a six-digit GB/T 2260 region code")
        return check_region(region)
    except UnknownRegion as exc:
        raise InvalidPolicy(f"approvals: {exc.message}", metadata={"field": "approvals"}) from exc


def _count(value: object, label: str) -> int:
    if type(value) is not int or not 1 <= value <= _MAX_APPROVALS:
        raise InvalidPolicy(
            f"{label} must be a whole number from 1 to {_MAX_APPROVALS}, not {value!r}",
            metadata={"field": label},
        )
    return value


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """Per recognising region, the number of distinct administrators whose approval is needed.

    ``approvals`` maps region codes to counts (e.g. ``{"310000": 2}``); other regions need
    ``default_approvals`` (1). ``delta_wide_needs_every_region``: when True, the recognitions
    made by one request to every other region are all-or-nothing (in force only while every one
    of them is approved and in force); when False (the default) each region's stands alone.
    Construction validates (``InvalidPolicy``); ``approvals`` becomes read-only.
    """

    approvals: Mapping[str, int] = field(default_factory=dict)
    default_approvals: int = 1
    delta_wide_needs_every_region: bool = False

    def __post_init__(self) -> None:
        checked: dict[str, int] = {}
        for region, count in dict(self.approvals).items():
            checked[_region(region)] = _count(count, f"approvals[{region}]")
        _count(self.default_approvals, "default_approvals")
        if type(self.delta_wide_needs_every_region) is not bool:
            raise InvalidPolicy(
                "delta_wide_needs_every_region must be true or false",
                metadata={"field": "delta_wide_needs_every_region"},
            )
        object.__setattr__(self, "approvals", MappingProxyType(dict(sorted(checked.items()))))

    def required_for(self, region: str) -> int:
        """Distinct administrator approvals ``region`` needs to approve a recognition."""
        return self.approvals.get(region, self.default_approvals)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> ApprovalPolicy:
        """Build from plain configuration data (e.g. a TOML table).

        Accepted keys: ``approvals`` (a mapping region → count), ``default_approvals`` (int) and
        ``delta_wide_needs_every_region`` (bool); any other key is an error, so a typo never
        silently weakens the policy. ``{}`` gives the default policy.
        """
        known = {"approvals", "default_approvals", "delta_wide_needs_every_region"}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidPolicy(
                f"unknown approval policy key(s): {', '.join(unknown)}"
                f" (known: {', '.join(sorted(known))})",
                metadata={"field": unknown[0]},
            )
        table = data.get("approvals", {})
        if not isinstance(table, Mapping):
            raise InvalidPolicy(
                "approvals must be a table of region code → count", metadata={"field": "approvals"}
            )
        approvals = {_region(k): _count(v, f"approvals[{k}]") for k, v in table.items()}
        default = _count(data.get("default_approvals", 1), "default_approvals")
        every = data.get("delta_wide_needs_every_region", False)
        if type(every) is not bool:
            raise InvalidPolicy(
                "delta_wide_needs_every_region must be true or false",
                metadata={"field": "delta_wide_needs_every_region"},
            )
        return cls(
            approvals=approvals, default_approvals=default, delta_wide_needs_every_region=every
        )
