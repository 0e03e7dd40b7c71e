"""``requestTransformation`` (requestPayloadProcessing): reshape the request before it is routed.

Parameters (Postman "Create Request Transformation"): an optional ``transformationConditions``
group (:mod:`portico.policies.payload.conditions`) and one or more
``requestTransformationConfiguration`` groups (:mod:`portico.policies.payload.transform`):
headers, query parameters, path parameters and the resource path, the HTTP method, the payload by
JSONPath, XPath, regex, XSLT, and XML <-> JSON conversion.

The body is buffered only when a configuration touches or reads the payload. A request body that
does not fit (not JSON under a JSONPath edit, not XML under XPath/XSLT) ends the exchange with
400 ``REQUEST_TRANSFORMATION_FAILED``. Bodies above ``OFFLOAD_BYTES`` are transformed in a worker
thread (the exchange waits; the event loop keeps serving)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from pydantic import Field

from portico.gateway.exchange import Exchange
from portico.policies.base import PolicyConfig, PolicyHandler, Violation
from portico.policies.payload import PayloadError
from portico.policies.payload.conditions import CompiledConditions, TransformationConditions
from portico.policies.payload.transform import OFFLOAD_BYTES, Transformation, TransformationConfiguration

FAILED = "REQUEST_TRANSFORMATION_FAILED"


class RequestTransformationConfig(PolicyConfig):
    transformationConditions: TransformationConditions | None = Field(
        default=None, description="When to transform; without conditions every request is transformed."
    )
    requestTransformationConfiguration: list[TransformationConfiguration] = Field(
        min_length=1, description="The transformations, applied in order."
    )


class RequestTransformation(PolicyHandler):
    template_key = "requestTransformation"
    stage = "requestPayloadProcessing"
    title = "Request Transformation"
    Config = RequestTransformationConfig

    def __init__(self, config: RequestTransformationConfig) -> None:
        super().__init__(config)
        self.conditions = CompiledConditions(config.transformationConditions)
        self.steps = tuple(Transformation(c) for c in config.requestTransformationConfiguration)
        # Per instance: a header-only transformation keeps the request body streaming.
        self.needs_request_body = any(s.needs_body for s in self.steps) or any(  # type: ignore[misc]
            t.reads("request") for t in self.conditions.templates()
        )

    def run(self, ex: Exchange) -> Violation | Awaitable[Violation | None] | None:
        if not self.conditions.matches(ex):
            return None
        if ex.body is not None and len(ex.body) > OFFLOAD_BYTES:
            return asyncio.to_thread(self._apply, ex)  # keep the event loop serving other requests
        return self._apply(ex)

    def _apply(self, ex: Exchange) -> Violation | None:
        try:
            for step in self.steps:
                step.apply(ex)
        except PayloadError as exc:
            return Violation(400, FAILED, f"The request could not be transformed: {exc}")
        return None
