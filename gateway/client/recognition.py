"""Mutual recognition calls: a registry's signed application, administrators' signed verdicts
and revocations, and the reads."""

from __future__ import annotations

from collections.abc import Sequence

from yrd.interop.v1 import recognition_pb2, recognition_service_pb2

from gateway.client.connection import Connection
from gateway.contract import APPLICATION_TYPE, REVOCATION_TYPE, VERDICT_TYPE


class RecognitionCalls(Connection):
    """RecognitionService."""

    def request_recognition(
        self,
        subject: str,
        *,
        version: str = "",
        regions: Sequence[str] = (),
        vintage_from: int = 0,
        vintage_to: int = 0,
        ets_ratio: tuple[int, int] | None = None,
        expire_date: tuple[int, int, int] | None = None,
    ) -> list[recognition_pb2.Recognition]:
        """Ask regions (all others when empty) to recognise a methodology version or project."""
        app = recognition_service_pb2.RecognitionApplication(
            subject=subject, version=version, recognising_regions=regions
        )
        app.conditions.vintage_from, app.conditions.vintage_to = vintage_from, vintage_to
        if ets_ratio is not None:
            app.conditions.ets_adjustment_ratio.numerator = ets_ratio[0]
            app.conditions.ets_adjustment_ratio.denominator = ets_ratio[1]
        if expire_date is not None:
            d = app.conditions.expire_date
            d.year, d.month, d.day = expire_date
        reply = self._signed_call(
            self.recognition.RequestRecognition,
            lambda env: recognition_service_pb2.RequestRecognitionRequest(envelope=env),
            APPLICATION_TYPE,
            app.SerializeToString(),
        )
        return list(reply.recognitions)

    def approve_recognition(self, name: str, comment: str) -> recognition_pb2.Recognition:
        """An administrator's signed approval."""
        verdict = recognition_service_pb2.RecognitionVerdict(
            recognition=name, verdict=recognition_pb2.VERDICT_APPROVE, comment=comment
        )
        return self._signed_call(
            self.recognition.ApproveRecognition,
            lambda env: recognition_service_pb2.ApproveRecognitionRequest(envelope=env),
            VERDICT_TYPE,
            verdict.SerializeToString(),
        ).recognition

    def reject_recognition(self, name: str, comment: str) -> recognition_pb2.Recognition:
        """An administrator's signed rejection."""
        verdict = recognition_service_pb2.RecognitionVerdict(
            recognition=name, verdict=recognition_pb2.VERDICT_REJECT, comment=comment
        )
        return self._signed_call(
            self.recognition.RejectRecognition,
            lambda env: recognition_service_pb2.RejectRecognitionRequest(envelope=env),
            VERDICT_TYPE,
            verdict.SerializeToString(),
        ).recognition

    def revoke_recognition(self, name: str, reason: str) -> recognition_pb2.Recognition:
        """An administrator's signed revocation."""
        body = recognition_service_pb2.RecognitionRevocation(recognition=name, reason=reason)
        return self._signed_call(
            self.recognition.RevokeRecognition,
            lambda env: recognition_service_pb2.RevokeRecognitionRequest(envelope=env),
            REVOCATION_TYPE,
            body.SerializeToString(),
        ).recognition

    def get_recognition(self, name: str) -> recognition_pb2.Recognition:
        req = recognition_service_pb2.GetRecognitionRequest(name=name)
        return self.call(self.recognition.GetRecognition, req).recognition

    def list_recognitions(
        self, recognising: str = "", requesting: str = ""
    ) -> list[recognition_pb2.Recognition]:
        out: list[recognition_pb2.Recognition] = []
        token = ""
        while True:
            req = recognition_service_pb2.ListRecognitionsRequest(
                recognising_region=recognising,
                requesting_region=requesting,
                page_size=500,
                page_token=token,
            )
            page = self.call(self.recognition.ListRecognitions, req)
            out.extend(page.recognitions)
            token = page.next_page_token
            if not token:
                return out

    def check_recognized(
        self, region: str, project: str, vintage: int
    ) -> recognition_service_pb2.CheckRecognizedResponse:
        req = recognition_service_pb2.CheckRecognizedRequest(
            region=region, project=project, vintage=vintage
        )
        return self.call(self.recognition.CheckRecognized, req)
