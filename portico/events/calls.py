"""The cheap form of a transaction event, captured on the gateway's hot path.

Building a full :class:`TransactionEvent` (fifty fields) for every call costs more than the
rest of the event's life; the gateway captures a :class:`CallRecord` (plain values, no copies)
and the recorder's background writer turns it into the stored row and JSON body."""

from __future__ import annotations

import time
from typing import Any, NamedTuple
from urllib.parse import unquote

import orjson

from portico.ids import fast_id

_SECRET_HEADERS = frozenset({b"authorization", b"proxy-authorization", b"cookie", b"x-gateway-apikey"})


class CallRecord(NamedTuple):
    created_ms: int
    api_id: str
    api_name: str
    api_version: str
    application_id: str | None
    application_name: str | None
    client_ip: str
    correlation_id: str | None
    http_method: str
    operation_name: str | None
    query: str
    request_headers: list[tuple[bytes, bytes]]
    api_key_header: bytes
    response_code: int
    failure_key: str
    native_url: str | None
    native_method: str | None
    package_id: str | None
    plan_id: str | None
    total_ms: float
    provider_ms: float
    data_size: int


def loggable_headers(headers: list[tuple[bytes, bytes]], api_key_header: bytes) -> dict[str, str]:
    """Request headers for the event, with credentials masked: events are read by many people."""
    out: dict[str, str] = {}
    for n, v in headers:
        secret = n in _SECRET_HEADERS or n == api_key_header
        out[n.decode("latin-1")] = "********" if secret else v.decode("latin-1")
    return out


def query_dict(query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            k, _, v = part.partition("=")
            out[unquote(k)] = unquote(v)
    return out


def now_ms() -> int:
    return int(time.time() * 1000)


def call_body(rec: CallRecord, event_id: str) -> dict[str, Any]:
    """The webMethods wire form of the event (the same fields ``TransactionEvent.to_json`` gives)."""
    status = "SUCCESS" if rec.response_code < 400 and not rec.failure_key else "FAILURE"
    body: dict[str, Any] = {
        "id": event_id, "creationDate": rec.created_ms, "eventType": "Transactional",
        "sourceGateway": "APIGateway", "apiId": rec.api_id, "apiName": rec.api_name,
        "apiVersion": rec.api_version, "applicationIp": rec.client_ip, "consumerIp": rec.client_ip,
        "httpMethod": rec.http_method, "requestHeaders": loggable_headers(rec.request_headers, rec.api_key_header),
        "responseCode": str(rec.response_code), "status": status, "callbackRequest": False,
        "totalTime": int(rec.total_ms), "providerTime": int(rec.provider_ms),
        "gatewayTime": int(max(rec.total_ms - rec.provider_ms, 0)), "totalDataSize": rec.data_size,
    }
    optional = (
        ("applicationId", rec.application_id), ("applicationName", rec.application_name),
        ("correlationID", rec.correlation_id), ("operationName", rec.operation_name),
        ("errorOrigin", rec.failure_key or None), ("nativeURL", rec.native_url),
        ("nativeHttpMethod", rec.native_method), ("packageId", rec.package_id), ("planId", rec.plan_id),
    )
    for key, value in optional:
        if value is not None:
            body[key] = value
    if rec.query:
        body["queryParameters"] = query_dict(rec.query)
    return body


def call_row(rec: CallRecord) -> tuple[Any, ...]:
    """The ``transaction_events`` row, in the recorder's column order."""
    event_id = fast_id()
    body = orjson.dumps(call_body(rec, event_id), default=str).decode()
    status = "SUCCESS" if rec.response_code < 400 and not rec.failure_key else "FAILURE"
    return (event_id, rec.created_ms, rec.api_id, rec.api_name, rec.api_version, rec.application_id,
            rec.application_name, rec.package_id, rec.plan_id, status, rec.response_code, rec.correlation_id, body)
