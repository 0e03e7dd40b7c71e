"""``faultDataMasking`` (responseFaultProcessing): mask or remove parts of fault payloads.

Parameters and criteria: :mod:`portico.policies.payload.masking`. ``on_fault`` masks the native
service's fault body (``fault.native``) and a fault body set by an earlier error-processing policy
(``fault.body``); with ``sameForTransactionalLogging`` logged fault payloads are masked through
``mask_for_log(ex, payload, "fault")``. A fault body the criteria cannot be applied to is dropped
(the error template answers instead) rather than sent unmasked."""

from __future__ import annotations

import logging

from portico.gateway.exchange import Exchange, Fault
from portico.policies.payload import PayloadError
from portico.policies.payload.masking import DataMaskingHandler

log = logging.getLogger("portico.policies")


class FaultDataMasking(DataMaskingHandler):
    template_key = "faultDataMasking"
    stage = "responseFaultProcessing"
    title = "Data Masking"
    direction = "fault"

    def on_fault(self, ex: Exchange, fault: Fault) -> None:
        if not self.apply_to_payload:
            return None
        native = fault.native
        if native is not None and native.body:
            try:
                native.body = self.masker.apply(native.body, native.header(b"content-type"))
            except PayloadError as exc:
                log.warning("faultDataMasking: dropping a native fault body that cannot be masked: %s", exc)
                native.body = b""
        if fault.body:
            content_type = next((v for n, v in fault.headers if n.lower() == b"content-type"), None)
            try:
                fault.body = self.masker.apply(fault.body, content_type)
            except PayloadError as exc:
                log.warning("faultDataMasking: dropping a fault body that cannot be masked: %s", exc)
                fault.body = None
        return None
