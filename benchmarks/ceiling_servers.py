#!/usr/bin/env python3
"""Two reference proxies for `ceiling.py`, not Portico: what Python itself allows on this machine.

    python3 ceiling_servers.py raw PORT     # asyncio + uvloop + httptools, nothing else
    python3 ceiling_servers.py layers PORT  # Portico's HTTP server and upstream pool, no gateway

Both answer any GET by fetching GET /json from the shared upstream (127.0.0.1:9000) over pooled
keep-alive connections. `raw` is the floor of a Python proxy: one task per request, no header
handling, no error handling; it is only fit for a benchmark. `layers` runs Portico's own
`HttpServer` and `UpstreamPool` with a handler that forwards the client's headers, so the
difference to `raw` is the cost of those layers and the difference to the full gateway is the cost
of the gateway's own work (resolution, policies, routing, transaction events).
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop

UPSTREAM = ("127.0.0.1", 9000)
REQUEST = b"GET /json HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n"


class _Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[bytes] | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        body, self.body = b"".join(self.body), []
        if waiter is not None and not waiter.done():
            waiter.set_result(body)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("upstream closed"))


_idle: list[_Upstream] = []
_tasks: set[asyncio.Future[None]] = set()


async def _fetch() -> bytes:
    loop = asyncio.get_running_loop()
    up = _idle.pop() if _idle else (await loop.create_connection(_Upstream, *UPSTREAM))[1]
    assert up.transport is not None
    up.waiter = loop.create_future()
    up.transport.write(REQUEST)
    body = await up.waiter
    _idle.append(up)
    return body


class _RawClient(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        task = asyncio.ensure_future(self._answer())
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    async def _answer(self) -> None:
        body = await _fetch()
        if self.transport is not None and not self.transport.is_closing():
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
            self.transport.write(head + body)


async def _serve_raw(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_RawClient, "127.0.0.1", port, backlog=4096)
    await server.serve_forever()


async def _serve_layers(port: int) -> None:
    from portico.gateway.http import Request, ResponseWriter
    from portico.gateway.proxy import relay_response
    from portico.gateway.server import HttpServer
    from portico.gateway.upstream import UpstreamPool

    pool = UpstreamPool()
    host = (b"host", b"127.0.0.1:9000")

    async def handler(req: Request, resp: ResponseWriter) -> None:
        headers = [item for item in req.headers if item[0] != b"host"]
        headers.append(host)
        up = await pool.request("GET", "http", *UPSTREAM, "/json", headers, None, 0, 5.0, 30.0)
        await relay_response(up, resp, False)

    server = HttpServer(handler, None, ("/",))
    await server.start("127.0.0.1", port)
    await asyncio.Event().wait()


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    serve = {"raw": _serve_raw, "layers": _serve_layers}[kind]
    uvloop.run(serve(port))


if __name__ == "__main__":
    main()
