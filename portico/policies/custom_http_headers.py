"""``customHttpHeaders`` (routing): headers added to the request sent to the native service.

Parameters (Postman "Create Custom HTTP Header Policy Action"): one ``header`` group per header,
with ``headerKey`` and ``headerValue``. Values may hold ``${...}`` variables (the gateway's, plus
the message references of :mod:`portico.policies.payload.expressions`); they are compiled once and
rendered per request. A header the client sent under the same name is replaced."""

from __future__ import annotations

from pydantic import Field, field_validator

from portico.gateway.exchange import Exchange
from portico.policies.base import PolicyConfig, PolicyHandler, Violation
from portico.policies.payload.expressions import MessageTemplate
from portico.policies.payload.transform import HEADER_NAME, header_value


class CustomHeader(PolicyConfig):
    headerKey: str = Field(description="The header name.")
    headerValue: str = Field(default="", description="The header value; may contain ${...} variables.")

    @field_validator("headerKey")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not HEADER_NAME.match(value.strip()):
            raise ValueError(f"{value!r} is not a valid header name")
        return value.strip()

    @field_validator("headerValue")
    @classmethod
    def _check_value(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("a header value may not contain line breaks")
        MessageTemplate(value)
        return value


class CustomHttpHeadersConfig(PolicyConfig):
    header: list[CustomHeader] = Field(min_length=1, description="The headers to send to the native service.")


class CustomHttpHeaders(PolicyHandler):
    template_key = "customHttpHeaders"
    stage = "routing"
    title = "Custom HTTP Header"
    Config = CustomHttpHeadersConfig

    def __init__(self, config: CustomHttpHeadersConfig) -> None:
        super().__init__(config)
        self.headers = tuple(
            (h.headerKey.lower().encode("latin-1"), MessageTemplate(h.headerValue)) for h in config.header
        )
        self.needs_request_body = any(t.reads("request") for _, t in self.headers)  # type: ignore[misc]

    def run(self, ex: Exchange) -> Violation | None:
        for name, template in self.headers:
            ex.set_header(name, header_value(template.render(ex)))
        return None
