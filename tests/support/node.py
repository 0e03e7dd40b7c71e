"""A Portico node running in the test's event loop on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from portico.app import Portico, ServeOptions

ADMIN = ("Administrator", "test-secret")


class Node:
    def __init__(self, portico: Portico) -> None:
        self.portico = portico
        self.base = f"http://127.0.0.1:{portico.port}"
        self.admin = httpx.AsyncClient(base_url=f"{self.base}/rest/apigateway", auth=ADMIN, timeout=30)
        self.gw = httpx.AsyncClient(base_url=f"{self.base}/gateway", timeout=30)

    async def reload(self) -> None:
        assert self.portico.reloader is not None
        await self.portico.reloader.reload_now()

    async def create_api(self, spec: dict[str, Any], activate: bool = True, **fields: Any) -> dict[str, Any]:
        r = await self.admin.post("/apis", json={"type": "openapi", "apiDefinition": spec, **fields})
        assert r.status_code == 200, r.text
        api: dict[str, Any] = r.json()["apiResponse"]["api"]
        if activate:
            r = await self.admin.put(f"/apis/{api['id']}/activate")
            assert r.status_code == 200, r.text
        await self.reload()
        return api

    def mount(self, path: str, endpoint: Callable[[Request], Awaitable[Response]], public: bool = False) -> None:
        """Add a route to the running management app (under /rest/apigateway) or, with ``public``,
        to the public endpoints' app (a full path under one of their prefixes): a test-only
        endpoint served with the app's own error mapping, e.g. one that fails like a bug would."""
        app = self.portico.public_app if public else self.portico.admin_app
        assert app is not None
        routes = app.router.routes
        if not public:
            mount = routes[0]
            assert isinstance(mount, Mount)
            routes = mount.routes
        routes.append(Route(path, endpoint))

    async def user_ids(self, path: str, key: str) -> list[str]:
        """Ids listed at ``path`` without the built-in ones (the transaction-logging policy)."""
        r = await self.admin.get(path)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()[key] if not x["id"].startswith("GlobalLogInvocationPolicy")]

    async def close(self) -> None:
        await self.admin.aclose()
        await self.gw.aclose()


@asynccontextmanager
async def running_node(db_url: str | None, data_dir: Path, **options: Any) -> AsyncIterator[Node]:
    """A node on a real socket in the test's event loop (``db_url`` None: SQLite in ``data_dir``)."""
    portico = Portico(ServeOptions(port=0, db_url=db_url, data_dir=data_dir, shutdown_timeout=2.0, **options))
    await portico.start()
    node = Node(portico)
    try:
        yield node
    finally:
        await node.close()
        await portico.stop()
