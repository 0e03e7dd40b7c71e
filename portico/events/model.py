"""The transactional event, one per API invocation.

Field names follow the "Transactional Events" table of the webMethods API
Gateway administration guide and the ``TransactionEvent`` definition of
``APIGatewayTransactionalEvent.json``; :meth:`TransactionEvent.to_json` gives
exactly that wire form. The gateway fills an instance on the hot path, so this
is a plain slotted dataclass: no validation, no copying."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from portico.ids import fast_id


def _new_id() -> str:
    return fast_id()


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class TransactionEvent:
    """One invocation. Treat it as immutable once passed to ``EventRecorder.record``:
    the recorder serialises it later, off the request path."""

    id: str = field(default_factory=_new_id)
    creation_date: int = field(default_factory=_now_ms)  # epoch milliseconds
    event_type: str = "Transactional"
    # The guide lists "APIGateway" or "Microgateway"; clients filter on it, so keep the former.
    source_gateway: str = "APIGateway"
    source_gateway_node: str | None = None
    source_gateway_details: str | None = None
    server_id: str | None = None
    tenant_id: str | None = None
    stage: str | None = None

    api_id: str | None = None
    api_name: str | None = None
    api_version: str | None = None
    application_id: str | None = None
    application_name: str | None = None
    application_ip: str | None = None
    consumer_ip: str | None = None
    package_id: str | None = None
    package_name: str | None = None
    plan_id: str | None = None
    plan_name: str | None = None
    correlation_id: str | None = None
    session_id: str | None = None

    http_method: str | None = None
    operation_name: str | None = None
    query_parameters: dict[str, str] | None = None
    request_headers: dict[str, str] | None = None
    req_payload: str | None = None
    response_code: int | None = None
    response_headers: dict[str, str] | None = None
    res_payload: str | None = None
    status: str = "SUCCESS"  # or "FAILURE"
    error_origin: str | None = None
    callback_request: bool = False
    cached_response: bool | None = None

    native_url: str | None = None
    native_http_method: str | None = None
    native_request_headers: dict[str, str] | None = None
    native_req_payload: str | None = None
    native_response_headers: dict[str, str] | None = None
    native_res_payload: str | None = None
    external_calls: list[dict[str, Any]] | None = None
    custom_fields: dict[str, str] | None = None

    total_time: int = 0  # ms, request received -> response sent
    provider_time: int = 0  # ms spent waiting for the native service
    gateway_time: int = 0  # totalTime - providerTime, per the guide
    total_data_size: int = 0  # request + response payload bytes

    def to_json(self) -> dict[str, Any]:
        """The webMethods wire form; fields that were never set (None) are left out."""
        out: dict[str, Any] = {}
        for attr, key in _JSON_NAMES:
            value = getattr(self, attr)
            if value is not None:
                out[key] = value
        # The spec types both as strings ("responseCode": "200"); clients compare them as such.
        if self.response_code is not None:
            out["responseCode"] = str(self.response_code)
        if self.cached_response is not None:
            out["cachedResponse"] = "true" if self.cached_response else "false"
        return out


# Attribute -> wire name, computed once. Irregular names ("correlationID",
# "serverID", "nativeURL") come from the reference and must stay as they are.
_IRREGULAR = {
    "correlation_id": "correlationID",
    "server_id": "serverID",
    "native_url": "nativeURL",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


_JSON_NAMES: tuple[tuple[str, str], ...] = tuple(
    (name, _IRREGULAR.get(name, _camel(name))) for name in TransactionEvent.__dataclass_fields__
)
