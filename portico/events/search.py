"""Reading transactional events back: filters, time range, paging, counts.

Filters on ids and versions are equalities on indexed columns. Name filters
(``apiName``, ``applicationName``, ``packageName``, ``planName``) accept a
regular expression as the webMethods API does (``API_.*``); a value with no
regex metacharacter stays a plain equality so it can use an index. Package and
plan names have no column of their own and are matched on the JSON body
(``json_extract`` on SQLite, ``::json ->>`` on PostgreSQL).

The table is indexed by time only (migration 0008: every index costs each gateway call), so the
other filters scan the requested time range. Every query runs under :data:`QUERY_SECONDS`
(``store/time_limit.py``) and raises :class:`QueryTooSlow` past it, rather than holding a
connection for minutes over a years-wide range; name patterns on SQLite run on the ``regex``
engine under the same deadline."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import JSON, Boolean, ColumnElement, and_, cast, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection

from portico.events.calls import wire_body
from portico.store import Store
from portico.store.tables import transaction_events as events
from portico.store.time_limit import QueryTooSlow, limited_connection

__all__ = ["QUERY_SECONDS", "ApiCount", "EventFilter", "QueryTooSlow", "count", "count_by_api", "search"]

QUERY_SECONDS = 10.0
_SQLITE_MATCH = "portico_event_matches"

_REGEX_CHARS = frozenset(".*+?[](){}|^$\\")
# What wire_body needs: call records store the values that have a column only there.
_WIRE_COLUMNS = (
    events.c.id, events.c.creation_date, events.c.api_id, events.c.api_name, events.c.api_version,
    events.c.application_id, events.c.application_name, events.c.package_id, events.c.plan_id,
    events.c.status, events.c.response_code, events.c.correlation_id, events.c.body,
)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Criteria of one query; ``None`` means "any". Dates are epoch ms, both inclusive."""

    from_date: int | None = None
    to_date: int | None = None
    api_id: str | None = None
    api_name: str | None = None
    api_version: str | None = None
    application_id: str | None = None
    application_name: str | None = None
    package_id: str | None = None
    package_name: str | None = None
    plan_id: str | None = None
    plan_name: str | None = None

    def has_criteria(self) -> bool:
        """Whether anything besides the date range is set."""
        return any(
            getattr(self, f.name) is not None for f in fields(self) if f.name not in ("from_date", "to_date")
        )


@dataclass(frozen=True, slots=True)
class ApiCount:
    api_id: str | None
    api_name: str | None
    api_version: str | None
    count: int


def is_pattern(value: str) -> bool:
    """Whether a name filter is a regular expression rather than a literal name."""
    return not _REGEX_CHARS.isdisjoint(value)


def _name_condition(store: Store, expr: ColumnElement[Any], value: str) -> ColumnElement[bool]:
    if not is_pattern(value):
        return expr == value
    # Anchored, like the Elasticsearch regexp query behind webMethods: "API_.*"
    # must not match "MY_API_1". The regex engine (SQLite, a full match) and
    # PostgreSQL AREs agree on this subset.
    if store.backend == "sqlite":
        return getattr(func, _SQLITE_MATCH)(expr, value, type_=Boolean)
    return expr.regexp_match(f"^(?:{value})$")


def _body_field(store: Store, key: str) -> ColumnElement[Any]:
    # body is Text. PostgreSQL needs a real cast to json before ->>; on SQLite a
    # CAST would apply numeric affinity, so only coerce the type (json_extract).
    body = cast(events.c.body, JSON) if store.backend == "postgresql" else type_coerce(events.c.body, JSON)
    return body[key].as_string()


def conditions(store: Store, f: EventFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.from_date is not None:
        where.append(events.c.creation_date >= f.from_date)
    if f.to_date is not None:
        where.append(events.c.creation_date <= f.to_date)
    for column, value in (
        (events.c.api_id, f.api_id),
        (events.c.api_version, f.api_version),
        (events.c.application_id, f.application_id),
        (events.c.package_id, f.package_id),
        (events.c.plan_id, f.plan_id),
    ):
        if value is not None:
            where.append(column == value)
    for expr, value in (
        (events.c.api_name, f.api_name),
        (events.c.application_name, f.application_name),
        (_body_field(store, "packageName"), f.package_name),
        (_body_field(store, "planName"), f.plan_name),
    ):
        if value is not None:
            where.append(_name_condition(store, expr, value))
    return where


async def search(
    store: Store, filters: EventFilter, offset: int = 0, limit: int = 100, total: bool = True
) -> tuple[list[dict[str, Any]], int | None]:
    """The matching events (wire form), newest first, and how many match in total (None when not
    asked for: counting scans the whole range again)."""
    where = and_(True, *conditions(store, filters))
    page = (
        select(*_WIRE_COLUMNS)
        .where(where)
        .order_by(events.c.creation_date.desc(), events.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    async with limited_connection(store, QUERY_SECONDS, match=_SQLITE_MATCH) as conn:
        rows = (await conn.execute(page)).all()
        matched = await _count(conn, where) if total else None
    return [wire_body(row) for row in rows], matched


async def count(store: Store, filters: EventFilter) -> int:
    async with limited_connection(store, QUERY_SECONDS, match=_SQLITE_MATCH) as conn:
        return await _count(conn, and_(True, *conditions(store, filters)))


async def _count(conn: AsyncConnection, where: ColumnElement[bool]) -> int:
    res = await conn.execute(select(func.count()).select_from(events).where(where))
    return int(res.scalar_one())


async def count_by_api(store: Store, filters: EventFilter) -> list[ApiCount]:
    """Matching events counted per API (id, name, version), as ``_count`` reports them."""
    key = (events.c.api_id, events.c.api_name, events.c.api_version)
    q = (
        select(*key, func.count().label("n"))
        .where(*conditions(store, filters))
        .group_by(*key)
        .order_by(events.c.api_name, events.c.api_version, events.c.api_id)
    )
    async with limited_connection(store, QUERY_SECONDS, match=_SQLITE_MATCH) as conn:
        rows = (await conn.execute(q)).all()
    return [ApiCount(r.api_id, r.api_name, r.api_version, int(r.n)) for r in rows]
