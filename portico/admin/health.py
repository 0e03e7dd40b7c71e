"""``/rest/apigateway/health`` (+ ``/engine``, ``/admin``, ``/all``): unauthenticated, as in the reference."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response
from portico.admin.context import context_of


async def _store_status(request: Request) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await context_of(request).store.config_revision()
    except Exception as exc:  # health reports any store failure rather than raising it
        return {"status": "red", "error": type(exc).__name__}
    return {"status": "green", "response_time_ms": str(int((time.perf_counter() - started) * 1000))}


def _events_status(request: Request) -> dict[str, Any]:
    rec = context_of(request).events
    return {
        "status": "green" if rec.failed == 0 else "yellow",
        "recorded": rec.recorded, "written": rec.written, "dropped": rec.dropped, "failed": rec.failed,
    }


def _gateway_status(request: Request) -> dict[str, Any]:
    reloader = context_of(request).extras.get("reloader")
    error = getattr(reloader, "last_error", None)
    if error:
        return {"status": "yellow", "configuration": "stale: the last reload failed", "error": error}
    return {"status": "green"}


def _overall(*parts: dict[str, Any]) -> str:
    states = {p["status"] for p in parts}
    return "red" if "red" in states else "yellow" if "yellow" in states else "green"


async def health(request: Request) -> Response:
    store = await _store_status(request)
    events = _events_status(request)
    gateway = _gateway_status(request)
    overall = _overall(store, events, gateway)
    body = {"status": overall, "store": store, "events": events, "gateway": gateway}
    return json_response(body, status=200 if overall != "red" else 503)


async def engine(request: Request) -> Response:
    store = await _store_status(request)
    return json_response({"status": store["status"], "store": store}, 200 if store["status"] != "red" else 503)


async def admin(request: Request) -> Response:
    store = await _store_status(request)
    return json_response({"status": store["status"], "management": {"status": "green"}, "store": store},
                         200 if store["status"] != "red" else 503)


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/health/", health, methods=["GET"]),
    Route("/health/all", health, methods=["GET"]),
    Route("/health/engine", engine, methods=["GET"]),
    Route("/health/admin", admin, methods=["GET"]),
]
