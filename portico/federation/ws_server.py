"""``/integration-controller``: agents' WebSocket links on the main listener.

The HTTP server hands an upgrade request for this path to :func:`upgrade_handler`'s handler
with the raw transport (see ``HttpServer(upgrades=...)``). The handler takes the transport over:
it authenticates the ``Authorization: bearer <token>`` header with the management API's own
token check (401 before any upgrade when it is missing or invalid), completes the WebSocket
handshake with the sans-I/O ``websockets.server.ServerProtocol``, and runs the link through
:meth:`Controller.serve`. :class:`WsLink` is the asyncio protocol between the transport and
the sans-I/O protocol, and the :class:`~portico.federation.protocol.Transport` of the link.

The same token check runs again while the link lives (the controller's ``recheck``), so a token
revoked or expired, or its user deactivated, ends the link (close code 4401)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import Request as StarletteRequest
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol

from portico.admin.auth import authenticate
from portico.admin.errors import ApiError
from portico.federation import protocol as p
from portico.federation.controller import Controller, CredentialsRevoked
from portico.gateway.http import Request
from portico.security.principal import Principal

log = logging.getLogger("portico.federation.ws")
PATH = "/integration-controller"
_CLOSE_TIMEOUT = 5.0

UpgradeHandler = Callable[[Request, asyncio.Transport, bytes], None]


def _http_error(status: int, phrase: str, message: str) -> bytes:
    import orjson

    body = orjson.dumps({"errorDetails": message})
    extra = b'www-authenticate: Bearer realm="Portico"\r\n' if status == 401 else b""
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%sconnection: close\r\n\r\n"
            % (status, phrase.encode(), len(body), extra)) + body


class WsLink(asyncio.Protocol):
    """One WebSocket connection after the HTTP server let go of it."""

    def __init__(self, transport: asyncio.Transport, remote: str) -> None:
        self.transport = transport
        self.remote = remote
        self.ws = ServerProtocol(max_size=p.MAX_FRAME)
        self.open = False
        self.lost = False
        self._early: list[bytes] = []  # bytes that arrived before the handshake completed
        self._messages: asyncio.Queue[str | None] = asyncio.Queue()
        self._parts: list[bytes] = []
        self._size = 0
        self._closer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self._early.append(data)
            return
        self.ws.receive_data(data)
        self._pump()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._pump()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._closer is not None:
            self._closer.cancel()
        self._messages.put_nowait(None)

    # -- sans-I/O plumbing ----------------------------------------------------------------------

    def handshake(self, head: bytes) -> bool:
        """Feed the upgrade request's head; answer 101 (True) or the handshake's error (False)."""
        self.ws.receive_data(head)
        events = self.ws.events_received()
        request = events[0] if events and isinstance(events[0], WsRequest) else None
        if request is None:
            self.transport.write(_http_error(400, "Bad Request", "malformed WebSocket upgrade request"))
            self.transport.close()
            return False
        response = self.ws.accept(request)
        self.ws.send_response(response)
        self._flush()
        if response.status_code != 101:
            self.transport.close()
            return False
        self.open = True
        early, self._early = self._early, []
        for chunk in early:
            self.data_received(chunk)
        return True

    def _flush(self) -> None:
        if self.lost:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
        if self.ws.close_expected() and self._closer is None:
            self._closer = asyncio.get_running_loop().call_later(_CLOSE_TIMEOUT, self.transport.abort)

    def _pump(self) -> None:
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
        self._flush()
        if self.ws.state.name == "CLOSED":
            self.transport.close()

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._parts, self._size = [], 0
        elif frame.opcode is not Opcode.CONT:
            return  # ping/pong are answered by the protocol; close is handled by it too
        self._parts.append(bytes(frame.data))
        self._size += len(frame.data)
        if self._size > p.MAX_FRAME:
            self.ws.fail(1009, "message too big")
            self._parts, self._size = [], 0
            return
        if frame.fin:
            text = b"".join(self._parts).decode("utf-8", "replace")
            self._parts, self._size = [], 0
            self._messages.put_nowait(text)

    # -- protocol.Transport -----------------------------------------------------------------------

    async def send(self, text: str) -> None:
        if self.lost or self.ws.state.name != "OPEN":
            raise ConnectionError("the agent link is closed")
        self.ws.send_text(text.encode())
        self._flush()

    async def receive(self) -> str | None:
        if self.lost and self._messages.empty():
            return None
        return await self._messages.get()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.lost:
            return
        if self.ws.state.name == "OPEN":
            self.ws.send_close(code, reason)
            self._flush()
        elif self.ws.state.name != "CLOSING":  # closing already: let the peer answer the close frame
            self.transport.close()
        self._messages.put_nowait(None)


def _scope(admin_app: Any, request: Request) -> dict[str, Any]:
    return {"type": "http", "method": request.method, "path": request.path, "raw_path": request.path.encode(),
            "query_string": request.query.encode(), "headers": list(request.headers), "app": admin_app,
            "client": (request.client_ip, request.client_port), "state": {}, "http_version": "1.1",
            "scheme": "http", "server": None, "root_path": "", "path_params": {}}


async def authenticate_agent(admin_app: Any, request: Request) -> Principal:
    """The token's user; ApiError(401) when the bearer token is missing, unknown, expired or revoked."""
    header = next((v for n, v in request.headers if n == b"authorization"), b"").decode("latin-1")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "the agent must authenticate with 'Authorization: bearer <personal access token>'")
    return await authenticate(StarletteRequest(_scope(admin_app, request)))


def _head(request: Request) -> bytes:
    target = request.path + ("?" + request.query if request.query else "")
    lines = [f"{request.method} {target} HTTP/1.1".encode("latin-1")]
    lines += [name + b": " + value for name, value in request.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def upgrade_handler(controller: Controller, admin_app: Any) -> UpgradeHandler:
    """The HTTP server's upgrade hook for :data:`PATH`."""
    tasks: set[asyncio.Task[None]] = set()

    def handle(request: Request, transport: asyncio.Transport, rest: bytes) -> None:
        remote = f"{request.client_ip}:{request.client_port}"
        link = WsLink(transport, remote)
        transport.set_protocol(link)
        if rest:
            link.data_received(rest)
        task = asyncio.get_running_loop().create_task(_run(controller, admin_app, request, link))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return handle


async def _run(controller: Controller, admin_app: Any, request: Request, link: WsLink) -> None:
    try:
        if controller.closing:
            link.transport.write(_http_error(503, "Service Unavailable", "the management API is shutting down"))
            link.transport.close()
            return
        try:
            principal = await authenticate_agent(admin_app, request)
        except ApiError as exc:
            log.warning("agent link from %s refused: %s", link.remote, exc.message)
            status = exc.status if exc.status in (401, 403) else 401
            link.transport.write(_http_error(status, "Unauthorized" if status == 401 else "Forbidden", exc.message))
            link.transport.close()
            return
        if link.lost or not link.handshake(_head(request)):
            return

        async def recheck() -> Principal:
            try:
                return await authenticate_agent(admin_app, request)
            except ApiError as exc:
                raise CredentialsRevoked(exc.message) from None

        await controller.serve(link, principal, link.remote, recheck)
    except Exception:
        log.exception("agent link from %s failed", link.remote)
    finally:
        with contextlib.suppress(Exception):
            await link.close(1011 if not link.lost else 1000)
