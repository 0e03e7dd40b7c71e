"""``/configurations/customContentTypes``: custom content type -> base type (JSON, XML, text).

The document is a flat JSON object such as ``{"application/myorg+json": "application/json"}``;
the base type must be one of ``application/json``, ``application/xml``, ``text/xml`` or
``text/plain``. PUT replaces the whole mapping."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError

DOCUMENT_ID = "customContentTypes"
BASE_TYPES = ("application/json", "application/xml", "text/xml", "text/plain")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
MAX_ENTRIES = 1000


async def get_custom_content_types(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        row = await tx.get("settings", DOCUMENT_ID)
    return json_response(row.body if row is not None else {})


def _validated(data: dict[str, object]) -> dict[str, str]:
    if len(data) > MAX_ENTRIES:
        raise ApiError(400, f"at most {MAX_ENTRIES} custom content types may be configured")
    out: dict[str, str] = {}
    for name, base in data.items():
        key = name.strip().lower()
        if not _MEDIA_TYPE.match(key):
            raise ApiError(400, f"field '{name}': not a content type (expected type/subtype)")
        if key in BASE_TYPES:
            raise ApiError(400, f"field '{name}': a base type cannot be mapped")
        if not isinstance(base, str) or base.strip().lower() not in BASE_TYPES:
            raise ApiError(400, f"field '{name}': the base type must be one of {', '.join(BASE_TYPES)}")
        out[key] = base.strip().lower()
    return out


async def put_custom_content_types(request: Request) -> Response:
    ctx = context_of(request)
    mapping = _validated(await read_object(request))
    async with ctx.store.transaction() as tx:
        await tx.upsert("settings", DOCUMENT_ID, mapping)
    ctx.notify_change()
    return json_response(mapping)


routes = [
    Route("/configurations/customContentTypes", get_custom_content_types, methods=["GET"]),
    Route("/configurations/customContentTypes", put_custom_content_types, methods=["PUT"]),
]
