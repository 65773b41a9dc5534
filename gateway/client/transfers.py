"""Transfer and retirement calls: signed proposals, answers and retirement orders; reads of
transfers, retirements and held blocks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from yrd.interop.v1 import records_pb2, transfer_pb2, transfer_service_pb2

from gateway.client.connection import Connection
from gateway.contract import (
    ANSWER_TYPE,
    CANCELLED_T,
    COMPLETED,
    PROPOSAL_TYPE,
    REJECTED,
    RETIREMENT_TYPE,
    answer_payload,
)

T = TypeVar("T")


class TransferCalls(Connection):
    """TransferService."""

    def propose_transfer(
        self,
        transfer_id: str,
        destination: str,
        *,
        origin: str = "",
        ranges: Sequence[tuple[int, int]] = (),
        project: str = "",
        vintage: int = 0,
        quantity_grams: int = 0,
        purpose: transfer_pb2.TransferPurpose.ValueType = transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
    ) -> transfer_pb2.Transfer:
        """Propose moving serial ranges (of origin) or a quantity of a project's vintage."""
        units = transfer_pb2.UnitSelection()
        if ranges:
            units.ranges.origin_region = origin
            units.ranges.ranges.extend(records_pb2.SerialRange(start=s, end=e) for s, e in ranges)
        else:
            units.quantity.project, units.quantity.vintage = project, vintage
            units.quantity.quantity_grams = quantity_grams
        proposal = transfer_service_pb2.TransferProposal(
            transfer_id=transfer_id, destination_region=destination, units=units, purpose=purpose
        )
        return self._signed_call(
            self.transfers.ProposeTransfer,
            lambda env: transfer_service_pb2.ProposeTransferRequest(envelope=env),
            PROPOSAL_TYPE,
            proposal.SerializeToString(),
        ).transfer

    def _answer(
        self,
        method: Callable[..., T],
        request: type[
            transfer_service_pb2.AcceptTransferRequest
            | transfer_service_pb2.RejectTransferRequest
            | transfer_service_pb2.CancelTransferRequest
        ],
        name: str,
        outcome: str,
        reason: str,
    ) -> T:
        payload = answer_payload(name, outcome, reason)
        return self._signed_call(method, lambda env: request(envelope=env), ANSWER_TYPE, payload)

    def accept_transfer(self, name: str) -> transfer_pb2.Transfer:
        return self._answer(
            self.transfers.AcceptTransfer,
            transfer_service_pb2.AcceptTransferRequest,
            name,
            COMPLETED,
            "",
        ).transfer

    def reject_transfer(self, name: str, reason: str) -> transfer_pb2.Transfer:
        return self._answer(
            self.transfers.RejectTransfer,
            transfer_service_pb2.RejectTransferRequest,
            name,
            REJECTED,
            reason,
        ).transfer

    def cancel_transfer(self, name: str, reason: str) -> transfer_pb2.Transfer:
        return self._answer(
            self.transfers.CancelTransfer,
            transfer_service_pb2.CancelTransferRequest,
            name,
            CANCELLED_T,
            reason,
        ).transfer

    def get_transfer(self, name: str) -> transfer_pb2.Transfer:
        return self.call(
            self.transfers.GetTransfer, transfer_service_pb2.GetTransferRequest(name=name)
        ).transfer

    def list_transfers(
        self,
        source: str = "",
        destination: str = "",
        state: transfer_pb2.TransferState.ValueType = transfer_pb2.TRANSFER_STATE_UNSPECIFIED,
        limit: int = 10_000,
    ) -> list[transfer_pb2.Transfer]:
        """Transfers in the order they were proposed, page by page, up to ``limit``."""
        out: list[transfer_pb2.Transfer] = []
        token = ""
        while len(out) < limit:
            req = transfer_service_pb2.ListTransfersRequest(
                source_region=source,
                destination_region=destination,
                state=state,
                page_size=min(1000, limit - len(out)),
                page_token=token,
            )
            page = self.call(self.transfers.ListTransfers, req)
            out.extend(page.transfers)
            token = page.next_page_token
            if not token:
                break
        return out

    def get_retirement(self, name: str) -> transfer_pb2.Retirement:
        return self.call(
            self.transfers.GetRetirement, transfer_service_pb2.GetRetirementRequest(name=name)
        ).retirement

    def list_retirements(
        self,
        holder: str = "",
        purpose: transfer_pb2.TransferPurpose.ValueType = transfer_pb2.TRANSFER_PURPOSE_UNSPECIFIED,
        compliance_year: int = 0,
        limit: int = 10_000,
    ) -> list[transfer_pb2.Retirement]:
        """Retirements in the order they took effect, page by page, up to ``limit``."""
        out: list[transfer_pb2.Retirement] = []
        token = ""
        while len(out) < limit:
            req = transfer_service_pb2.ListRetirementsRequest(
                holder_region=holder,
                purpose=purpose,
                compliance_year=compliance_year,
                page_size=min(1000, limit - len(out)),
                page_token=token,
            )
            page = self.call(self.transfers.ListRetirements, req)
            out.extend(page.retirements)
            token = page.next_page_token
            if not token:
                break
        return out

    def holdings(
        self,
        region: str = "",
        state: records_pb2.UnitBlockState.ValueType = records_pb2.UNIT_BLOCK_STATE_UNSPECIFIED,
    ) -> list[records_pb2.UnitBlock]:
        """Every ledger block held by region (all regions when empty), page by page."""
        out: list[records_pb2.UnitBlock] = []
        token = ""
        while True:
            page = self.call(
                self.transfers.ListUnitBlocks,
                transfer_service_pb2.ListUnitBlocksRequest(
                    holder_region=region, state=state, page_size=1000, page_token=token
                ),
            )
            out.extend(page.blocks)
            token = page.next_page_token
            if not token:
                return out

    def retire(
        self,
        retirement_id: str,
        purpose: transfer_pb2.TransferPurpose.ValueType,
        beneficiary: str,
        *,
        origin: str = "",
        ranges: Sequence[tuple[int, int]] = (),
        project: str = "",
        vintage: int = 0,
        quantity_grams: int = 0,
        compliance_year: int = 0,
        declared_obligation_grams: int = 0,
    ) -> transfer_pb2.Retirement:
        """Retire held units (serial ranges of origin, or a quantity of a project's vintage)."""
        units = transfer_pb2.UnitSelection()
        if ranges:
            units.ranges.origin_region = origin
            units.ranges.ranges.extend(records_pb2.SerialRange(start=s, end=e) for s, e in ranges)
        else:
            units.quantity.project, units.quantity.vintage = project, vintage
            units.quantity.quantity_grams = quantity_grams
        order = transfer_service_pb2.RetirementOrder(
            retirement_id=retirement_id,
            units=units,
            purpose=purpose,
            beneficiary=beneficiary,
            compliance_year=compliance_year,
            declared_obligation_grams=declared_obligation_grams,
        )
        return self._signed_call(
            self.transfers.Retire,
            lambda env: transfer_service_pb2.RetireRequest(envelope=env),
            RETIREMENT_TYPE,
            order.SerializeToString(),
        ).retirement
