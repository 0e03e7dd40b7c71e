"""Reading the audit log back: time range, field filters, sorting, paging, and chunked export.

Records are returned in the guide's column names (:data:`FIELDS`). A filter compares one field with
one value: ``equals`` / ``notEquals`` (exact), ``contains`` / ``startsWith`` / ``endsWith`` (case
ignored), or ``matches``: an anchored regular expression, as the reference's Elasticsearch
``keyword`` scopes are ("Create|Update" matches either action, "API" does not match "APIs").

A pattern may take exponential time on some rows (``(a|aa)+b``), and failed logins let anyone put
text in the log. A query with ``matches`` therefore runs under a time limit,
:data:`PATTERN_SECONDS` per statement (``store/time_limit.py``: on SQLite the match is our
function on the ``regex`` engine, not Python's ``re``, which cannot be stopped). Past the limit the
query raises :class:`PatternTooSlow`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Boolean, ColumnElement, Select, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from portico.store import Store
from portico.store.tables import audit_log
from portico.store.time_limit import QueryTooSlow, limited_connection

PATTERN_SECONDS = 2.0
_SQLITE_MATCH = "portico_matches"

# Wire name -> column.
FIELDS: dict[str, Any] = {
    "id": audit_log.c.id,
    "eventType": audit_log.c.event_type,
    "creationDate": audit_log.c.creation_date,
    "objectType": audit_log.c.object_type,
    "action": audit_log.c.action,
    "object": audit_log.c.object,
    "message": audit_log.c.message,
    "user": audit_log.c.user,
    "sourceMachine": audit_log.c.source_machine,
    "clientIPAddress": audit_log.c.client_ip,
}
TEXT_FIELDS = tuple(name for name in FIELDS if name != "creationDate")
OPERATORS = ("equals", "notEquals", "contains", "startsWith", "endsWith", "matches")
Operator = Literal["equals", "notEquals", "contains", "startsWith", "endsWith", "matches"]


@dataclass(frozen=True, slots=True)
class FieldFilter:
    field: str     # a name of TEXT_FIELDS
    operator: str  # one of OPERATORS
    value: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """One query. Dates are epoch ms, both inclusive; the time range is always ANDed with the
    filters, which are combined by ``condition``."""

    from_date: int | None = None
    to_date: int | None = None
    filters: tuple[FieldFilter, ...] = ()
    condition: Literal["and", "or"] = "and"
    sort_field: str = "creationDate"
    descending: bool = True
    offset: int = 0
    limit: int = 100
    fields: tuple[str, ...] = field(default=tuple(FIELDS))


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class PatternTooSlow(Exception):
    """A ``matches`` filter ran past :data:`PATTERN_SECONDS`."""


def _condition(f: FieldFilter, backend: str) -> ColumnElement[bool]:
    column = FIELDS[f.field]
    if f.operator == "equals":
        return column == f.value
    if f.operator == "notEquals":
        return column != f.value
    if f.operator == "matches":
        if backend == "sqlite":
            return getattr(func, _SQLITE_MATCH)(column, f.value, type_=Boolean)
        return column.regexp_match(f"^(?:{f.value})$")
    pattern = {"contains": "%{}%", "startsWith": "{}%", "endsWith": "%{}"}[f.operator].format(_escape_like(f.value))
    return column.ilike(pattern, escape="\\")


def where(query: AuditQuery, backend: str = "postgresql") -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if query.from_date is not None:
        parts.append(audit_log.c.creation_date >= query.from_date)
    if query.to_date is not None:
        parts.append(audit_log.c.creation_date <= query.to_date)
    if query.filters:
        combine = and_ if query.condition == "and" else or_
        parts.append(combine(*(_condition(f, backend) for f in query.filters)))
    return and_(True, *parts)


def wire(row: Any, fields: tuple[str, ...] = tuple(FIELDS)) -> dict[str, Any]:
    """One record in the guide's column names."""
    mapping = row._mapping
    return {name: mapping[FIELDS[name].name] for name in fields}


def _ordered(q: Select[Any], query: AuditQuery) -> Select[Any]:
    column = FIELDS[query.sort_field]
    if query.descending:
        return q.order_by(column.desc(), audit_log.c.id.desc())
    return q.order_by(column.asc(), audit_log.c.id.asc())


@asynccontextmanager
async def _connection(store: Store, query: AuditQuery) -> AsyncIterator[AsyncConnection]:
    """A read connection; with a ``matches`` filter, its statements run under the time limit."""
    if not any(f.operator == "matches" for f in query.filters):
        async with store.read_engine.connect() as conn:
            yield conn
        return
    try:
        async with limited_connection(store, PATTERN_SECONDS, match=_SQLITE_MATCH) as conn:
            yield conn
    except QueryTooSlow:
        raise PatternTooSlow(f"the pattern took longer than {PATTERN_SECONDS:g} s over the audit log; "
                             "use a simpler regular expression or narrow the time range") from None


async def search(store: Store, query: AuditQuery) -> list[dict[str, Any]]:
    q = _ordered(select(audit_log).where(where(query, store.backend)), query).offset(query.offset).limit(query.limit)
    async with _connection(store, query) as conn:
        rows = (await conn.execute(q)).all()
    return [wire(r, query.fields) for r in rows]


async def count(store: Store, query: AuditQuery) -> int:
    async with _connection(store, query) as conn:
        res = await conn.execute(select(func.count()).select_from(audit_log).where(where(query, store.backend)))
        return int(res.scalar_one())


async def chunks(store: Store, query: AuditQuery, size: int = 2000) -> AsyncIterator[list[dict[str, Any]]]:
    """Every matching record, oldest first, ``size`` at a time (keyset paging: no OFFSET scans); each
    chunk's statement has its own time limit."""
    condition = where(query, store.backend)
    after: tuple[int, str] | None = None
    while True:
        q = select(audit_log).where(condition)
        if after is not None:
            q = q.where(tuple_(audit_log.c.creation_date, audit_log.c.id) > tuple_(*after))
        q = q.order_by(audit_log.c.creation_date.asc(), audit_log.c.id.asc()).limit(size)
        async with _connection(store, query) as conn:
            rows = (await conn.execute(q)).all()
        if not rows:
            return
        yield [wire(r) for r in rows]
        if len(rows) < size:
            return
        after = (rows[-1].creation_date, rows[-1].id)
