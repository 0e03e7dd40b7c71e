"""``logInvocation`` (LMT): what the transaction event of a call stores.

With ``storeRequestPayload`` the request body is buffered; with ``storeResponsePayload`` or
``storeResponseHeaders`` the native answer is. After the response went out, and when
``logGenerationFrequency`` fits (Always, OnSuccess: status < 400, OnFailure), the event gets
``reqPayload``, ``resPayload`` and ``responseHeaders``; ``storeRequestHeaders: false`` drops
``requestHeaders``. Destinations: GATEWAY (the transaction event) and localLog (the server log at
``logLevel``); see :mod:`portico.policies._destinations`. Payloads longer than 256 KiB are cut, with a marker."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field

from portico.events.model import TransactionEvent
from portico.gateway.exchange import EVENT_HOOKS, Exchange
from portico.policies._destinations import Destination, gateway_destination, local_log_level, warn_undelivered
from portico.policies.base import PolicyConfig, PolicyHandler
from portico.policies.payload.masking import Direction, mask_for_log

log = logging.getLogger("portico.transactions")
MAX_LOGGED = 256 * 1024


class LogInvocationConfig(PolicyConfig):
    storeRequestHeaders: bool = Field(default=True, description="Keep the request headers in the event.")
    storeRequestPayload: bool = Field(default=False, description="Keep the request payload (reqPayload).")
    storeResponseHeaders: bool = Field(default=False, description="Keep the response headers.")
    storeResponsePayload: bool = Field(default=False, description="Keep the response payload (resPayload).")
    storeClientMessage: bool = Field(default=False, description="Accepted for compatibility; no effect.")
    storeServerMessage: bool = Field(default=False, description="Accepted for compatibility; no effect.")
    storeAsZip: bool = Field(default=False, description="Accepted for compatibility; payloads are stored as text.")
    logGenerationFrequency: Literal["Always", "OnSuccess", "OnFailure"] = Field(
        default="Always", description="Which calls get payloads logged.")
    destination: list[Destination] = Field(
        default_factory=gateway_destination, description="Log destinations.")


def _masked(ex: Exchange, data: bytes | None, direction: Direction) -> bytes | None:
    return mask_for_log(ex, data, direction) if data else data


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    if len(data) > MAX_LOGGED:
        return data[:MAX_LOGGED].decode("utf-8", "replace") + f"...[{len(data) - MAX_LOGGED} more bytes]"
    return data.decode("utf-8", "replace")


def _headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {n.decode("latin-1"): v.decode("latin-1") for n, v in headers}


class LogInvocation(PolicyHandler):
    template_key = "logInvocation"
    stage = "LMT"
    title = "Log Invocation"
    Config = LogInvocationConfig

    def __init__(self, config: LogInvocationConfig) -> None:
        super().__init__(config)
        self.cfg = config
        # Buffer only what is stored: other APIs keep streaming.
        self.needs_request_body = config.storeRequestPayload  # type: ignore[misc]
        self.needs_response_body = config.storeResponsePayload or config.storeResponseHeaders  # type: ignore[misc]
        self._to_gateway = any(d.destinationType == "GATEWAY" for d in config.destination)
        self._local_level = local_log_level(config.destination)
        warn_undelivered(config.destination, self.template_key)

    def run(self, ex: Exchange) -> None:
        return None  # present so the runtime buffers the request body first when asked

    def on_complete(self, ex: Exchange, status: int) -> None:
        failed = status >= 400 or ex.fault is not None
        wanted = self.cfg.logGenerationFrequency
        if (wanted == "OnSuccess" and failed) or (wanted == "OnFailure" and not failed):
            return
        # Logged payloads go through the API's data-masking actions (sameForTransactionalLogging).
        req_payload = _text(_masked(ex, ex.body, "request")) if self.cfg.storeRequestPayload else None
        response = ex.response or (ex.fault.native if ex.fault else None)
        res_payload = res_headers = None
        direction: Direction = "fault" if ex.fault is not None else "response"
        if response is not None:
            res_payload = _text(_masked(ex, response.body, direction)) if self.cfg.storeResponsePayload else None
            res_headers = _headers(response.headers) if self.cfg.storeResponseHeaders else None
        elif ex.fault is not None and ex.fault.body is not None and self.cfg.storeResponsePayload:
            res_payload = _text(_masked(ex, ex.fault.body, "fault"))
        if self._local_level is not None:
            log.log(self._local_level, "%s %s %s -> %s request=%r response=%r", ex.api.name, ex.request.method,
                    ex.request.path, status, req_payload, res_payload)
        if not self._to_gateway:
            return
        keep_request_headers = self.cfg.storeRequestHeaders

        def enrich(event: TransactionEvent) -> None:
            event.req_payload = req_payload
            event.res_payload = res_payload
            event.response_headers = res_headers
            if not keep_request_headers:
                event.request_headers = None

        ex.policy_state(EVENT_HOOKS)[self.template_key] = enrich
