"""UpstreamPool against real loopback upstreams: well-behaved ones (HttpServer) and broken ones."""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import socket
import ssl
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from portico.gateway.http import ClientDisconnected, Request, ResponseWriter
from portico.gateway.server import HttpServer
from portico.gateway.upstream import (
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamPool,
    UpstreamTimeout,
)
from tests.gateway import RawClient

MB = 1024 * 1024
CHUNK = b"x" * 65536
JSON = [(b"content-type", b"application/json")]


async def upstream_app(request: Request, response: ResponseWriter) -> None:
    """A native service: /echo answers what it saw, /count counts the body, /big/<n> streams n MiB."""
    kind = request.path.split("/")[1]
    if kind == "count":
        await asyncio.sleep(0.3)  # a slow consumer: without flow control the gateway would buffer
        size = 0
        async for chunk in request.body:
            size += len(chunk)
        await response.respond(200, JSON, json.dumps({"size": size, "chunked": request.chunked}).encode())
    elif kind == "big":
        total = int(request.path.split("/")[2]) * MB
        await response.start(200, [], total if request.query != "chunked" else None)
        for _ in range(total // len(CHUNK)):
            await response.write(CHUNK)
        await response.end()
    elif kind == "stream":
        await response.start(200, [], None)
        for part in (b"a", b"bb", b"ccc"):
            await response.write(part)
        await response.end()
    else:
        body = await request.body.read_all(MB)
        seen = {
            "method": request.method,
            "target": request.path + ("?" + request.query if request.query else ""),
            "headers": [[n.decode(), v.decode()] for n, v in request.headers],
            "body": body.decode(),
            "chunked": request.chunked,
            "port": request.client_port,
        }
        await response.respond(200, JSON, json.dumps(seen).encode())


@pytest.fixture
async def upstream() -> AsyncIterator[HttpServer]:
    server = HttpServer(upstream_app, None, gateway_prefixes=("/",))
    await server.start("127.0.0.1", 0)
    yield server
    await server.shutdown(1.0)


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    pool = UpstreamPool(max_idle_per_host=4)
    yield pool
    await pool.close()


async def call(
    pool: UpstreamPool,
    port: int,
    target: str,
    method: str = "GET",
    body: bytes | AsyncIterator[bytes] | None = None,
    content_length: int | None = None,
    read_timeout: float = 5.0,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, bytes]:
    up = await pool.request(
        method, "http", "127.0.0.1", port, target, headers or [], body, content_length, 2.0, read_timeout
    )
    return up.status, await up.read_all(10 * MB)


async def test_requests_reuse_a_pooled_connection(upstream: HttpServer, pool: UpstreamPool) -> None:
    status, first = await call(pool, upstream.port, "/echo/a?q=1", headers=[(b"x-test", b"1")])
    _, second = await call(pool, upstream.port, "/echo/b")
    assert status == 200
    seen = json.loads(first)
    assert seen["target"] == "/echo/a?q=1"
    assert ["host", f"127.0.0.1:{upstream.port}"] in seen["headers"]
    assert ["x-test", "1"] in seen["headers"]
    assert json.loads(second)["port"] == seen["port"]  # same client port: same connection


async def test_bodies_bytes_known_length_and_chunked(upstream: HttpServer, pool: UpstreamPool) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two ", b"three"):
            yield part

    _, sent = await call(pool, upstream.port, "/echo/x", "POST", b"plain bytes")
    assert json.loads(sent)["body"] == "plain bytes"
    _, sized = await call(pool, upstream.port, "/echo/x", "PUT", parts(), content_length=13)
    assert json.loads(sized)["body"] == "one two three" and not json.loads(sized)["chunked"]
    _, streamed = await call(pool, upstream.port, "/echo/x", "POST", parts())
    assert json.loads(streamed)["body"] == "one two three" and json.loads(streamed)["chunked"]


async def test_chunked_response_is_dechunked(upstream: HttpServer, pool: UpstreamPool) -> None:
    up = await pool.request("GET", "http", "127.0.0.1", upstream.port, "/stream", [], None, None, 2.0, 5.0)
    assert up.chunked and up.content_length is None
    assert [chunk async for chunk in up] == [b"a", b"bb", b"ccc"]
    _, again = await call(pool, upstream.port, "/echo/x")  # the connection went back to the pool
    assert json.loads(again)["method"] == "GET"


async def test_head_response_leaves_connection_reusable(upstream: HttpServer, pool: UpstreamPool) -> None:
    up = await pool.request("HEAD", "http", "127.0.0.1", upstream.port, "/big/1", [], None, None, 2.0, 5.0)
    assert up.status == 200 and up.content_length == MB
    assert await up.read_all(10) == b""
    _, after = await call(pool, upstream.port, "/echo/x")
    assert json.loads(after)["method"] == "GET"


async def test_refused_connection() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        pool = UpstreamPool()
        with pytest.raises(UpstreamConnectError):
            await pool.request("GET", "http", "127.0.0.1", port, "/", [], None, None, 2.0, 2.0)
        await pool.close()


async def raw_upstream(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> int:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    return port


async def test_upstream_that_never_answers_times_out(pool: UpstreamPool) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    port = await raw_upstream(silent)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await pool.request("GET", "http", "127.0.0.1", port, "/", [], None, None, 2.0, 0.3)
    assert caught.value.phase == "read"
    assert 0.25 < time.monotonic() - started < 1.5


async def test_read_timeout_never_fires_early(pool: UpstreamPool) -> None:
    # The timeout is armed from the sweep's clock, which lags the loop's by up to a sweep interval:
    # an answer a little before the timeout must still get through, on fresh and pooled connections.
    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            await asyncio.sleep(0.4)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    port = await raw_upstream(late)
    for _ in range(3):
        await asyncio.sleep(0.07)  # land at different points of the sweep's interval
        started = time.monotonic()
        up = await pool.request("GET", "http", "127.0.0.1", port, "/", [], None, None, 2.0, 0.5)
        assert (up.status, await up.read_all(10)) == (200, b"ok")
        assert time.monotonic() - started >= 0.4


async def test_read_timeout_between_body_chunks(pool: UpstreamPool) -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst")
        await asyncio.sleep(10)

    port = await raw_upstream(stalls)
    up = await pool.request("GET", "http", "127.0.0.1", port, "/", [], None, None, 2.0, 0.3)
    with pytest.raises(UpstreamTimeout):
        await up.read_all(1000)


async def test_upstream_closing_mid_body(pool: UpstreamPool) -> None:
    async def truncates(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    port = await raw_upstream(truncates)
    up = await pool.request("GET", "http", "127.0.0.1", port, "/", [], None, None, 2.0, 2.0)
    with pytest.raises(UpstreamClosed):
        async for _ in up:
            pass


async def test_upstream_closing_before_answering(pool: UpstreamPool) -> None:
    async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    port = await raw_upstream(hangs_up)
    with pytest.raises(UpstreamClosed):
        await pool.request("GET", "http", "127.0.0.1", port, "/", [], None, None, 2.0, 2.0)


def stale_after_first(
    connections: list[int],
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """An upstream that answers one request per connection with keep-alive, then drops the next
    request unanswered: what a pooled connection looks like when the upstream timed it out."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    return handle


async def test_stale_pooled_connection_is_retried_for_idempotent_requests(pool: UpstreamPool) -> None:
    connections: list[int] = []
    port = await raw_upstream(stale_after_first(connections))
    assert await call(pool, port, "/") == (200, b"ok")
    assert await call(pool, port, "/") == (200, b"ok")  # stale, then retried on a new connection
    assert len(connections) == 2


async def test_stale_pooled_connection_is_not_retried_after_a_post_body(pool: UpstreamPool) -> None:
    connections: list[int] = []
    port = await raw_upstream(stale_after_first(connections))
    assert await call(pool, port, "/") == (200, b"ok")
    with pytest.raises(UpstreamClosed):
        await call(pool, port, "/", "POST", b"not safe to send twice")
    assert len(connections) == 1


async def test_unread_body_closes_instead_of_pooling(upstream: HttpServer, pool: UpstreamPool) -> None:
    up = await pool.request("GET", "http", "127.0.0.1", upstream.port, "/big/1", [], None, None, 2.0, 5.0)
    first_port = None
    await up.aclose()
    _, seen = await call(pool, upstream.port, "/echo/x")
    first_port = json.loads(seen)["port"]
    _, again = await call(pool, upstream.port, "/echo/x")
    assert json.loads(again)["port"] == first_port  # the new one is pooled, the aborted one was not


def self_signed(tmp: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_with_caller_supplied_context(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecure")
        await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    default_pool = UpstreamPool()
    with pytest.raises(UpstreamConnectError):  # the default context verifies: self-signed fails
        await default_pool.request("GET", "https", "localhost", port, "/", [], None, None, 2.0, 2.0)
    trusting = UpstreamPool(ssl_context_factory=lambda host, port: ssl.create_default_context(cafile=str(cert)))
    up = await trusting.request("GET", "https", "localhost", port, "/", [], None, None, 2.0, 2.0)
    assert await up.read_all(100) == b"secure"
    await default_pool.close()
    await trusting.close()
    server.close()


# -- a gateway piping 100 MB through server + pool, both directions ------------------------------


@pytest.fixture
async def gateway(upstream: HttpServer) -> AsyncIterator[HttpServer]:
    pool = UpstreamPool()

    async def proxy(request: Request, response: ResponseWriter) -> None:
        body = request.body if request.body.has_body else None
        up = await pool.request(
            request.method, "http", "127.0.0.1", upstream.port,
            request.path.removeprefix("/gateway") + ("?" + request.query if request.query else ""),
            [], body, request.content_length, 2.0, 10.0,
        )  # fmt: skip
        await response.start(up.status, [], up.content_length)
        async for chunk in up:
            await response.write(chunk)
        await response.end()

    server = HttpServer(proxy, None)
    await server.start("127.0.0.1", 0)
    yield server
    await server.shutdown(1.0)
    await pool.close()


async def test_100mb_upload_streams_with_flat_memory(gateway: HttpServer) -> None:
    total = 100 * MB
    tracemalloc.start()
    try:
        client = await RawClient.open(gateway.port)
        client.send(b"PUT /gateway/count/x HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % total)
        for _ in range(total // len(CHUNK)):
            client.send(CHUNK)
            await client.writer.drain()
        answer = await client.response(30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert json.loads(answer.body) == {"size": total, "chunked": False}
    print(f"peak {peak / MB:.1f} MiB")
    assert peak < 20 * MB, f"peak {peak / MB:.1f} MiB"
    await client.close()


async def test_100mb_chunked_download_streams_with_flat_memory(gateway: HttpServer) -> None:
    tracemalloc.start()
    try:
        client = await RawClient.open(gateway.port, keep_body=False)
        client.send(b"GET /gateway/big/100?chunked HTTP/1.1\r\nhost: t\r\n\r\n")
        await asyncio.sleep(0.3)  # a slow client: without flow control the gateway would buffer
        answer = await client.response(30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 200 and answer.chunked
    assert answer.body_size == 100 * MB
    print(f"peak {peak / MB:.1f} MiB")
    assert peak < 20 * MB, f"peak {peak / MB:.1f} MiB"
    await client.close()


async def test_a_small_answer_arrives_whole_and_a_big_one_streams(upstream: HttpServer, pool: UpstreamPool) -> None:
    small = await pool.request("GET", "http", "127.0.0.1", upstream.port, "/echo/s", [], None, None, 2.0, 5.0)
    body = small.whole_body()  # arrived with the head: no reader, connection released
    assert body is not None and json.loads(body)["target"] == "/echo/s"
    assert small.whole_body() == b""  # consumed
    _, again = await call(pool, upstream.port, "/echo/t")
    assert json.loads(again)["port"] == json.loads(body)["port"]  # the connection went back to the pool
    big = await pool.request("GET", "http", "127.0.0.1", upstream.port, "/big/2", [], None, None, 2.0, 5.0)
    assert big.whole_body() is None  # 2 MiB do not come with the head: it streams
    size = 0
    async for chunk in big:
        size += len(chunk)
    assert size == 2 * MB


async def test_unread_whole_answer_still_pools_its_connection(upstream: HttpServer, pool: UpstreamPool) -> None:
    first = await pool.request("GET", "http", "127.0.0.1", upstream.port, "/echo/u", [], None, None, 2.0, 5.0)
    await first.aclose()  # the body is all here, unread: the connection is still fine to reuse
    _, seen = await call(pool, upstream.port, "/echo/v")
    _, again = await call(pool, upstream.port, "/echo/w")
    assert json.loads(seen)["port"] == json.loads(again)["port"]
    assert len(pool._connections) == 1


async def test_request_body_failing_mid_stream_leaves_no_unretrieved_future(
    upstream: HttpServer, pool: UpstreamPool, caplog: pytest.LogCaptureFixture
) -> None:
    """A client gone mid-upload (its body stream raises): the exchange is abandoned without
    asyncio logging "Future exception was never retrieved" for the head nobody waits for any more
    (one ERROR per abandoned upload under load)."""

    async def client_leaves() -> AsyncIterator[bytes]:
        yield CHUNK
        raise ClientDisconnected("client disconnected")

    for _ in range(3):
        with pytest.raises(ClientDisconnected):
            await pool.request("POST", "http", "127.0.0.1", upstream.port, "/count", [], client_leaves(),
                               None, 2.0, 5.0)
    await asyncio.sleep(0.2)  # the aborted connections are lost
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
    status, _ = await call(pool, upstream.port, "/echo")
    assert status == 200
