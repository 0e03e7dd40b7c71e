"""The ``API``, ``APPLICATION``, ``PACKAGE`` and ``PLAN`` types of ``POST /search`` (global search).

With team work on, a search returns only the assets the caller can see (the guide's "Global search
field" row). A scope entry is ``{"attributeName": "<field>", "keyword": "..."}`` with an optional
``operator`` (``matches``, the default: the keyword is a regular expression the whole value must
match, case-insensitive; ``equals``, ``contains``, ``startsWith``, ``endsWith``: case-insensitive
text). ``name`` also finds an API's ``apiName``; list fields (tags, teams) match when one item does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import regex
from starlette.requests import Request

from portico.admin.context import context_of
from portico.admin.errors import bad_request
from portico.admin.teams import only_visible
from portico.domain.api import Api
from portico.domain.application import Application
from portico.domain.package import Package, Plan
from portico.store import StoreTransaction
from portico.wire.apis import api_body
from portico.wire.applications import application_body
from portico.wire.packages import package_body, plan_body

if TYPE_CHECKING:
    from portico.admin.search import SearchContext

_TIMEOUT = 0.05
_OPERATORS = ("matches", "equals", "contains", "startsWith", "endsWith")
_SCOPE_KEYS = frozenset({"attributeName", "keyword", "operator"})


def _compile(keyword: str) -> Any:
    try:
        return regex.compile(keyword, regex.IGNORECASE)
    except regex.error as exc:
        raise bad_request(f"invalid pattern {keyword!r} in scope: {exc}") from None


def _matcher(entry: dict[str, Any]) -> tuple[str, Any]:
    extra = sorted(set(entry) - _SCOPE_KEYS)
    if extra:
        raise bad_request(f"unsupported key(s) {extra} in a scope entry; keys: {sorted(_SCOPE_KEYS)}")
    name, keyword = entry.get("attributeName"), entry.get("keyword")
    if not isinstance(name, str) or not name or not isinstance(keyword, str):
        raise bad_request("a scope entry needs 'attributeName' and 'keyword' (strings)")
    operator = entry.get("operator", "matches")
    if operator not in _OPERATORS:
        raise bad_request(f"unknown operator {operator!r}; operators: {list(_OPERATORS)}")
    if operator == "matches":
        pattern = _compile(keyword)

        def test(value: str) -> bool:
            try:
                return pattern.fullmatch(value, timeout=_TIMEOUT) is not None
            except TimeoutError:
                raise bad_request(f"pattern {keyword!r} takes too long; use a simpler one") from None
    else:
        wanted = keyword.lower()
        ops = {"equals": str.__eq__, "contains": str.__contains__, "startsWith": str.startswith,
               "endsWith": str.endswith}

        def test(value: str) -> bool:
            return bool(ops[operator](value.lower(), wanted))
    return name, test


def _values(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None and name == "name":
        value = body.get("apiName")
    items = value if isinstance(value, list) else [value]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in items
            if isinstance(v, str | int | float | bool)]


class AssetSearch:
    """One asset kind in ``POST /search``; results in the kind's wire shape."""

    # Any signed-in user may search assets, as they may list them; results are narrowed by teams.
    privileges: tuple[str, ...] = ()

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def _bodies(self, tx: StoreTransaction, request: Request) -> list[dict[str, Any]]:
        rows = await only_visible(request, tx, await tx.list(self.kind))
        if self.kind == "api":
            return [api_body(Api.model_validate(r.body)) for r in rows]
        if self.kind == "application":
            return [application_body(Application.model_validate(r.body)) for r in rows]
        if self.kind == "package":
            return [package_body(Package.model_validate(r.body)) for r in rows]
        packages = [Package.model_validate(r.body) for r in await tx.list("package")]
        return [plan_body(plan, [k.id for k in packages if plan.id in k.planIds])
                for plan in (Plan.model_validate(r.body) for r in rows)]

    async def _found(self, request: Request, context: SearchContext) -> list[dict[str, Any]]:
        matchers = [_matcher(dict(entry)) for entry in context.scope]
        async with context_of(request).store.read() as tx:
            bodies = await self._bodies(tx, request)

        def keep(body: dict[str, Any]) -> bool:
            if not matchers:
                return True
            hits = (any(test(v) for v in _values(body, name)) for name, test in matchers)
            return any(hits) if context.condition == "or" else all(hits)

        return [b for b in bodies if keep(b)]

    async def search(self, request: Request, context: SearchContext) -> list[Any]:
        found = await self._found(request, context)
        if context.sort_field:
            key = context.sort_field
            found.sort(key=lambda b: str(b.get(key, "")), reverse=context.sort_order == "DESC")
        page = found[context.offset:]
        if context.size is not None:
            page = page[:context.size]
        fields = context.response_fields
        if fields and "*" not in fields:
            page = [{f: b[f] for f in fields if f in b} for b in page]
        return page

    async def count(self, request: Request, context: SearchContext) -> int:
        return len(await self._found(request, context))


ASSET_SEARCHES: dict[str, AssetSearch] = {
    "API": AssetSearch("api"), "APPLICATION": AssetSearch("application"),
    "PACKAGE": AssetSearch("package"), "PLAN": AssetSearch("plan"),
}
