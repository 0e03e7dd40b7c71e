"""``/configurations/keystore``: the default keystore, key alias and truststore for inbound
connections (``keystoreName``, ``signingAlias``, ``truststoreName``) and for outbound connections
(``outboundKeystoreName``, ``outboundKeyAlias``, ``outboundTruststoreName``).

PUT changes the fields it names (``null`` or ``""`` clears one) and checks that every store and key
alias it names can be used (exists, loaded, a working key password, certificates in a truststore);
a 400 names the field."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.security.keystore.records import (
    DEFAULT_FIELDS,
    DEFAULTS_ID,
    DEFAULTS_KIND,
    KEYSTORE,
    TRUSTSTORE,
    read_defaults,
    store_problem,
)
from portico.store import StoreTransaction

_PAIRS = (("keystoreName", "signingAlias"), ("outboundKeystoreName", "outboundKeyAlias"))
_TRUSTSTORES = ("truststoreName", "outboundTruststoreName")


def _wire(values: dict[str, str | None]) -> dict[str, Any]:
    return {"configId": DEFAULTS_ID, **values}


async def get_keystore_config(request: Request) -> Response:
    """The default keystores and truststores."""
    async with context_of(request).store.read() as tx:
        return json_response(_wire(await read_defaults(tx)))


def _merged(current: dict[str, str | None], data: dict[str, Any]) -> dict[str, str | None]:
    unknown = sorted(set(data) - {*DEFAULT_FIELDS, "configId"})
    if unknown:
        raise ApiError(400, f"invalid property key(s) {unknown} in the request; expected {list(DEFAULT_FIELDS)}")
    if data.get("configId") not in (None, DEFAULTS_ID):
        raise ApiError(400, f"field 'configId' must be {DEFAULTS_ID!r}")
    out = dict(current)
    for key in DEFAULT_FIELDS:
        if key not in data:
            continue
        value = data[key]
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"field {key!r} must be a string or null")
        out[key] = value.strip() if value and value.strip() else None
    return out


async def _check(tx: StoreTransaction, values: dict[str, str | None], sent: set[str]) -> None:
    """Each store (and key alias) the request names must be usable: it exists, is loaded, its key
    alias has a working password, a truststore holds certificates. Defaults the request leaves
    alone are not judged again."""
    for store_field, alias_field in _PAIRS:
        store, alias = values[store_field], values[alias_field]
        if alias and not store:
            raise ApiError(400, f"field {alias_field!r} needs {store_field!r}: name the keystore holding the key")
        if not store or not {store_field, alias_field} & sent:
            continue
        problem = await store_problem(tx, KEYSTORE, store)
        if problem:
            raise ApiError(400, f"field {store_field!r}: {problem}")
        problem = await store_problem(tx, KEYSTORE, store, alias) if alias else None
        if problem:
            raise ApiError(400, f"field {alias_field!r}: {problem}")
    for store_field in _TRUSTSTORES:
        store = values[store_field]
        problem = await store_problem(tx, TRUSTSTORE, store) if store and store_field in sent else None
        if problem:
            raise ApiError(400, f"field {store_field!r}: {problem}")


async def put_keystore_config(request: Request) -> Response:
    """Set the default keystores and truststores."""
    ctx = context_of(request)
    data = await read_object(request)
    async with ctx.store.transaction() as tx:
        values = _merged(await read_defaults(tx), data)
        await _check(tx, values, set(data))
        await tx.upsert(DEFAULTS_KIND, DEFAULTS_ID, {k: v for k, v in values.items() if v})
    ctx.notify_change()
    return json_response(_wire(values))


routes = [
    Route("/configurations/keystore", get_keystore_config, methods=["GET"]),
    Route("/configurations/keystore", put_keystore_config, methods=["PUT"]),
]
