"""``PUT /apis/{apiId}/mock/enable|disable``: answer an API from its definition's examples.

The flag is stored as ``mockService.enableMock`` on the API (the reference's GatewayAPI shape);
the gateway picks it up with the next snapshot (gateway/mock.py). ``retainDefaultMockResponses``
is accepted and checked (true/false): Portico derives mocked responses from the current
definition on every snapshot, so there are no stored default responses to retain or regenerate."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import teams
from portico.admin.api_assets import load_api, now_ms, save_api, versions_of
from portico.admin.common import bool_param, json_response
from portico.admin.context import context_of
from portico.wire.apis import api_response


async def _set_mock(request: Request, enabled: bool) -> Response:
    if enabled:
        bool_param(request, "retainDefaultMockResponses")  # 400 unless absent, true or false
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        api, revision = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
        api.mockService.enableMock = enabled
        api.lastModified = now_ms()
        await save_api(tx, api, revision)
        versions = await versions_of(tx, api.apiName)
    ctx.notify_change()
    return json_response(api_response(api, versions))


async def enable_mock(request: Request) -> Response:
    return await _set_mock(request, True)


async def disable_mock(request: Request) -> Response:
    return await _set_mock(request, False)


routes = [
    Route("/apis/{apiId}/mock/enable", enable_mock, methods=["PUT"]),
    Route("/apis/{apiId}/mock/disable", disable_mock, methods=["PUT"]),
]
