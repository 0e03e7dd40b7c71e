"""The management app's error mapping, served by the real listener: an unexpected exception (a
bug, not an ApiError) is logged once with its traceback and answered a plain 500."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.requests import Request
from starlette.responses import Response

from portico.admin.context import context_of
from tests.gateway import RawClient, get
from tests.support.node import Node


async def broken(request: Request) -> Response:
    raise KeyError("secret-internal-detail")


async def broken_query(request: Request) -> Response:
    """A store error that is no busy store (those are 503): a real query on a missing table."""
    async with context_of(request).store.read() as tx:
        await tx.connection.execute(text("SELECT * FROM no_such_table"))
    return Response()


@pytest.mark.parametrize(
    ("endpoint", "error", "public"),
    [(broken, KeyError, False), (broken, KeyError, True), (broken_query, OperationalError, False),
     (broken_query, OperationalError, True)],
    ids=["management", "public", "management-store", "public-store"],
)
async def test_an_unexpected_error_is_one_logged_500_on_a_usable_connection(
    sqlite_node: Node, caplog: pytest.LogCaptureFixture, endpoint: Any, error: type[Exception], public: bool
) -> None:
    path = "/oauth2/broken" if public else "/rest/apigateway/broken"
    sqlite_node.mount(path if public else "/broken", endpoint, public=public)
    client = await RawClient.open(sqlite_node.portico.port)
    with caplog.at_level(logging.ERROR):
        answer = await client.request(get(path))
        assert answer.status == 500
        assert answer.header(b"content-type") == b"application/json"
        assert json.loads(answer.body) == {"errorDetails": "internal error"}  # nothing of the bug's insides
        # keep-alive: the same connection answers the next request
        assert answer.keep_alive
        assert (await client.request(get("/rest/apigateway/health"))).status == 200
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], error)]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert path in logged[0].getMessage()
    await client.close()
