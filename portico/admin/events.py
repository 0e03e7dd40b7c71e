"""``GET /transactionalEvents/_search`` and ``/_count`` (APIGatewayTransactionalEvent.json).

As in the reference, ``fromDate`` and ``toDate`` are mandatory and at least one
other criterion must be given. Dates are accepted as ``YYYY-MM-DD`` (the spec's
format, UTC; a bare ``toDate`` covers its whole day), epoch seconds (the spec's
other example, ``1488091324``: up to 10 digits), epoch milliseconds (more
digits) and ISO 8601 date-times (UTC when no offset is given)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portico.admin.context import context_of
from portico.admin.errors import bad_request
from portico.events.search import QUERY_SECONDS, ApiCount, EventFilter, QueryTooSlow, count_by_api, is_pattern, search

# Python and the database disagree on a few regular-expression constructs; the database's word is final.
REGEX_REJECTED = "the database rejected a name pattern: use a simpler regular expression"
TOO_SLOW = (f"the query took longer than {QUERY_SECONDS:g} s: narrow the time range (fromDate/toDate), "
            "or use a simpler name pattern")
DEFAULT_SIZE = 100
MAX_SIZE = 1000  # one page is serialised in memory; page through larger results with `from`

# Query parameter -> EventFilter field.
FILTER_PARAMS = {
    "apiId": "api_id",
    "apiName": "api_name",
    "apiVersion": "api_version",
    "applicationId": "application_id",
    "applicationName": "application_name",
    "packageId": "package_id",
    "packageName": "package_name",
    "planId": "plan_id",
    "planName": "plan_name",
}
# The parameters the reference documents as accepting regular expressions.
PATTERN_PARAMS = frozenset({"apiName", "applicationName", "packageName", "planName"})

INSUFFICIENT = (
    "Insufficient parameters. At least one parameter in addition to the creation date range must be provided."
)
_DAY_MS = 86_400_000
_MAX_SECONDS_DIGITS = 10  # 10 digits of seconds reach year 2286; ms need 13 digits after 2001
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z; beyond it the BIGINT comparison is meaningless


def parse_date(name: str, value: str, end_of_day: bool = False) -> int:
    """Epoch milliseconds of a date parameter; 400 naming ``name`` if it is not a date."""
    value = value.strip()
    if value.isdigit():
        number = int(value)
        ms = number * 1000 if len(value) <= _MAX_SECONDS_DIGITS else number
        if ms > _MAX_MS:
            raise bad_request(f"Invalid {name} {value!r}: after year 9999")
        return ms
    try:
        if len(value) == 10:  # YYYY-MM-DD
            day = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
            return _epoch_ms(day) + (_DAY_MS - 1 if end_of_day else 0)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(
            f"Invalid {name} {value!r}: expected YYYY-MM-DD, epoch milliseconds or an ISO 8601 date-time"
        ) from None
    return _epoch_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


_AGE = re.compile(r"^(\d{1,6})([dMy])$")
_AGE_MS = {"d": _DAY_MS, "M": 30 * _DAY_MS, "y": 365 * _DAY_MS}


def older_than(name: str, value: str, now_ms: int) -> int:
    """The epoch ms an age parameter reaches back to from ``now_ms``. Ages are written as the
    reference writes them: a number of days, months (30 days) or years (365 days), ``2d``, ``1M``,
    ``1y``; 400 naming ``name`` otherwise."""
    m = _AGE.match(value.strip())
    if not m:
        raise bad_request(f"{name} must be a number followed by d, M or y (e.g. 2d), got {value!r}")
    return now_ms - int(m.group(1)) * _AGE_MS[m.group(2)]


def _epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise bad_request(f"{name} is required (format YYYY-MM-DD)")
    return value


def parse_filter(params: Mapping[str, str]) -> EventFilter:
    """The query's criteria; 400 on a missing or bad date, a bad pattern, or no criterion at all."""
    from_date = parse_date("fromDate", _required(params, "fromDate"))
    to_date = parse_date("toDate", _required(params, "toDate"), end_of_day=True)
    if from_date > to_date:
        raise bad_request("fromDate must not be after toDate")
    criteria = {field: _criterion(params, name) for name, field in FILTER_PARAMS.items()}
    filters = EventFilter(from_date=from_date, to_date=to_date, **criteria)
    if not filters.has_criteria():
        raise bad_request(INSUFFICIENT)
    return filters


def _criterion(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name) or None  # an empty value means "not given"
    if value is not None and name in PATTERN_PARAMS and is_pattern(value):
        try:
            re.compile(f"^(?:{value})$")  # the form the store matches: inline flags must come first
        except re.error as exc:
            raise bad_request(f"Invalid {name} {value!r}: not a valid regular expression ({exc})") from None
    return value


def parse_paging(params: Mapping[str, str]) -> tuple[int, int]:
    """``(offset, limit)`` from ``from`` and ``size``."""
    offset = _non_negative_int(params, "from", 0)
    size = _non_negative_int(params, "size", DEFAULT_SIZE)
    if size > MAX_SIZE:
        raise bad_request(f"size must be at most {MAX_SIZE}; use from to page through results")
    return offset, size


def _non_negative_int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise bad_request(f"{name} must not be negative, got {value}")
    if value > 1_000_000_000:
        raise bad_request(f"{name} must be at most 1000000000, got {value}")
    return value


def _count_json(c: ApiCount) -> dict[str, object]:
    out: dict[str, object] = {"apiId": c.api_id, "apiName": c.api_name, "apiVersion": c.api_version}
    return {k: v for k, v in out.items() if v is not None} | {"count": c.count}


async def search_transactions(request: Request) -> JSONResponse:
    params = request.query_params
    filters = parse_filter(params)
    offset, limit = parse_paging(params)
    ctx = context_of(request)
    await ctx.events.catch_up()  # the writer batches events: include the calls just made
    try:
        found, _ = await search(ctx.store, filters, offset, limit, total=False)
    except QueryTooSlow:
        raise bad_request(TOO_SLOW) from None
    except DBAPIError:
        raise bad_request(REGEX_REJECTED) from None
    return JSONResponse({"transaction": found})


async def count_transactions(request: Request) -> JSONResponse:
    filters = parse_filter(request.query_params)
    ctx = context_of(request)
    await ctx.events.catch_up()
    try:
        counts = await count_by_api(ctx.store, filters)
    except QueryTooSlow:
        raise bad_request(TOO_SLOW) from None
    except DBAPIError:
        raise bad_request(REGEX_REJECTED) from None
    return JSONResponse({"count": [_count_json(c) for c in counts]})


routes: list[Route] = [
    Route("/transactionalEvents/_search", search_transactions, methods=["GET"]),
    Route("/transactionalEvents/_count", count_transactions, methods=["GET"]),
]
