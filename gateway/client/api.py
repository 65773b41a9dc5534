"""The SDK's one entry point: a connection with the calls of every service."""

from __future__ import annotations

from gateway.client.duplicates import DuplicateCalls
from gateway.client.recognition import RecognitionCalls
from gateway.client.reconciliation import ReconciliationCalls
from gateway.client.records import RecordCalls
from gateway.client.transfers import TransferCalls


class GatewayClient(
    RecordCalls, TransferCalls, RecognitionCalls, ReconciliationCalls, DuplicateCalls
):
    """A connection to the gateway as one registry or administrator."""
