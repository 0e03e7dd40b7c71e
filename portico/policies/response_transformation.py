"""``responseTransformation`` (responseProcessing): reshape the native answer before it is returned.

Parameters: an optional ``transformationConditions`` group and one or more
``responseTransformationConfiguration`` groups (``requestTransformationConfiguration`` is accepted
too: the reference's own "Create Response Transformation" example uses that name). Targets:
response headers (``${response.headers.X}``; ``${request.headers.X}`` means the same here),
``${response.statusCode}`` and the payload by JSONPath, XPath, regex, XSLT and XML <-> JSON
conversion. (``${response.statusMessage}`` can be read, not set: the gateway always sends the
standard reason phrase.)

The answer is buffered only when a configuration touches or reads the payload. A native payload
that does not fit ends the exchange with 502 ``RESPONSE_TRANSFORMATION_FAILED``. Bodies above
``OFFLOAD_BYTES`` are transformed in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from pydantic import Field, model_validator

from portico.gateway.exchange import Exchange
from portico.policies.base import PolicyConfig, PolicyHandler, Violation
from portico.policies.payload import PayloadError
from portico.policies.payload.conditions import CompiledConditions, TransformationConditions
from portico.policies.payload.transform import (
    OFFLOAD_BYTES,
    ResponseTransformationConfiguration,
    Transformation,
)

FAILED = "RESPONSE_TRANSFORMATION_FAILED"


class ResponseTransformationConfig(PolicyConfig):
    transformationConditions: TransformationConditions | None = Field(
        default=None, description="When to transform; without conditions every response is transformed."
    )
    responseTransformationConfiguration: list[ResponseTransformationConfiguration] = Field(
        default_factory=list, description="The transformations, applied in order."
    )
    requestTransformationConfiguration: list[ResponseTransformationConfiguration] = Field(
        default_factory=list, description="Accepted as a synonym of responseTransformationConfiguration."
    )

    @model_validator(mode="after")
    def _one_needed(self) -> ResponseTransformationConfig:
        if not self.responseTransformationConfiguration and not self.requestTransformationConfiguration:
            raise ValueError("responseTransformationConfiguration: at least one transformation is required")
        return self


class ResponseTransformation(PolicyHandler):
    template_key = "responseTransformation"
    stage = "responseProcessing"
    title = "Response Transformation"
    Config = ResponseTransformationConfig

    def __init__(self, config: ResponseTransformationConfig) -> None:
        super().__init__(config)
        self.conditions = CompiledConditions(config.transformationConditions)
        groups = [*config.responseTransformationConfiguration, *config.requestTransformationConfiguration]
        self.steps = tuple(Transformation(c) for c in groups)
        # Per instance: a header-only transformation keeps the answer streaming.
        self.needs_response_body = any(s.needs_body for s in self.steps) or any(  # type: ignore[misc]
            t.reads("response") for t in self.conditions.templates()
        )

    def on_response(self, ex: Exchange) -> Violation | Awaitable[Violation | None] | None:
        if not self.conditions.matches(ex):
            return None
        if ex.response is not None and len(ex.response.body) > OFFLOAD_BYTES:
            return asyncio.to_thread(self._apply, ex)  # keep the event loop serving other requests
        return self._apply(ex)

    def _apply(self, ex: Exchange) -> Violation | None:
        try:
            for step in self.steps:
                step.apply(ex)
        except PayloadError as exc:
            return Violation(502, FAILED, f"The native response could not be transformed: {exc}")
        return None
