"""Audit logs on the management API: what each successful write records, which areas are recorded
(``/configurations/auditlogDestinationConfig``), and the download (``GET /apitransactions``).

Every successful write (POST/PUT/PATCH/DELETE answered below 400) passes through
:func:`record_write` from ``admin.app._guarded``; :mod:`portico.audit.actions` names the object type
and action of each route. The audited object is, in this order:

- ``request.state.audit_object`` when the handler set it (a string, or a list of strings for a
  bulk operation: one entry each). Set it when the route's path has no id of the object changed;
- the route's first path parameter (``/apis/{apiId}/activate`` -> the API's id);
- the ids of a bulk delete's ``...Ids`` / ``ids`` query parameter, one entry each;
- the ``id`` found in the JSON response (a created asset);
- else the route's last path segment (``/configurations/settings`` -> ``settings``).

A handler that records its own entries (logins) sets ``request.state.audit_skip = True``."""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError, bad_request
from portico.admin.events import older_than, parse_date
from portico.audit import AuditEntry, actions
from portico.audit.areas import FLAGS, as_flags, load_enabled_areas, save_enabled_areas
from portico.audit.export import build_zip, stream
from portico.audit.query import TEXT_FIELDS, AuditQuery, FieldFilter, PatternTooSlow
from portico.events.purge import EVENT_TYPES
from portico.store.db import now_ms as now

log = logging.getLogger(__name__)

_MAX_PARSED_RESPONSE = 1024 * 1024  # names in messages are a nicety; bigger answers are not parsed
_NAME_KEYS = ("apiName", "name", "applicationName", "packageName", "planName", "loginId", "policyName")


# -- recording ------------------------------------------------------------------------------------

def record_write(request: Request, route_path: str, response: Response) -> None:
    """Record the successful write ``request`` made on ``route_path``; never raises."""
    try:
        described = actions.describe(request.method, route_path)
        if described is None or getattr(request.state, "audit_skip", False):
            return
        object_type, action = described
        principal = getattr(request.state, "principal", None)
        user = principal.login_id if principal is not None else ""
        client_ip = request.client.host if request.client else ""
        sink = context_of(request).audit
        for obj, name in _objects(request, route_path, response):
            label = f"'{name}' ({obj})" if name and name != obj else f"'{obj}'"
            sink.record(AuditEntry(object_type, action, obj, f"{action} {object_type} {label}", user, client_ip))
    except Exception:  # auditing must never fail the action it records
        log.exception("cannot record the audit entry of %s %s", request.method, route_path)


def _objects(request: Request, route_path: str, response: Response) -> list[tuple[str, str | None]]:
    given = getattr(request.state, "audit_object", None)
    if isinstance(given, str) and given:
        return [(given, None)]
    if isinstance(given, list) and given:
        return [(str(g), None) for g in given]
    found_id, found_name = _identity(_response_json(response))
    for value in request.path_params.values():
        obj = str(value)
        return [(obj, found_name if found_id == obj else None)]
    for param, value in request.query_params.multi_items():
        if param == "ids" or param.endswith("Ids"):
            ids = [p.strip() for p in value.split(",") if p.strip()]
            if ids:
                return [(i, None) for i in ids]
    if found_id:
        return [(found_id, found_name)]
    literals = [s for s in route_path.split("/") if s and not s.startswith("{")]
    return [(literals[-1] if literals else route_path, None)]


def _response_json(response: Response) -> Any:
    body = getattr(response, "body", None)
    if not isinstance(body, bytes | memoryview) or not body or len(body) > _MAX_PARSED_RESPONSE:
        return None
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _identity(payload: Any) -> tuple[str | None, str | None]:
    """``(id, name)`` of the shallowest object with a string ``id`` (looking 4 levels deep)."""
    level: deque[Any] = deque([payload])
    for _ in range(4):
        below: deque[Any] = deque()
        for node in level:
            if isinstance(node, dict):
                ident = node.get("id")
                if isinstance(ident, str) and ident:
                    # {"packageResponse": {"id", "package": {"id", "name"}}}: the name is one level down
                    same = [v for v in node.values() if isinstance(v, dict) and v.get("id") == ident]
                    return ident, _name(node) or next((n for n in map(_name, same) if n), None)
                below.extend(v for v in node.values() if isinstance(v, dict | list))
            elif isinstance(node, list) and len(node) == 1:
                below.append(node[0])
        level = below
    return None, None


def _name(node: dict[str, Any]) -> str | None:
    for key in _NAME_KEYS:
        value = node.get(key)
        if isinstance(value, str) and value:
            return value
    names = node.get("names")
    if isinstance(names, list) and names and isinstance(names[0], dict) and isinstance(names[0].get("value"), str):
        return str(names[0]["value"])
    return None


# -- which areas are recorded ---------------------------------------------------------------------

async def get_destination(request: Request) -> Response:
    """The management areas recorded in the audit log (``sendAuditlog<Area>Event`` flags)."""
    async with context_of(request).store.read() as tx:
        return json_response(as_flags(await load_enabled_areas(tx)))


def _flag_value(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"field '{name}' must be true or false, got {value!r}")


async def put_destination(request: Request) -> Response:
    """Select the recorded areas: any subset of the flags; flags not given keep their value."""
    ctx = context_of(request)
    data = await read_object(request)
    unknown = sorted(set(data) - set(FLAGS))
    if unknown:
        raise bad_request(f"unexpected field(s) {unknown}; Portico's audit-log destination takes the flags "
                          f"{sorted(FLAGS)}")
    update = {FLAGS[name]: _flag_value(name, value) for name, value in data.items()}
    async with ctx.store.transaction() as tx:
        areas = set(await load_enabled_areas(tx))
        areas |= {area for area, on in update.items() if on}
        areas -= {area for area, on in update.items() if not on}
        await save_enabled_areas(tx, frozenset(areas))
    return json_response(as_flags(frozenset(areas)))


# -- download -------------------------------------------------------------------------------------

_REGEX_CHARS = frozenset(".*+?[](){}|^$\\")


def download_query(params: Any, now_ms: int | None = None) -> AuditQuery:
    """The records a download covers: ``startDate`` + ``endDate``, or ``duration`` (records older
    than it, as in the reference), plus optional per-field filters named like the columns."""
    event_type = params.get("eventType", "")
    if event_type != "auditlogs":
        if event_type in EVENT_TYPES:
            raise bad_request(f"eventType {event_type!r} cannot be downloaded from Portico yet; "
                              "only eventType=auditlogs is supported")
        raise bad_request(f"eventType must be one of {list(EVENT_TYPES)}, got {event_type!r}")
    start, end, duration = (params.get(k, "").strip() for k in ("startDate", "endDate", "duration"))
    if duration:
        if start or end:
            raise bad_request("give either startDate and endDate, or duration, not both")
        from_date, to_date = None, older_than("duration", duration, now_ms if now_ms is not None else now())
    elif start and end:
        from_date, to_date = parse_date("startDate", start), parse_date("endDate", end, end_of_day=True)
        if from_date > to_date:
            raise bad_request("startDate must not be after endDate")
    else:
        raise bad_request("startDate and endDate, or duration, are required")
    filters = []
    for name in TEXT_FIELDS:
        value = params.get(name) if name != "eventType" else None  # the reference's eventType is the kind of data
        if value:
            operator = "matches" if not _REGEX_CHARS.isdisjoint(value) else "equals"
            filters.append(FieldFilter(name, operator, check_pattern(name, value, operator)))
    return AuditQuery(from_date=from_date, to_date=to_date, filters=tuple(filters))


def check_pattern(name: str, value: str, operator: str) -> str:
    """``value`` unchanged; 400 when it holds a NUL character (no database stores one) or when
    ``operator`` is ``matches`` and it is no regular expression."""
    if "\x00" in value:
        raise bad_request(f"the value for {name!r} contains a NUL character")
    if operator == "matches":
        try:
            re.compile(f"^(?:{value})$")
        except re.error as exc:
            raise bad_request(f"invalid pattern {value!r} for {name!r}: {exc}") from None
    return value


def pattern_rejected(query: AuditQuery) -> Exception:
    """What a database error during a query means: a 400 when the query has a regular expression
    (Python accepted it, the database did not), else the error itself (the store is failing)."""
    if any(f.operator == "matches" for f in query.filters):
        return bad_request("the database rejected a pattern: use a simpler regular expression")
    return ApiError(503, "the audit log cannot be read right now: the store failed")


async def download(request: Request) -> Response:
    """Download audit logs as ``auditlogs_N.zip``: text files of 10,000 records each."""
    query = download_query(request.query_params)
    try:
        archive, _count = await build_zip(context_of(request).store, query)
    except PatternTooSlow as exc:
        raise bad_request(str(exc)) from None
    except DBAPIError:
        raise pattern_rejected(query) from None
    name = f"auditlogs_{int(time.time() * 1000)}.zip"
    return StreamingResponse(stream(archive), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


routes = [
    Route("/configurations/auditlogDestinationConfig", get_destination, methods=["GET"]),
    Route("/configurations/auditlogDestinationConfig", put_destination, methods=["PUT"]),
    Route("/apitransactions", download, methods=["GET"]),
]
