"""The ASGI bridge: the management app (Starlette) served by HttpServer for non-gateway paths."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from portico.gateway.asgi import Message, Receive, Scope, Send
from portico.gateway.http import Request, ResponseWriter
from portico.gateway.server import HttpServer
from tests.gateway import RawClient, chunked, get, post


async def item(request: StarletteRequest) -> JSONResponse:
    return JSONResponse(
        {"name": request.path_params["name"], "q": request.query_params.get("q"), "url": str(request.url)}
    )


async def echo_json(request: StarletteRequest) -> JSONResponse:
    return JSONResponse({"got": await request.json()}, status_code=201)


async def upload(request: StarletteRequest) -> JSONResponse:
    form = await request.form()
    upload = form["file"]
    assert not isinstance(upload, str)
    content = await upload.read()
    return JSONResponse({"field": form["note"], "filename": upload.filename, "size": len(content)})


async def stream(request: StarletteRequest) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"alpha ", b"beta ", b"gamma"):
            await asyncio.sleep(0.01)
            yield part

    return StreamingResponse(parts(), media_type="text/plain")


async def body_size(request: StarletteRequest) -> JSONResponse:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({"size": size})


async def fail(request: StarletteRequest) -> Response:
    raise RuntimeError("management bug")


APP = Starlette(
    routes=[
        Route("/items/{name}", item),
        Route("/json", echo_json, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/size", body_size, methods=["POST"]),
        Route("/fail", fail),
    ]
)


async def gateway_handler(request: Request, response: ResponseWriter) -> None:
    await response.respond(200, [], b"gateway")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Any], Awaitable[HttpServer]]]:
    servers: list[HttpServer] = []

    async def start(app: Any) -> HttpServer:
        server = HttpServer(gateway_handler, app)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.shutdown(1.0)


async def test_gateway_prefix_goes_to_handler_and_the_rest_to_the_app(serve: Any) -> None:
    server = await serve(APP)
    client = await RawClient.open(server.port)
    assert (await client.request(get("/gateway/anything"))).body == b"gateway"
    answer = await client.request(get("/items/caf%C3%A9?q=x%20y"))
    assert answer.status == 200
    assert json.loads(answer.body) == {"name": "café", "q": "x y", "url": "http://test/items/café?q=x%20y"}
    assert (await client.request(get("/nowhere"))).status == 404
    await client.close()


async def test_json_post(serve: Any) -> None:
    server = await serve(APP)
    client = await RawClient.open(server.port)
    answer = await client.request(post("/json", b'{"a": [1, 2]}', "content-type: application/json"))
    assert answer.status == 201 and json.loads(answer.body) == {"got": {"a": [1, 2]}}
    await client.close()


async def test_multipart_upload(serve: Any) -> None:
    server = await serve(APP)
    boundary = "portico-test-boundary"
    payload = b"\x00\x01binary" * 50000
    body = (
        (
            f'--{boundary}\r\ncontent-disposition: form-data; name="note"\r\n\r\nhello\r\n'
            f'--{boundary}\r\ncontent-disposition: form-data; name="file"; filename="blob.bin"\r\n'
            "content-type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    client = await RawClient.open(server.port)
    answer = await client.request(post("/upload", body, f"content-type: multipart/form-data; boundary={boundary}"))
    assert answer.status == 200, answer.body
    assert json.loads(answer.body) == {"field": "hello", "filename": "blob.bin", "size": len(payload)}
    await client.close()


async def test_streaming_response_is_chunked(serve: Any) -> None:
    server = await serve(APP)
    client = await RawClient.open(server.port)
    answer = await client.request(get("/stream"))
    assert answer.chunked and answer.body == b"alpha beta gamma"
    assert (await client.request(get("/stream"))).body == b"alpha beta gamma"  # still kept alive
    await client.close()


async def test_chunked_request_body_reaches_the_app_in_pieces(serve: Any) -> None:
    server = await serve(APP)
    client = await RawClient.open(server.port)
    head = b"POST /size HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
    answer = await client.request(head + chunked(b"a" * 1000, b"b" * 70000, b"c"))
    assert json.loads(answer.body) == {"size": 71001}
    await client.close()


async def test_app_exception_is_500(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    # Starlette answers 500 and re-raises for the server to log: one log, and the connection
    # stays usable after the complete answer.
    server = await serve(APP)
    client = await RawClient.open(server.port)
    with caplog.at_level(logging.ERROR):
        answer = await client.request(get("/fail"))
        assert answer.status == 500 and answer.keep_alive
        assert (await client.request(get("/items/x"))).status == 200
    assert len([r for r in caplog.records if r.exc_info and "management bug" in str(r.exc_info[1])]) == 1
    await client.close()


async def test_scope_and_disconnect(serve: Any) -> None:
    scopes: list[Scope] = []
    after: list[Message] = []

    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        first = await receive()
        await send({"type": "http.response.start", "status": 202, "headers": [(b"x-raw", b"1")]})
        await send({"type": "http.response.body", "body": first["body"]})
        after.append(await receive())  # the response is complete: the exchange is over

    server = await serve(raw_app)
    client = await RawClient.open(server.port)
    answer = await client.request(post("/raw/a%2Fb?x=1", b"payload", "x-h: v"))
    assert answer.status == 202 and answer.body == b"payload" and answer.header(b"x-raw") == b"1"
    scope = scopes[0]
    assert scope["type"] == "http" and scope["asgi"]["version"] == "3.0"
    assert scope["method"] == "POST" and scope["http_version"] == "1.1" and scope["scheme"] == "http"
    assert scope["path"] == "/raw/a/b" and scope["raw_path"] == b"/raw/a%2Fb"
    assert scope["query_string"] == b"x=1" and scope["root_path"] == ""
    assert (b"x-h", b"v") in scope["headers"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ("127.0.0.1", server.port)
    assert after == [{"type": "http.disconnect"}]
    await client.close()


async def test_client_disconnect_is_reported_to_a_waiting_app(serve: Any) -> None:
    disconnected = asyncio.Event()

    async def waits(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the (empty) body
        if (await receive())["type"] == "http.disconnect":
            disconnected.set()

    server = await serve(waits)
    client = await RawClient.open(server.port)
    client.send(get("/wait"))
    await asyncio.sleep(0.05)
    await client.close()
    await asyncio.wait_for(disconnected.wait(), 2.0)
