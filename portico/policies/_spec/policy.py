"""The handler half shared by ``validateAPISpec`` and ``validateSchema``.

The handler is built from its config like every policy; the API's definition arrives later,
when the snapshot part ``portico.gateway.parts.api_specs`` calls :meth:`SpecPolicy.bind` with
the API's compiled :class:`SpecIndex` and the custom content-type mapping. Placed in
responseProcessing it validates responses (and then asks for the response body); placed in
requestPayloadProcessing it validates requests (and asks for the request body)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from portico.policies._spec.checks import Enabled, check_request, check_response
from portico.policies._spec.compile import SpecIndex
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

RESPONSE_STAGE = "responseProcessing"


class SpecPolicy(PolicyHandler):
    """One instance may serve several APIs (a shared or global action): validators are kept per API."""

    needs_request_body = True
    extra_stages = (RESPONSE_STAGE,)
    enabled: Enabled = Enabled()

    def __init__(self, config: PolicyConfig) -> None:
        self._indexes: dict[str, SpecIndex] = {}
        self._custom: dict[str, str] = {}
        super().__init__(config)

    @property
    def placed_stage(self) -> str:
        return self._placed

    @placed_stage.setter
    def placed_stage(self, stage: str) -> None:
        # Set before the phase plans are computed: an instance needs one body only, the request's
        # or the response's, so the other is streamed as usual.
        self._placed = stage
        on_response = stage == RESPONSE_STAGE
        setattr(self, "needs_request_body", not on_response)  # noqa: B010
        setattr(self, "needs_response_body", on_response)  # noqa: B010

    def bind(self, api_id: str, index: SpecIndex, custom_content_types: dict[str, str]) -> None:
        """Attach one API's validators; called once per snapshot by the snapshot part."""
        self._indexes[api_id] = index
        self._custom = custom_content_types

    def run(self, ex: Exchange) -> Violation | None:
        index = self._indexes.get(ex.api.id)
        if index is None or self._placed == RESPONSE_STAGE:
            return None
        op = index.operation(ex.resource, ex.method)
        return None if op is None else check_request(op, ex, self._custom, self.enabled)

    def on_response(self, ex: Exchange) -> Violation | None:
        index = self._indexes.get(ex.api.id)
        if index is None or self._placed != RESPONSE_STAGE or ex.response is None:
            return None
        op = index.operation(ex.resource, ex.request.method)
        return None if op is None else check_response(op, ex.response, self._custom, self.enabled)
