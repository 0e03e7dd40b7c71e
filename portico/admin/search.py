"""``POST /search`` and ``POST /search/_count`` (APIGatewaySearch.json).

The body is the reference's ``SearchContext``: ``types`` (its enum, any case), ``condition``,
``scope``, ``responseFields``, ``from``, ``size``, ``sortByField``, ``sortOrder``. The answer maps each
upper-case type to its results (``_count``: each type, as spelled, to a number). A type is searchable
when :data:`SEARCHABLE` has an implementation for it (today ``AUDIT_LOG``); the other types of the
enum answer 400 saying Portico does not search them yet. Each implementation declares the
functional privileges its results need, checked here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.audit_search import AuditLogSearch
from portico.admin.common import json_response, read_object
from portico.admin.errors import ApiError, bad_request
from portico.admin.team_search import ASSET_SEARCHES

# The reference's enum of SearchContext.types.
SEARCH_TYPES = frozenset({
    "USER", "GROUP", "USERS", "GROUPS", "ACCESSPROFILES", "LDAPGROUPS", "CDSGROUPS", "ASSERTION", "APPLICATION",
    "API", "REGISTERED_APPLICATION", "ALIAS", "POLICY", "POLICY_ACTION", "PLAN", "PACKAGE",
    "ADMINISTRATOR_SETTING", "PORTAL_GATEWAY", "CONTROL_PLANE", "OAUTH2_SCOPE_DATA", "OAUTH2_SCOPE",
    "SUBSCRIPTION", "API_DOCUMENT", "APPROVAL_CONFIGURATION", "OUTBOUND_PROXY", "PROXY_BYPASS", "URL_ALIAS",
    "KEYSTORE", "TRUSTSTORE", "KERBEROS_SETTING", "JNDI_PROVIDER_ALIAS", "JMS_CONNECTION_ALIAS", "JMS_TRIGGER",
    "WEB_SERVICE_ENDPOINT_ALIAS", "ACCESS_CONTROL_LIST", "RULE", "MICROGATEWAY_GROUPS", "GATEWAY_SCOPE",
    "OAUTH2MATERIALIZEDTOKEN", "TRANSACTION_EVENTS", "LIFECYCLE_EVENTS", "POLICYVIOLATION_EVENTS",
    "MONITOR_EVENTS", "ERROR_EVENTS", "THREATPROTECTION_EVENTS", "PERFORMANCE_METRICS", "QUOTA_USAGE",
    "DASHBOARD", "AUDIT_LOG", "REQUEST_RESPONSE_TRACE_SPANS", "APPLICATION_LOG", "MEDIATOR_TRACE_SPANS",
    "SERVER_LOG_TRACE_SPANS",
})
_FIELDS = frozenset({"types", "condition", "scope", "responseFields", "from", "size", "sortByField", "sortOrder"})
_MAX_FROM = 1_000_000_000
_UNSUPPORTED = frozenset({"aggregations", "deploymentFilter", "teamFilter"})


@dataclass(frozen=True, slots=True)
class SearchContext:
    """A validated request body. ``size`` is None when not given (or negative: "the default")."""

    types: tuple[str, ...]      # upper case, in the order given, without repeats
    spelled: tuple[str, ...]    # as the caller wrote them (the keys of a _count answer)
    condition: str              # "and" | "or"
    scope: tuple[dict[str, Any], ...]
    response_fields: tuple[str, ...] | None
    offset: int
    size: int | None
    sort_field: str | None
    sort_order: str | None      # "ASC" | "DESC"


class SearchType(Protocol):
    """One searchable type: the privileges its results need (one of them), search and count."""

    privileges: tuple[str, ...]

    async def search(self, request: Request, context: SearchContext) -> list[Any]: ...

    async def count(self, request: Request, context: SearchContext) -> int: ...


# API, APPLICATION, PACKAGE, PLAN: admin/team_search.py (only the assets the caller's teams see).
SEARCHABLE: dict[str, SearchType] = {"AUDIT_LOG": AuditLogSearch(), **ASSET_SEARCHES}


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"field '{key}' must be an integer, got {value!r}")
    return value


def _types(value: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) and t for t in value):
        raise bad_request("Mandatory field 'types' must be a non-empty list of type names, e.g. [\"AUDIT_LOG\"]")
    upper: list[str] = []
    spelled: list[str] = []
    for name in value:
        key = name.upper()
        if key not in SEARCH_TYPES:
            raise bad_request(f"unknown search type {name!r}")
        if key not in SEARCHABLE:
            raise bad_request(f"Portico does not search type {key} yet; searchable types: {sorted(SEARCHABLE)}")
        if key not in upper:
            upper.append(key)
            spelled.append(name)
    return tuple(upper), tuple(spelled)


def parse_context(data: dict[str, Any]) -> SearchContext:
    unknown = sorted(set(data) - _FIELDS - _UNSUPPORTED)
    if unknown:
        raise bad_request(f"unexpected field(s) {unknown} in the search request")
    for key in sorted(_UNSUPPORTED & set(data)):
        if data[key]:
            raise bad_request(f"field '{key}' is not supported by Portico's search")
    types, spelled = _types(data.get("types"))
    condition = data.get("condition", "and")
    if not isinstance(condition, str) or condition.lower() not in ("and", "or"):
        raise bad_request(f"field 'condition' must be 'and' or 'or', got {condition!r}")
    scope = data.get("scope") or []
    if not isinstance(scope, list) or not all(isinstance(s, dict) for s in scope):
        raise bad_request("field 'scope' must be a list of objects with 'attributeName' and 'keyword' or 'range'")
    fields = data.get("responseFields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise bad_request("field 'responseFields' must be a list of field names")
    sort_field = data.get("sortByField")
    if sort_field is not None and not isinstance(sort_field, str):
        raise bad_request("field 'sortByField' must be a field name")
    order = data.get("sortOrder")
    if order is not None and (not isinstance(order, str) or order.upper() not in ("ASC", "DESC")):
        raise bad_request(f"field 'sortOrder' must be ASC or DESC, got {order!r}")
    offset, size = _int(data, "from"), _int(data, "size")
    if offset is not None and offset > _MAX_FROM:
        raise bad_request(f"field 'from' must be at most {_MAX_FROM}")
    # As the reference: a negative from/size means the default.
    return SearchContext(
        types=types, spelled=spelled, condition=condition.lower(), scope=tuple(scope),
        response_fields=tuple(fields) if fields is not None else None,
        offset=max(offset or 0, 0), size=size if size is not None and size >= 0 else None,
        sort_field=sort_field or None, sort_order=order.upper() if order else None,
    )


def _check_privileges(request: Request, name: str, searcher: SearchType) -> None:
    principal = getattr(request.state, "principal", None)
    if principal is not None and not searcher.privileges:  # any signed-in user (assets: narrowed by teams)
        return
    if principal is None or not any(principal.holds(p) for p in searcher.privileges):
        names = " or ".join(f"'{p}'" for p in searcher.privileges)
        login = principal.login_id if principal is not None else "anonymous"
        raise ApiError(403, f"searching {name} needs the functional privilege {names}; user {login!r} lacks it")


async def search(request: Request) -> Response:
    """Search: results per type (the reference's SearchContext)."""
    context = parse_context(await read_object(request))
    result: dict[str, Any] = {}
    for name in context.types:
        searcher = SEARCHABLE[name]
        _check_privileges(request, name, searcher)
        result[name] = await searcher.search(request, context)
    return json_response(result)


async def count(request: Request) -> Response:
    """Count the records per type that a search would find (``from``/``size`` ignored)."""
    context = parse_context(await read_object(request))
    result: dict[str, int] = {}
    for name, spelled in zip(context.types, context.spelled, strict=True):
        searcher = SEARCHABLE[name]
        _check_privileges(request, name, searcher)
        result[spelled] = await searcher.count(request, context)
    return json_response(result)


routes = [
    Route("/search", search, methods=["POST"]),
    Route("/search/_count", count, methods=["POST"]),
]
