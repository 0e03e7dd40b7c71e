"""HttpServer on a real loopback socket, driven by a raw client."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from portico.gateway.http import BodyTooLarge, Request, ResponseWriter
from portico.gateway.server import HttpServer, ServerLimits
from tests.gateway import RawClient, chunked, get, post

Handler = Callable[[Request, ResponseWriter], Awaitable[None]]
JSON = [(b"content-type", b"application/json")]


async def echo(request: Request, response: ResponseWriter) -> None:
    """Answers with what it saw, as JSON; paths under /gateway/sleep/<ms> wait first."""
    if request.path.startswith("/gateway/sleep/"):
        await asyncio.sleep(int(request.path.rsplit("/", 1)[1]) / 1000)
    body = await request.body.read_all(1 << 20)
    seen = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "version": request.http_version,
        "chunked": request.chunked,
        "length": request.content_length,
        "body": body.decode(),
        "host": (request.header(b"host") or b"").decode(),
        "client": request.client_ip,
    }
    await response.respond(200, JSON, json.dumps(seen).encode())


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[HttpServer]]]:
    servers: list[HttpServer] = []

    async def start(handler: Handler = echo, limits: ServerLimits | None = None) -> HttpServer:
        server = HttpServer(handler, None, limits=limits or ServerLimits())
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.shutdown(1.0)


async def test_keep_alive_serves_several_requests_on_one_connection(
    serve: Callable[..., Awaitable[HttpServer]],
) -> None:
    server = await serve()
    client = await RawClient.open(server.port)
    first = await client.request(get("/gateway/a?x=1&y=%20"))
    second = await client.request(post("/gateway/b", b"hello"))
    assert first.status == second.status == 200
    assert json.loads(first.body) == {
        "method": "GET",
        "path": "/gateway/a",
        "query": "x=1&y=%20",
        "version": "1.1",
        "chunked": False,
        "length": None,
        "body": "",
        "host": "test",
        "client": "127.0.0.1",
    }
    assert json.loads(second.body)["body"] == "hello"
    assert first.keep_alive and second.keep_alive
    await client.close()


async def test_pipelined_requests_are_answered_in_order(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    server = await serve()
    client = await RawClient.open(server.port)
    # The first is the slowest: answers must still come back in request order.
    client.send(get("/gateway/sleep/80") + post("/gateway/sleep/10", b"two") + get("/gateway/three"))
    paths = [json.loads((await client.response()).body)["path"] for _ in range(3)]
    assert paths == ["/gateway/sleep/80", "/gateway/sleep/10", "/gateway/three"]
    await client.close()


async def test_methods_and_keep_alive_of_requests_sharing_a_read(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    # The method of a GET that starts a read is taken from the read; requests later in the same read
    # (and those of other methods) ask the parser; "connection: close" ends an HTTP/1.1 connection.
    server = await serve()
    client = await RawClient.open(server.port)
    client.send(get("/gateway/a") + b"DELETE /gateway/b HTTP/1.1\r\nhost: t\r\n\r\n" + get("/gateway/c")
                + post("/gateway/d", b"x") + get("/gateway/e", "connection: close"))
    answers = [await client.response() for _ in range(5)]
    assert [json.loads(a.body)["method"] for a in answers] == ["GET", "DELETE", "GET", "POST", "GET"]
    assert [a.keep_alive for a in answers] == [True, True, True, True, False]
    assert await client.closed_by_server()
    client = await RawClient.open(server.port)
    client.send(b"GETX /gateway/a HTTP/1.1\r\nhost: t\r\n\r\n")  # not a GET: the parser refuses it
    assert (await client.response()).status == 400
    await client.close()


async def test_version_of_a_get_whether_its_request_line_is_read_whole_or_not(
    serve: Callable[..., Awaitable[HttpServer]],
) -> None:
    # A GET's version is read from the read its head began with only when the whole request line
    # is there as the parser saw it; otherwise the parser says.
    server = await serve()
    client = await RawClient.open(server.port)
    kept = await client.request(get("/gateway/v10", "connection: keep-alive", version="1.0"))
    assert json.loads(kept.body)["version"] == "1.0"
    client.send(b"GET /gateway/spl")  # the request line split across reads
    await asyncio.sleep(0.05)
    client.send(b"it HTTP/1.1\r\nhost: t\r\n\r\n")
    split = await client.response()
    assert (json.loads(split.body)["path"], json.loads(split.body)["version"]) == ("/gateway/split", "1.1")
    client.send(b"GET /gateway/head-split HTTP/1.")
    await asyncio.sleep(0.05)
    client.send(b"0\r\nhost: t\r\nconnection: keep-alive\r\n\r\n")
    assert json.loads((await client.response()).body)["version"] == "1.0"
    absolute = await client.request(b"GET http://example.test/gateway/abs?q=1 HTTP/1.1\r\nhost: t\r\n\r\n")
    assert (json.loads(absolute.body)["path"], json.loads(absolute.body)["version"]) == ("/gateway/abs", "1.1")
    await client.close()


async def test_http10_closes_unless_keep_alive_asked(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    server = await serve()
    client = await RawClient.open(server.port)
    kept = await client.request(get("/gateway/a", "connection: keep-alive", version="1.0"))
    assert kept.header(b"connection") == b"keep-alive"
    closed = await client.request(get("/gateway/a", version="1.0"))
    assert closed.header(b"connection") == b"close"
    assert await client.closed_by_server()


async def test_chunked_request_body(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    server = await serve()
    client = await RawClient.open(server.port)
    head = b"POST /gateway/up HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n"
    answer = await client.request(head + chunked(b"hello ", b"chunked ", b"world"))
    seen = json.loads(answer.body)
    assert seen["chunked"] is True and seen["length"] is None
    assert seen["body"] == "hello chunked world"
    await client.close()


async def stream_three(request: Request, response: ResponseWriter) -> None:
    await response.start(200, [(b"content-type", b"text/plain")], None)
    for part in (b"one ", b"two ", b"three"):
        await response.write(part)
    await response.end()


async def test_unknown_length_response_is_chunked_for_http11(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    server = await serve(stream_three)
    client = await RawClient.open(server.port)
    answer = await client.request(get("/gateway/s"))
    assert answer.chunked and answer.body == b"one two three" and answer.keep_alive
    again = await client.request(get("/gateway/s"))  # the connection survived the chunked body
    assert again.body == b"one two three"
    await client.close()


async def test_unknown_length_response_is_close_delimited_for_http10(
    serve: Callable[..., Awaitable[HttpServer]],
) -> None:
    server = await serve(stream_three)
    client = await RawClient.open(server.port)
    client.send(get("/gateway/s", "connection: keep-alive", version="1.0"))
    raw = await asyncio.wait_for(client.reader.read(), 5)  # read() to EOF: the end of the body
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and b"connection: close" in head
    assert body == b"one two three"


async def test_head_response_has_no_body(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    async def sized(request: Request, response: ResponseWriter) -> None:
        await response.respond(200, [], b"x" * 10)

    server = await serve(sized)
    client = await RawClient.open(server.port)
    client.send(b"HEAD /gateway/h HTTP/1.1\r\nhost: t\r\n\r\n" + get("/gateway/g"))
    # A HEAD answer is parsed as having a body unless the parser is told; so read raw bytes.
    raw = b""
    while raw.count(b"HTTP/1.1 200") < 2 or not raw.endswith(b"x" * 10):
        raw += await asyncio.wait_for(client.reader.read(4096), 5)
    first, second = raw.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first.endswith(b"content-length: 10\r\n\r\n")
    assert second.endswith(b"\r\n\r\n" + b"x" * 10)
    await client.close()


async def test_expect_100_continue(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    server = await serve()
    client = await RawClient.open(server.port)
    client.send(b"POST /gateway/e HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
    interim = await client.response()
    assert interim.status == 100
    client.send(b"body")
    final = await client.response()
    assert final.status == 200 and json.loads(final.body)["body"] == "body"
    await client.close()


async def test_expect_100_continue_not_sent_when_body_is_ignored(
    serve: Callable[..., Awaitable[HttpServer]],
) -> None:
    async def reject(request: Request, response: ResponseWriter) -> None:
        await response.respond(413, JSON, b'{"errorDetails": "too big"}')

    server = await serve(reject)
    client = await RawClient.open(server.port)
    client.send(b"POST /gateway/e HTTP/1.1\r\nhost: t\r\ncontent-length: 400\r\nexpect: 100-continue\r\n\r\n")
    answer = await client.response()
    assert answer.status == 413
    assert await client.closed_by_server()  # the body may or may not follow: only closing is safe


async def test_malformed_request_line_is_400_and_closes(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    server = await serve()
    client = await RawClient.open(server.port)
    answer = await client.request(b"GARBAGE\x01 / HTTP/1.1\r\n\r\n")
    assert answer.status == 400
    assert "malformed" in json.loads(answer.body)["errorDetails"]
    assert await client.closed_by_server()


async def test_oversized_headers_are_431(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    server = await serve(limits=ServerLimits(max_header_bytes=4096))
    client = await RawClient.open(server.port)
    answer = await client.request(get("/gateway/x", "x-big: " + "a" * 8000))
    assert answer.status == 431
    assert json.loads(answer.body) == {"errorDetails": "request headers too large"}
    assert await client.closed_by_server()


async def test_headers_that_never_end_are_431_without_buffering_forever(
    serve: Callable[..., Awaitable[HttpServer]],
) -> None:
    server = await serve(limits=ServerLimits(max_header_bytes=4096))
    client = await RawClient.open(server.port)
    client.send(b"GET /gateway/x HTTP/1.1\r\nx-endless: ")
    for _ in range(10):
        client.send(b"a" * 1000)
    assert (await client.response()).status == 431


async def test_long_url_is_414(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    server = await serve(limits=ServerLimits(max_url_bytes=1024))
    client = await RawClient.open(server.port)
    answer = await client.request(get("/gateway/" + "a" * 2000))
    assert answer.status == 414
    assert await client.closed_by_server()


async def test_handler_exception_is_500_and_logged(
    serve: Callable[..., Awaitable[HttpServer]], caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: Request, response: ResponseWriter) -> None:
        if request.path == "/gateway/boom":
            raise ValueError("boom")
        await echo(request, response)

    server = await serve(broken)
    client = await RawClient.open(server.port)
    with caplog.at_level(logging.ERROR, logger="portico.gateway.server"):
        answer = await client.request(get("/gateway/boom"))
    assert answer.status == 500
    assert json.loads(answer.body) == {"errorDetails": "internal error"}
    assert any("boom" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert (await client.request(get("/gateway/fine"))).status == 200  # connection still usable
    await client.close()


async def test_handler_exception_after_a_complete_response_keeps_the_connection(
    serve: Callable[..., Awaitable[HttpServer]], caplog: pytest.LogCaptureFixture
) -> None:
    # The ASGI convention (Starlette's ServerErrorMiddleware): answer 500, then raise for the
    # server to log. The answer is complete, so it stands and the connection serves on.
    async def answered_then_raised(request: Request, response: ResponseWriter) -> None:
        if request.path == "/gateway/boom":
            await response.respond(500, JSON, b'{"errorDetails": "internal error"}')
            raise ValueError("boom")
        await echo(request, response)

    server = await serve(answered_then_raised)
    client = await RawClient.open(server.port)
    with caplog.at_level(logging.ERROR, logger="portico.gateway.server"):
        answer = await client.request(get("/gateway/boom"))
        assert answer.status == 500 and answer.keep_alive
        assert (await client.request(get("/gateway/fine"))).status == 200
    logged = [r for r in caplog.records if r.exc_info and "boom" in str(r.exc_info[1])]
    assert len(logged) == 1
    await client.close()


async def test_handler_exception_after_start_aborts(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    async def half(request: Request, response: ResponseWriter) -> None:
        await response.start(200, [], 100)
        await response.write(b"partial")
        raise ValueError("midway")

    server = await serve(half)
    client = await RawClient.open(server.port)
    client.send(get("/gateway/x"))
    with pytest.raises((EOFError, ConnectionError)):
        await client.response()


async def test_unread_small_body_is_discarded_and_connection_kept(
    serve: Callable[..., Awaitable[HttpServer]],
) -> None:
    async def ignore_body(request: Request, response: ResponseWriter) -> None:
        await response.respond(200, [], b"ignored")

    server = await serve(ignore_body)
    client = await RawClient.open(server.port)
    client.send(b"POST /gateway/x HTTP/1.1\r\nhost: t\r\ncontent-length: 300000\r\n\r\n")
    assert (await client.response()).body == b"ignored"
    client.send(b"z" * 300000)  # the rest arrives after the answer and must be skipped
    assert (await client.request(get("/gateway/y"))).body == b"ignored"
    await client.close()


async def test_read_all_limit(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    async def limited(request: Request, response: ResponseWriter) -> None:
        try:
            await request.body.read_all(10)
        except BodyTooLarge:
            await response.respond(413, [], b"")
            return
        await response.respond(200, [], b"")

    server = await serve(limited)
    client = await RawClient.open(server.port)
    assert (await client.request(post("/gateway/x", b"small"))).status == 200
    assert (await client.request(post("/gateway/x", b"far too large"))).status == 413
    await client.close()


async def test_idle_connection_times_out(serve: Callable[..., Awaitable[HttpServer]]) -> None:
    server = await serve(limits=ServerLimits(keepalive_timeout=0.5, header_timeout=0.5))
    idle = await RawClient.open(server.port)
    assert (await idle.request(get("/gateway/x"))).status == 200
    slow = await RawClient.open(server.port)
    slow.send(b"GET /gateway/x HTTP/1.1\r\nhost: t\r\n")  # a head that never ends (slowloris)
    assert await idle.closed_by_server(3.0)
    assert await slow.closed_by_server(3.0)


async def test_graceful_shutdown_waits_for_in_flight_request() -> None:
    server = HttpServer(echo, None)
    await server.start("127.0.0.1", 0)
    busy = await RawClient.open(server.port)
    idle = await RawClient.open(server.port)
    assert (await idle.request(get("/gateway/x"))).status == 200
    busy.send(get("/gateway/sleep/300"))
    await asyncio.sleep(0.05)
    shutdown = asyncio.create_task(server.shutdown(5.0))
    assert await idle.closed_by_server(1.0)  # idle keep-alive connections close at once
    answer = await busy.response()
    assert answer.status == 200 and answer.header(b"connection") == b"close"
    await asyncio.wait_for(shutdown, 2.0)
    with pytest.raises(OSError):
        await RawClient.open(server.port)


async def test_shutdown_cuts_requests_past_the_grace_period() -> None:
    # Past the grace period a request without an answer gets a 503 and a closed connection, an
    # answer under way is aborted; both handlers are cancelled and have ended when shutdown returns.
    ended: list[str] = []

    async def slow(request: Request, response: ResponseWriter) -> None:
        try:
            if request.path == "/gateway/streaming":
                await response.start(200, [], 100)
                await response.write(b"partial")
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.1)  # bookkeeping on the way out (the gateway records its event)
            ended.append(request.path)
            raise

    server = HttpServer(slow, None)
    await server.start("127.0.0.1", 0)
    waiting = await RawClient.open(server.port)
    waiting.send(get("/gateway/waiting"))
    streaming = await RawClient.open(server.port)
    streaming.send(get("/gateway/streaming"))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.shutdown(0.2), 2.0)
    assert sorted(ended) == ["/gateway/streaming", "/gateway/waiting"]
    answer = await waiting.response()
    assert answer.status == 503 and answer.header(b"connection") == b"close"
    assert json.loads(answer.body) == {"errorDetails": "the server is shutting down"}
    assert await waiting.closed_by_server()
    with pytest.raises((EOFError, ConnectionError)):
        await streaming.response()


async def test_shutdown_answer_reaches_a_client_still_uploading() -> None:
    # A client still sending its body when shutdown cuts the request must get the 503: closing
    # with its unread data would make the kernel reset the connection and the answer be lost.
    async def ignores_body(request: Request, response: ResponseWriter) -> None:
        await asyncio.sleep(10)

    server = HttpServer(ignores_body, None)
    await server.start("127.0.0.1", 0)
    head = b"POST /gateway/upload HTTP/1.1\r\nhost: test\r\ncontent-length: 100000000\r\n\r\n"
    client = await RawClient.open(server.port)
    deaf = await RawClient.open(server.port)  # never reads nor stops: shutdown must not wait on it

    async def upload(uploader: RawClient) -> None:  # a slow upload, still going well past the cut
        uploader.send(head)
        try:
            while True:
                uploader.send(b"x" * 16384)
                await uploader.writer.drain()
                await asyncio.sleep(0.02)
        except ConnectionError:
            pass

    uploads = [asyncio.create_task(upload(client)), asyncio.create_task(upload(deaf))]
    await asyncio.sleep(0.1)
    started = asyncio.get_running_loop().time()
    shutdown = asyncio.create_task(server.shutdown(0.2))
    await asyncio.sleep(0.5)  # the cut is at 0.2 s; the client keeps sending, then looks
    try:
        answer = await client.response(2.0)
        assert answer.status == 503 and answer.header(b"connection") == b"close"
        assert json.loads(answer.body) == {"errorDetails": "the server is shutting down"}
        await client.close()
        await asyncio.wait_for(shutdown, 3.0)  # the lingering close is bounded
        assert asyncio.get_running_loop().time() - started < 0.2 + 2.0 + 0.5
    finally:
        for task in uploads:
            task.cancel()
        await deaf.close()


async def test_send_hands_over_at_once_or_asks_to_wait_for_the_client(
    serve: Callable[..., Awaitable[HttpServer]],
) -> None:
    # send() is respond() without a coroutine: None once the whole answer is with the transport,
    # an awaitable while the client is not reading and the buffer is past its high-water mark.
    outcomes: list[bool] = []
    big = b"x" * (32 << 20)  # more than the loopback socket buffers hold

    async def handler(request: Request, response: ResponseWriter) -> None:
        waiting = response.send(200, [], big if request.path.endswith("/big") else b"small")
        outcomes.append(waiting is not None)
        if waiting is not None:
            await waiting

    server = await serve(handler)
    client = await RawClient.open(server.port)
    assert (await client.request(get("/gateway/small"))).body == b"small"
    client.send(get("/gateway/big"))
    for _ in range(100):
        if len(outcomes) == 2:
            break
        await asyncio.sleep(0.01)
    assert outcomes == [False, True]  # the client has read nothing of the big one yet
    assert len((await client.response(timeout=10)).body) == len(big)
    assert (await client.request(get("/gateway/small"))).body == b"small"
    await client.close()
