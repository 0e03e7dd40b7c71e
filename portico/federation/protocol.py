"""The agent link's command/reply protocol, shared by the management API (controller) and the agent.

Frames are JSON text messages (shapes in ``docs/federation-protocol.md``)::

    {"kind": "command", "id": "...", "type": "DISCOVER", "payload": {...}}
    {"kind": "reply", "commandId": "...", "type": "DISCOVER", "commandStatus": "SUCCEEDED",
     "errorDetails": null, "payload": {...}}

Either side sends commands and answers the other's. A reply that does not arrive within
``REPLY_TIMEOUT`` fails the waiting command; a command of an unknown type is answered with an
ERROR reply of type ``NO_REPLY``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

log = logging.getLogger("portico.federation")

HELLO = "HELLO"
HEALTH_CHECK = "HEALTH_CHECK"
PRIMARY = "PRIMARY"
GOOD_BYE = "GOOD_BYE"
DISCOVER = "DISCOVER"
START_INGEST = "START_INGEST"
INGEST = "INGEST"
SUBSCRIBE = "SUBSCRIBE"
UNSUBSCRIBE = "UNSUBSCRIBE"
NO_REPLY = "NO_REPLY"

SUCCEEDED, ERROR = "SUCCEEDED", "ERROR"
# WebSocket close codes the controller uses when the agent's credentials no longer hold
CLOSE_UNAUTHORIZED = 4401  # the token was revoked or expired, or its user deactivated
CLOSE_FORBIDDEN = 4403  # the user no longer holds "Manage APIs"
REPLY_TIMEOUT = 60.0
HEALTH_INTERVAL = 30.0
MAX_FRAME = 16 * 1024 * 1024

Payload = dict[str, Any]
Handler = Callable[[Payload], Awaitable[Payload]]


class CommandFailed(Exception):
    """The peer answered ERROR, did not answer in time, or the link closed first."""


class ReplyTimeout(CommandFailed):
    """The peer did not answer within the reply timeout."""


class LinkUnavailable(Exception):
    """(Management side) no agent link can carry a command for the integration."""


class ProtocolError(Exception):
    """A frame that does not follow the protocol."""


class Transport(Protocol):
    async def send(self, text: str) -> None: ...

    async def receive(self) -> str | None:
        """The next text frame; None when the link is closed."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


@dataclass(frozen=True)
class Frame:
    kind: str
    type: str
    payload: Payload
    id: str = ""
    command_id: str = ""
    status: str = ""
    error: str | None = None


def parse(text: str | bytes) -> Frame:
    if len(text) > MAX_FRAME:
        raise ProtocolError(f"frame larger than {MAX_FRAME} bytes")
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("frame must be a JSON object")
    kind, ftype, payload = raw.get("kind"), raw.get("type"), raw.get("payload", {})
    if kind not in ("command", "reply") or not isinstance(ftype, str) or not ftype:
        raise ProtocolError("frame needs kind 'command' or 'reply' and a type")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ProtocolError("payload must be a JSON object")
    if kind == "command":
        if not isinstance(raw.get("id"), str) or not raw["id"]:
            raise ProtocolError("command needs an id")
        return Frame("command", ftype, payload, id=raw["id"])
    status, error = raw.get("commandStatus"), raw.get("errorDetails")
    if not isinstance(raw.get("commandId"), str) or status not in (SUCCEEDED, ERROR):
        raise ProtocolError("reply needs a commandId and commandStatus SUCCEEDED or ERROR")
    return Frame("reply", ftype, payload, command_id=raw["commandId"], status=status,
                 error=error if isinstance(error, str) else None)


def command(ftype: str, payload: Payload, command_id: str | None = None) -> str:
    return orjson.dumps({"kind": "command", "id": command_id or str(uuid.uuid4()), "type": ftype,
                         "payload": payload}).decode()


def reply(ftype: str, command_id: str, payload: Payload | None = None, error: str | None = None) -> str:
    return orjson.dumps({"kind": "reply", "commandId": command_id, "type": ftype,
                         "commandStatus": ERROR if error else SUCCEEDED, "errorDetails": error,
                         "payload": payload or {}}).decode()


class Channel:
    """One link: sends commands and awaits their replies; answers the peer's commands with ``handlers``.

    ``run()`` reads frames until the link closes. Handlers run as tasks, so a slow DISCOVER does
    not hold up HEALTH_CHECK."""

    def __init__(self, transport: Transport, handlers: dict[str, Handler] | None = None,
                 reply_timeout: float = REPLY_TIMEOUT) -> None:
        self.transport = transport
        self.handlers = dict(handlers or {})
        self.reply_timeout = reply_timeout
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self.closed = asyncio.Event()

    async def _send(self, text: str) -> None:
        async with self._send_lock:
            await self.transport.send(text)

    async def request(self, ftype: str, payload: Payload, wait: float | None = None) -> Payload:
        """Send a command and wait for its reply's payload; CommandFailed on ERROR, timeout or close."""
        if self.closed.is_set():
            raise CommandFailed(f"{ftype}: the link is closed")
        command_id = str(uuid.uuid4())
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            await self._send(command(ftype, payload, command_id))
            try:
                answer = await asyncio.wait_for(future, wait or self.reply_timeout)
            except TimeoutError:
                raise ReplyTimeout(f"{ftype}: no reply within {wait or self.reply_timeout:g} s") from None
        finally:
            self._pending.pop(command_id, None)
        if answer.status == ERROR:
            raise CommandFailed(answer.error or f"{ftype} failed")
        return answer.payload

    async def _answer(self, frame: Frame) -> None:
        handler = self.handlers.get(frame.type)
        try:
            if handler is None:
                await self._send(reply(NO_REPLY, frame.id, error=f"unknown command type {frame.type!r}"))
                return
            try:
                payload = await handler(frame.payload)
            except CommandFailed as exc:
                await self._send(reply(frame.type, frame.id, error=str(exc)))
            except Exception as exc:  # a handler's failure is the peer's answer, not the link's end
                log.exception("handling %s failed", frame.type)
                await self._send(reply(frame.type, frame.id, error=f"{type(exc).__name__}: {exc}"))
            else:
                await self._send(reply(frame.type, frame.id, payload))
        except Exception:  # the link went away while answering
            log.debug("could not answer %s", frame.type, exc_info=True)

    async def run(self) -> None:
        try:
            while True:
                text = await self.transport.receive()
                if text is None:
                    break
                try:
                    frame = parse(text)
                except ProtocolError as exc:
                    log.warning("dropping a malformed frame: %s", exc)
                    continue
                if frame.kind == "reply":
                    future = self._pending.get(frame.command_id)
                    if future is not None and not future.done():
                        future.set_result(frame)
                    continue
                task = asyncio.create_task(self._answer(frame))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CommandFailed("the link closed before the reply"))
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(Exception):
            await self.transport.close(code, reason)
