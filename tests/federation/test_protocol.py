"""The command/reply channel over a real WebSocket on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from portico.federation import protocol as p


class WsTransport:
    def __init__(self, ws: ClientConnection | ServerConnection) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def receive(self) -> str | None:
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
            return None
        return message if isinstance(message, str) else message.decode()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)


@asynccontextmanager
async def linked(server_handlers: dict[str, p.Handler], client_handlers: dict[str, p.Handler],
                 timeout: float = 5.0) -> AsyncIterator[tuple[p.Channel, p.Channel]]:
    ready: asyncio.Queue[p.Channel] = asyncio.Queue()

    async def on_connect(ws: ServerConnection) -> None:
        channel = p.Channel(WsTransport(ws), server_handlers, reply_timeout=timeout)
        await ready.put(channel)
        await channel.run()

    async with serve(on_connect, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            client = p.Channel(WsTransport(ws), client_handlers, reply_timeout=timeout)
            runner = asyncio.create_task(client.run())
            controller = await ready.get()
            try:
                yield controller, client
            finally:
                await client.close()
                await runner


def handler(result: dict[str, Any] | Exception) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    async def handle(payload: dict[str, Any]) -> dict[str, Any]:
        if isinstance(result, Exception):
            raise result
        return {**result, "echo": payload}
    return handle


async def test_commands_both_ways_and_errors() -> None:
    async with linked({p.HELLO: handler({"targetId": "i-1"})},
                      {p.DISCOVER: handler({"apis": []}), p.SUBSCRIBE: handler(p.CommandFailed("no such plan"))},
                      ) as (controller, agent):
        assert await agent.request(p.HELLO, {"targetId": "i-1"}) == {"targetId": "i-1", "echo": {"targetId": "i-1"}}
        assert (await controller.request(p.DISCOVER, {}))["apis"] == []
        with pytest.raises(p.CommandFailed, match="no such plan"):
            await controller.request(p.SUBSCRIBE, {"apiId": "x"})
        with pytest.raises(p.CommandFailed, match="unknown command type 'PRIMARY'"):
            await controller.request(p.PRIMARY, {"primary": True})


async def test_reply_timeout_and_close_fail_the_waiting_command() -> None:
    async def never(payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {}

    async with linked({}, {p.DISCOVER: never}, timeout=0.3) as (controller, agent):
        with pytest.raises(p.CommandFailed, match="no reply within"):
            await controller.request(p.DISCOVER, {})
        waiting = asyncio.create_task(controller.request(p.DISCOVER, {}, wait=30))
        await asyncio.sleep(0.1)
        await agent.close()
        with pytest.raises(p.CommandFailed):
            await waiting


@pytest.mark.parametrize("text", ["not json", "[]", '{"kind":"command","type":"X"}',
                                  '{"kind":"reply","type":"X","commandId":"1","commandStatus":"MAYBE"}',
                                  '{"kind":"command","id":"1","type":"X","payload":[1]}'])
def test_malformed_frames_are_refused(text: str) -> None:
    with pytest.raises(p.ProtocolError):
        p.parse(text)
