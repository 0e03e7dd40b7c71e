"""``requestDataMasking`` (requestPayloadProcessing): mask or remove parts of the request payload.

Parameters and criteria: :mod:`portico.policies.payload.masking`. With ``applyForPayload`` the
forwarded body is masked; with ``sameForTransactionalLogging`` logged request payloads are masked
through ``mask_for_log(ex, payload, "request")`` (from :mod:`portico.policies.payload.masking`).
A body the criteria cannot be applied to (declared JSON but not parseable, ...) ends the exchange
with 400 ``REQUEST_DATA_MASKING_FAILED``: it is never forwarded unmasked."""

from __future__ import annotations

from portico.gateway.exchange import Exchange
from portico.policies.base import Violation
from portico.policies.payload import PayloadError
from portico.policies.payload.masking import DataMaskingConfig, DataMaskingHandler

FAILED = "REQUEST_DATA_MASKING_FAILED"


class RequestDataMasking(DataMaskingHandler):
    template_key = "requestDataMasking"
    stage = "requestPayloadProcessing"
    title = "Data Masking"
    direction = "request"

    def __init__(self, config: DataMaskingConfig) -> None:
        super().__init__(config)
        self.needs_request_body = config.applyForPayload  # type: ignore[misc]  # log-only masking keeps streaming

    def run(self, ex: Exchange) -> Violation | None:
        if not self.apply_to_payload or not ex.body:
            return None
        try:
            ex.body = self.masker.apply(ex.body, ex.header(b"content-type"))
        except PayloadError as exc:
            return Violation(400, FAILED, f"The request payload could not be masked: {exc}")
        return None
