"""``setMediaType`` (transport): the content type and accept header a request gets when it has none.

Parameters (Postman "Create Set Media Type"): ``defaultContentType`` and ``defaultAccept``. A
request that carries the header keeps its own; later stages (validation, transformation, the
native service) see the defaulted header."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from portico.gateway.exchange import Exchange
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(\"[^\"\r\n]*\"|{_TOKEN}))*$")


class SetMediaTypeConfig(PolicyConfig):
    defaultContentType: str | None = Field(
        default=None, description="Content-Type for requests without one, e.g. application/json."
    )
    defaultAccept: str | None = Field(
        default=None, description="Accept for requests without one, e.g. application/json."
    )

    @field_validator("defaultContentType")
    @classmethod
    def _check_content_type(cls, value: str | None) -> str | None:
        if value is not None and not _MEDIA_TYPE.match(value.strip()):
            raise ValueError(f"{value!r} is not a media type such as application/json")
        return value.strip() if value else value

    @field_validator("defaultAccept")
    @classmethod
    def _check_accept(cls, value: str | None) -> str | None:
        if value is None:
            return value
        for item in value.split(","):
            if not _MEDIA_TYPE.match(item.strip()):
                raise ValueError(f"{value!r} is not a list of media types such as application/json")
        return value.strip()

    @model_validator(mode="after")
    def _something(self) -> SetMediaTypeConfig:
        if not self.defaultContentType and not self.defaultAccept:
            raise ValueError("defaultContentType or defaultAccept is required")
        return self


class SetMediaType(PolicyHandler):
    template_key = "setMediaType"
    stage = "transport"
    title = "Set Media Type"
    Config = SetMediaTypeConfig

    def __init__(self, config: SetMediaTypeConfig) -> None:
        super().__init__(config)
        self._content_type = config.defaultContentType.encode("latin-1") if config.defaultContentType else None
        self._accept = config.defaultAccept.encode("latin-1") if config.defaultAccept else None

    def run(self, ex: Exchange) -> Violation | None:
        if self._content_type is not None and not ex.header(b"content-type"):
            ex.set_header(b"content-type", self._content_type)
        if self._accept is not None and not ex.header(b"accept"):
            ex.set_header(b"accept", self._accept)
        return None
