"""The cheap form of a transaction event, captured on the gateway's hot path.

Building a full :class:`TransactionEvent` (fifty fields) for every call costs more than the
rest of the event's life; the gateway captures a :class:`CallRecord` (plain values, no copies)
and the recorder's background writer turns it into the stored row and JSON body."""

from __future__ import annotations

import time
from functools import partial
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


# Builds a CallRecord from a tuple without NamedTuple's keyword-capable __new__ (a fifth of the cost):
# the gateway makes one per request.
make_record = partial(tuple.__new__, CallRecord)


def loggable_headers(headers: list[tuple[bytes, bytes]], api_key_header: bytes) -> dict[str, str]:
    """Request headers for the event, with credentials masked: events are read by many people."""
    secret = _SECRET_HEADERS
    return {
        n.decode("latin-1"): "********" if n in secret or n == api_key_header else v.decode("latin-1")
        for n, v in headers
    }


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
    (created, api_id, api_name, api_version, app_id, app_name, client_ip, correlation_id, method, operation,
     query, headers, key_header, code, failure_key, native_url, native_method, package_id, plan_id,
     total_ms, provider_ms, size) = rec
    body: dict[str, Any] = {
        "id": event_id, "creationDate": created, "eventType": "Transactional",
        "sourceGateway": "APIGateway", "apiId": api_id, "apiName": api_name,
        "apiVersion": api_version, "applicationIp": client_ip, "consumerIp": client_ip,
        "httpMethod": method, "requestHeaders": loggable_headers(headers, key_header),
        "responseCode": str(code), "status": "SUCCESS" if code < 400 and not failure_key else "FAILURE",
        "callbackRequest": False, "totalTime": int(total_ms), "providerTime": int(provider_ms),
        "gatewayTime": int(total_ms - provider_ms) if total_ms > provider_ms else 0, "totalDataSize": size,
    }
    # Fields left out when unknown, as TransactionEvent.to_json does (one test per field: this
    # runs for every event, a loop over pairs costs twice as much).
    if app_id is not None:
        body["applicationId"] = app_id
    if app_name is not None:
        body["applicationName"] = app_name
    if correlation_id is not None:
        body["correlationID"] = correlation_id
    if operation is not None:
        body["operationName"] = operation
    if failure_key:
        body["errorOrigin"] = failure_key
    if native_url is not None:
        body["nativeURL"] = native_url
    if native_method is not None:
        body["nativeHttpMethod"] = native_method
    if package_id is not None:
        body["packageId"] = package_id
    if plan_id is not None:
        body["planId"] = plan_id
    if query:
        body["queryParameters"] = query_dict(query)
    return body


def call_row(rec: CallRecord) -> tuple[Any, ...]:
    """The ``transaction_events`` row, in the recorder's column order."""
    event_id = fast_id()
    body = _dumps(call_body(rec, event_id), default=str)
    status = "SUCCESS" if rec[13] < 400 and not rec[14] else "FAILURE"
    return (event_id, rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[17], rec[18], status, rec[13], rec[7],
            body.decode())


_dumps = orjson.dumps
