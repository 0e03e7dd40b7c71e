"""``entryProtocolPolicy`` (transport stage): which protocols may call the API."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from portico.gateway.exchange import Exchange
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

ALL_PROTOCOLS = frozenset({"http", "https"})


class EntryProtocolConfig(PolicyConfig):
    protocol: list[Literal["http", "https"]] = Field(
        default=["http", "https"], min_length=1, description="Protocols the API accepts calls on."
    )
    soapVersion: str | None = Field(default=None, description="SOAP version (SOAP APIs only).")


class EntryProtocolPolicy(PolicyHandler):
    template_key = "entryProtocolPolicy"
    stage = "transport"
    title = "Enable HTTP / HTTPS"
    Config = EntryProtocolConfig

    def __init__(self, config: EntryProtocolConfig) -> None:
        super().__init__(config)
        self._allowed = frozenset(config.protocol)

    def takes_part(self, phase: str) -> bool:
        # allowing both protocols (the default policy of every new API) checks nothing
        return super().takes_part(phase) and not (phase == "run" and self._allowed >= ALL_PROTOCOLS)

    def run(self, ex: Exchange) -> Violation | None:
        scheme = ex.request.scheme
        if scheme in self._allowed:
            return None
        allowed = " or ".join(sorted(self._allowed))
        return Violation(403, "PROTOCOL_NOT_ALLOWED", f"The API accepts {allowed} only, not {scheme}")
