"""A minimal ASGI 3 bridge: runs an ASGI app (the management API) as a gateway handler.

Only the ``http`` scope is supported (no lifespan, no websocket). The request body is delivered in
chunks as it arrives; the response may be streamed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from portico.gateway.http import ClientDisconnected, Request, ResponseWriter

__all__ = ["ASGIApp", "AsgiBridge"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ASGI = {"version": "3.0", "spec_version": "2.3"}
# The writer owns framing; an app's own framing headers would contradict it.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})
_READ_ALL = 1 << 62  # "no limit" for read_all: the ASGI app applies its own limits


class AsgiBridge:
    """``async bridge(request, response)`` runs ``app`` for one request.

    ``server`` is reported in the scope as the (host, port) the request was received on.
    """

    def __init__(self, app: ASGIApp, root_path: str = "", server: tuple[str, int] | None = None) -> None:
        self.app = app
        self.root_path = root_path
        self.server = server

    async def __call__(self, request: Request, response: ResponseWriter) -> None:
        raw_path = request.path.encode("latin-1")
        scope: Scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": request.http_version,
            "method": request.method,
            "scheme": request.scheme,
            "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
            "raw_path": raw_path,
            "query_string": request.query.encode("latin-1"),
            "root_path": self.root_path,
            "headers": request.headers,
            "client": (request.client_ip, request.client_port),
            "server": self.server,
        }
        exchange = _Exchange(request, response)
        await self.app(scope, exchange.receive, exchange.send)
        await exchange.finish()


class _Exchange:
    """The ``receive``/``send`` pair of one ASGI request."""

    __slots__ = ("_body_done", "_content_length", "_done", "_headers", "_request", "_response", "_status")

    def __init__(self, request: Request, response: ResponseWriter) -> None:
        self._request = request
        self._response = response
        self._body_done = False
        self._status: int | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._content_length: int | None = None
        self._done = False  # the last body message was sent

    async def receive(self) -> Message:
        """Body chunks (``more_body`` until the last), then ``http.disconnect`` once the client is
        gone or the response is complete."""
        if not self._body_done:
            body = self._request.body
            try:
                if body.complete:
                    self._body_done = True
                    return {
                        "type": "http.request",
                        "body": await body.read_all(_READ_ALL),
                        "more_body": False,
                    }
                chunk = await body.__anext__()
            except StopAsyncIteration:
                self._body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            except ClientDisconnected:
                self._body_done = True
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": True}
        if not self._done:
            await self._response.wait_disconnected()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self._status is not None or self._response.started:
                raise RuntimeError("http.response.start sent twice")
            self._status = int(message["status"])
            self._take_headers(message.get("headers", ()))
        elif kind == "http.response.body":
            await self._send_body(message.get("body", b""), bool(message.get("more_body", False)))

    def _take_headers(self, raw: Any) -> None:
        headers = self._headers
        for name, value in raw:
            name = bytes(name).lower()
            if name in _FRAMING:
                if name == b"content-length":
                    self._content_length = int(value)
                continue
            headers.append((name, bytes(value)))

    async def _send_body(self, body: bytes, more_body: bool) -> None:
        response = self._response
        status = self._status
        if status is not None:  # first body message: the head is still ours to send
            self._status = None
            declared = self._content_length
            if not more_body and (declared is None or declared == len(body)):
                self._done = True
                await response.respond(status, self._headers, body)
                return
            await response.start(status, self._headers, declared)
        elif not response.started:
            raise RuntimeError("http.response.body before http.response.start")
        if body:
            await response.write(body)
        if not more_body:
            self._done = True
            await response.end()

    async def finish(self) -> None:
        """Called after the app returned: complete what it left open."""
        if self._status is not None:  # start without body: an empty body
            await self._send_body(b"", False)
        elif not self._response.started:
            raise RuntimeError("ASGI app returned without sending a response")
        else:
            await self._response.end()
