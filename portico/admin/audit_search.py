"""The ``AUDIT_LOG`` type of ``POST /search``: the reference's scope entries as audit-log queries.

A scope entry is one of:

- ``{"attributeName": "creationDate", "range": {"since": "7d"}}``: the last 7 days (units s, m, h,
  d, w; the console's "last 2/7/30/60/90 days"), or ``"range": {"from": ..., "to": ...}`` with dates
  (``YYYY-MM-DD``, ISO 8601 date-times, epoch seconds or milliseconds); a date-only ``to`` covers its
  day. Ranges always narrow the result, whatever ``condition`` says;
- ``{"attributeName": "<field>", "keyword": "<regular expression>"}``: anchored match, as the
  reference's keyword scopes;
- Portico extension, the console's field/operator/value filter: ``{"attributeName": "user",
  "operator": "equals"|"notEquals"|"contains"|"startsWith"|"endsWith"|"matches", "keyword": "..."}``.

Keyword entries are combined by the request's ``condition`` (``and`` by default). A regular
expression that runs longer than ``audit.query.PATTERN_SECONDS`` over the log is stopped: 400 saying
the pattern took too long. Results are the
newest first unless ``sortByField`` / ``sortOrder`` say otherwise; ``size`` is at most
:data:`MAX_PAGE` (also when absent or -1): page with ``from``, or download for more."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from starlette.requests import Request

from portico.admin.audit import check_pattern, pattern_rejected
from portico.admin.context import context_of
from portico.admin.errors import bad_request
from portico.admin.events import parse_date
from portico.audit import query as audit_query
from portico.audit.query import FIELDS, OPERATORS, TEXT_FIELDS, AuditQuery, FieldFilter, PatternTooSlow
from portico.security import privileges as p

if TYPE_CHECKING:
    from portico.admin.search import SearchContext

MAX_PAGE = 10_000
_SINCE = re.compile(r"^(\d{1,9})([smhdw])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_SCOPE_KEYS = frozenset({"attributeName", "keyword", "operator", "range"})


def _date(name: str, value: Any, end_of_day: bool = False) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"range '{name}' must be a date, a date-time or epoch milliseconds, got {value!r}")
    return parse_date(f"range {name}", value, end_of_day=end_of_day)


def _range(entry: dict[str, Any], now_ms: int) -> tuple[int | None, int | None]:
    if entry.get("attributeName") != "creationDate":
        raise bad_request(f"a range applies to creationDate only, not {entry.get('attributeName')!r}")
    spec = entry["range"]
    if not isinstance(spec, dict) or not spec or set(spec) - {"since", "from", "to"}:
        raise bad_request("range must be an object with 'since', or 'from' and/or 'to'")
    if "since" in spec:
        if set(spec) != {"since"}:
            raise bad_request("range takes 'since' or 'from'/'to', not both")
        m = _SINCE.match(str(spec["since"]))
        if not m:
            raise bad_request(f"range 'since' must be a number and a unit of s, m, h, d, w (e.g. 7d), "
                              f"got {spec['since']!r}")
        return now_ms - int(m.group(1)) * _UNIT_MS[m.group(2)], None
    start = _date("from", spec["from"]) if spec.get("from") is not None else None
    end = _date("to", spec["to"], end_of_day=True) if spec.get("to") is not None else None
    if start is not None and end is not None and start > end:
        raise bad_request("range 'from' must not be after 'to'")
    return start, end


def _filter(entry: dict[str, Any]) -> FieldFilter:
    name = entry.get("attributeName")
    if name == "creationDate":
        raise bad_request("filter creationDate with a 'range' ({\"since\": \"7d\"} or {\"from\", \"to\"})")
    if name not in TEXT_FIELDS:
        raise bad_request(f"unknown audit-log field {name!r} in scope; fields: {list(FIELDS)}")
    keyword = entry.get("keyword")
    if isinstance(keyword, int | float) and not isinstance(keyword, bool):
        keyword = str(keyword)
    if not isinstance(keyword, str):
        raise bad_request(f"scope entry for {name!r} needs a 'keyword' (string) or a 'range'")
    operator = entry.get("operator", "matches")
    if operator not in OPERATORS:
        raise bad_request(f"unknown operator {operator!r} for {name!r}; operators: {list(OPERATORS)}")
    return FieldFilter(name, operator, check_pattern(name, keyword, operator))


def to_query(context: SearchContext, now_ms: int | None = None) -> AuditQuery:
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    start: int | None = None
    end: int | None = None
    filters: list[FieldFilter] = []
    for entry in context.scope:
        extra = sorted(set(entry) - _SCOPE_KEYS)
        if extra:
            raise bad_request(f"unsupported key(s) {extra} in a scope entry; keys: {sorted(_SCOPE_KEYS)}")
        if "range" in entry:
            low, high = _range(entry, now)
            start = low if start is None or (low is not None and low > start) else start
            end = high if end is None or (high is not None and high < end) else end
        else:
            filters.append(_filter(entry))
    fields = context.response_fields
    if not fields or "*" in fields:
        fields = tuple(FIELDS)
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise bad_request(f"unknown audit-log field(s) {unknown} in responseFields; fields: {list(FIELDS)}")
    sort_field = context.sort_field or "creationDate"
    if sort_field not in FIELDS:
        raise bad_request(f"cannot sort audit logs by {sort_field!r}; fields: {list(FIELDS)}")
    order = context.sort_order or ("DESC" if sort_field == "creationDate" else "ASC")
    size = MAX_PAGE if context.size is None else context.size
    if size > MAX_PAGE:
        raise bad_request(f"size must be at most {MAX_PAGE} for audit logs; page with 'from', or download "
                          "them (GET /apitransactions?eventType=auditlogs)")
    return AuditQuery(from_date=start, to_date=end, filters=tuple(filters),
                      condition="or" if context.condition == "or" else "and", sort_field=sort_field,
                      descending=order == "DESC", offset=context.offset, limit=size, fields=tuple(fields))


class AuditLogSearch:
    """``AUDIT_LOG`` in ``POST /search``."""

    privileges: tuple[str, ...] = (p.VIEW_ADMIN_CONFIG, p.MANAGE_GENERAL_CONFIG)

    async def search(self, request: Request, context: SearchContext) -> list[Any]:
        query = to_query(context)
        try:
            return await audit_query.search(context_of(request).store, query)
        except PatternTooSlow as exc:
            raise bad_request(str(exc)) from None
        except DBAPIError:
            raise pattern_rejected(query) from None

    async def count(self, request: Request, context: SearchContext) -> int:
        # As the reference: only types, scope and condition count here.
        bare = replace(context, response_fields=None, size=None, sort_field=None, sort_order=None)
        query = to_query(bare)
        try:
            return await audit_query.count(context_of(request).store, query)
        except PatternTooSlow as exc:
            raise bad_request(str(exc)) from None
        except DBAPIError:
            raise pattern_rejected(query) from None
