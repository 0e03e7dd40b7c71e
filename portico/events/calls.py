"""The cheap form of a transaction event, captured on the gateway's hot path.

Building a full :class:`TransactionEvent` (fifty fields) for every call costs more than the
rest of the event's life; the gateway captures a :class:`CallRecord` (plain values, no copies)
and the recorder's background writer turns it into the stored row.

The row of a call record keeps its body compact: a JSON array of the values that have no column
of their own (``[1, client ip, method, ...]``, 1 being the format), about a third of the wire
form's size, which makes both building and inserting the row cheaper (a database's insert cost
grows with the row). Readers turn it into the wire form with :func:`wire_body`, from the row's
columns and that array; a body that is a JSON object is already in the wire form (events that
policies enriched, rows written before the compact form)."""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote

import orjson

from portico.ids import fast_id

_SECRET_HEADERS: Final = frozenset({b"authorization", b"proxy-authorization", b"cookie", b"x-gateway-apikey"})


# A call record is a plain tuple of these fields, in this order. Plain, not a NamedTuple, and
# nested one level at most: the garbage collector stops tracking a tuple once everything in it is
# untracked (strings, numbers, bytes, None, such tuples), one level per collection and never for
# a tuple subclass. Records waiting for the writer would otherwise be promoted to the oldest
# generation by the thousand and set off full collections.
CALL_FIELDS = (
    "created_ms", "api_id", "api_name", "api_version", "application_id", "application_name", "client_ip",
    "correlation_id", "http_method", "operation_name", "query",
    "request_headers",  # flat tuple: name, value, name, value, ... (bytes, as received)
    "api_key_header", "response_code", "failure_key", "native_url", "native_method", "package_id", "plan_id",
    "total_ms", "provider_ms", "data_size",  # whole milliseconds
)
CallRecord = tuple[Any, ...]


class CallQueue:
    """The event recorder's bounded queue, in this compiled module: the gateway appends every
    call's record to it, and an interpreted method in between cost more than the append.

    ``append`` never blocks and never raises. Past ``limit`` queued events, or once ``closed``, it
    sheds the event and calls ``on_drop``; it calls ``on_batch`` as the queue reaches ``batch``
    events (once: the writer then drains the queue whole)."""

    def __init__(self, limit: int, batch: int, on_batch: Callable[[], None], on_drop: Callable[[], None]) -> None:
        self.items: deque[Any] = deque()
        self.limit = limit
        self.batch = batch
        self.closed = False
        self.accepted = 0
        self._on_batch = on_batch
        self._on_drop = on_drop

    def append(self, event: Any) -> None:
        items = self.items
        if self.closed or len(items) >= self.limit:
            self._on_drop()
            return
        items.append(event)
        self.accepted += 1
        if len(items) == self.batch:
            self._on_batch()

    def take(self, n: int) -> list[Any]:
        """The oldest ``n`` queued events (all of them, when there are no more), in order."""
        items = self.items
        if len(items) <= n:
            taken = list(items)
            items.clear()
            return taken
        return [items.popleft() for _ in range(n)]


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


# Who an event is about, as the ``event_subjects`` table stores it: API id, name and version,
# application id and name, package id, plan id ("" where there is none).
Subject = tuple[str, str, str, str, str, str, str]


def subject_key(subject: Subject) -> int:
    """The ``event_subjects`` key of ``subject``: 63 bits of a hash of its values, the same in every
    process (a chance of 2**-63 that two subjects share one)."""
    digest = hashlib.blake2b(_dumps(subject), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def key_of(keys: dict[Subject, int], subject: Subject) -> int:
    """``subject``'s key, noted in ``keys`` (the recorder stores the subjects it finds there)."""
    key = keys.get(subject)
    if key is None:
        key = keys[subject] = subject_key(subject)
    return key


# A stored event's row, as the recorder binds it: (id, creation date, subject key, 0 for a success
# or 1 for a failure, response code, correlation id, body). The correlation id is 0 when it is the
# event's id (a call's event takes its exchange's correlation id as its id), "" when there is none.
EventRow = tuple[str, int, int, int, int | None, str | int, str]


def call_row(rec: CallRecord, keys: dict[Subject, int]) -> EventRow:
    """The row of a call record (fields as in ``CALL_FIELDS``), with the compact body; its subject
    is noted in ``keys``."""
    # Typed locals: compiled, they make the loop and the decodes native (a field of the record's
    # Any type costs a generic call each).
    headers: tuple[bytes, ...] = rec[11]
    key_header: bytes = rec[12]
    code: int = rec[13]
    failure_key: str = rec[14]
    correlation_id: str | None = rec[7]
    secret = _SECRET_HEADERS
    flat: list[str] = []
    for i in range(0, len(headers) - 1, 2):
        name = headers[i]
        flat.append(name.decode("latin-1"))
        flat.append("********" if name in secret or name == key_header else headers[i + 1].decode("latin-1"))
    body = _dumps((COMPACT_V1, rec[6], rec[8], rec[9], rec[10], flat, failure_key, rec[15], rec[16], rec[19],
                   rec[20], rec[21]))
    subject = (rec[1], rec[2], rec[3], rec[4] or "", rec[5] or "", rec[17] or "", rec[18] or "")
    key = key_of(keys, subject)
    failed = 0 if code < 400 and not failure_key else 1
    if correlation_id:
        return (correlation_id, rec[0], key, failed, code, 0, body.decode())
    return (fast_id(), rec[0], key, failed, code, "", body.decode())


def rows_of(
    batch: list[Any],
    keys: dict[Subject, int],
    event_row: Callable[[Any, dict[Subject, int]], EventRow],
    on_error: Callable[[], None],
) -> list[EventRow]:
    """The rows of a batch: call records by :func:`call_row`, other events by ``event_row``. An
    event that cannot be turned into a row is left out; ``on_error`` is called while its exception
    is being handled. Compiled, the loop costs a fraction of what it did in the recorder."""
    rows: list[EventRow] = []
    for event in batch:
        try:
            if type(event) is tuple:
                rows.append(call_row(event, keys))
            else:
                rows.append(event_row(event, keys))
        except Exception:
            on_error()
    return rows


COMPACT_V1: Final = 1
_dumps: Final = orjson.dumps


def wire_body(row: Any) -> dict[str, Any]:
    """The wire form of a stored event from its row (columns ``id``, ``creation_date``, ``api_id``,
    ``api_name``, ``api_version``, ``application_id``, ``application_name``, ``package_id``,
    ``plan_id``, ``status``, ``response_code``, ``correlation_id`` and ``body``)."""
    stored = orjson.loads(row.body)
    if isinstance(stored, dict):
        return stored
    (_, client_ip, method, operation, query, flat, failure_key, native_url, native_method, total, provider,
     size) = stored
    body: dict[str, Any] = {
        "id": row.id, "creationDate": row.creation_date, "eventType": "Transactional",
        "sourceGateway": "APIGateway", "apiId": row.api_id, "apiName": row.api_name,
        "apiVersion": row.api_version, "applicationIp": client_ip, "consumerIp": client_ip,
        "httpMethod": method, "requestHeaders": dict(zip(flat[::2], flat[1::2], strict=True)),
        "responseCode": str(row.response_code), "status": row.status, "callbackRequest": False,
        "totalTime": total, "providerTime": provider, "gatewayTime": max(total - provider, 0),
        "totalDataSize": size,
    }
    optional = (
        ("applicationId", row.application_id), ("applicationName", row.application_name),
        ("correlationID", row.correlation_id), ("operationName", operation),
        ("errorOrigin", failure_key or None), ("nativeURL", native_url), ("nativeHttpMethod", native_method),
        ("packageId", row.package_id), ("planId", row.plan_id),
    )
    for key, value in optional:
        if value is not None:
            body[key] = value
    if query:
        body["queryParameters"] = query_dict(query)
    return body
