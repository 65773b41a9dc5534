"""Fault injection for the crash tests (``tests/faults``): off unless the setting
``fault_kill_after_commit`` turns it on, and never meant for production.

The one fault is the hardest moment for exactly-once: a transfer write has committed and the
process dies before its reply leaves, so the client saw nothing and must re-send.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import grpc
import structlog
from yrd.interop.v1 import transfer_service_pb2

from gateway.rpc.servicers import TransferServicer
from gateway.services.retirements import RetirementService
from gateway.services.transfers import TransferService

log = structlog.get_logger("yrdgw.faults")


class KillAfterCommitTransferServicer(TransferServicer):
    """TransferServicer whose process SIGKILLs itself once the N-th transfer write (propose,
    accept, reject, cancel — a repeated request answered from its first result counts too) has
    returned from the service layer, i.e. after its transaction committed and before the reply is
    sent."""

    def __init__(
        self, transfers: TransferService, retirements: RetirementService, after: int
    ) -> None:
        super().__init__(transfers, retirements)
        self._after = after
        self._count = 0
        self._lock = threading.Lock()
        log.warning("fault.armed", kill_after_commit=after)

    def _committed(self, method: str) -> None:
        with self._lock:
            self._count += 1
            due = self._count == self._after
        if due:
            log.warning("fault.kill_after_commit", method=method, write=self._after)
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def ProposeTransfer(  # noqa: N802 (the RPC names of the generated base class)
        self, request: transfer_service_pb2.ProposeTransferRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.ProposeTransferResponse:
        reply = super().ProposeTransfer(request, context)
        self._committed("ProposeTransfer")
        return reply

    def AcceptTransfer(  # noqa: N802 (the RPC names of the generated base class)
        self, request: transfer_service_pb2.AcceptTransferRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.AcceptTransferResponse:
        reply = super().AcceptTransfer(request, context)
        self._committed("AcceptTransfer")
        return reply

    def RejectTransfer(  # noqa: N802 (the RPC names of the generated base class)
        self, request: transfer_service_pb2.RejectTransferRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.RejectTransferResponse:
        reply = super().RejectTransfer(request, context)
        self._committed("RejectTransfer")
        return reply

    def CancelTransfer(  # noqa: N802 (the RPC names of the generated base class)
        self, request: transfer_service_pb2.CancelTransferRequest, context: grpc.ServicerContext
    ) -> transfer_service_pb2.CancelTransferResponse:
        reply = super().CancelTransfer(request, context)
        self._committed("CancelTransfer")
        return reply
