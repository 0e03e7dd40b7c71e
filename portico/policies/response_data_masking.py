"""``responseDataMasking`` (responseProcessing): mask or remove parts of the native answer's payload.

Parameters and criteria: :mod:`portico.policies.payload.masking`. With ``applyForPayload`` the
returned body is masked; with ``sameForTransactionalLogging`` logged response payloads are masked
through ``mask_for_log(ex, payload, "response")``. A native payload the criteria cannot be applied
to ends the exchange with 502 ``RESPONSE_DATA_MASKING_FAILED``: it is never returned unmasked."""

from __future__ import annotations

from portico.gateway.exchange import Exchange
from portico.policies.base import Violation
from portico.policies.payload import PayloadError
from portico.policies.payload.masking import DataMaskingConfig, DataMaskingHandler

FAILED = "RESPONSE_DATA_MASKING_FAILED"


class ResponseDataMasking(DataMaskingHandler):
    template_key = "responseDataMasking"
    stage = "responseProcessing"
    title = "Data Masking"
    direction = "response"

    def __init__(self, config: DataMaskingConfig) -> None:
        super().__init__(config)
        self.needs_response_body = config.applyForPayload  # type: ignore[misc]  # log-only masking keeps streaming

    def on_response(self, ex: Exchange) -> Violation | None:
        response = ex.response
        if not self.apply_to_payload or response is None or not response.body:
            return None
        try:
            response.body = self.masker.apply(response.body, response.header(b"content-type"))
        except PayloadError as exc:
            return Violation(502, FAILED, f"The native response payload could not be masked: {exc}")
        return None
