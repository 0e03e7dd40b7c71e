"""``/configurations/denyByIPForFailedAuthConfig``: global IP access on failed authentication
(issue 5; enforced by ``gateway/parts/ip_deny.py``). The reference's shape, every value a string:
``{isEnabled, maximumFailedAuthRequests, maximumFailedAuthRequestsDuration, whenLimitExceeds
(BLOCK|DENY), blockIntervalInSeconds, deniedIPList: [ip, ...]}``. The denied list is read here and
edited by PUT (remove an address to let it in again). PUT changes the fields it names."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.gateway.parts.ip_deny import CONFIG_ID, DEFAULTS, KIND, read_config
from portico.store import ConflictError

ATTEMPTS = 20

_COUNTS = {"maximumFailedAuthRequests": (1, 1_000_000), "maximumFailedAuthRequestsDuration": (1, 31_536_000),
           "blockIntervalInSeconds": (1, 31_536_000)}


def _flag(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    raise ApiError(400, "field 'isEnabled' must be true or false")


def _count(name: str, value: Any) -> str:
    low, high = _COUNTS[name]
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise ApiError(400, f"field {name!r} must be a whole number from {low} to {high}, got {value!r}")
    return str(number)


def _ips(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ApiError(400, "field 'deniedIPList' must be a list of IP addresses")
    out: list[str] = []
    for i, item in enumerate(value):
        try:
            out.append(str(ipaddress.ip_address(item.strip() if isinstance(item, str) else item)))
        except (ValueError, AttributeError):
            raise ApiError(400, f"field 'deniedIPList[{i}]': {item!r} is not an IP address") from None
    return list(dict.fromkeys(out))


def merged(current: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise ApiError(400, f"invalid property key(s) {unknown}; expected {list(DEFAULTS)}")
    out = dict(current)
    for name, value in data.items():
        if name == "isEnabled":
            out[name] = _flag(value)
        elif name == "whenLimitExceeds":
            action = value.upper() if isinstance(value, str) else value
            if action not in ("BLOCK", "DENY"):
                raise ApiError(400, f"field 'whenLimitExceeds' must be BLOCK or DENY, got {value!r}")
            out[name] = action
        elif name == "deniedIPList":
            out[name] = _ips(value)
        else:
            out[name] = _count(name, value)
    return out


async def get_config(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        return json_response(await read_config(tx))


async def put_config(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    for attempt in range(ATTEMPTS):
        try:
            async with ctx.store.transaction() as tx:
                row = await tx.get(KIND, CONFIG_ID)
                config = merged(await read_config(tx), data)
                if row is None:
                    await tx.insert(KIND, CONFIG_ID, config)
                else:  # checked against the revision read: a denial a node adds meanwhile is not lost
                    await tx.update(KIND, CONFIG_ID, config, row.revision)
            break
        except ConflictError:
            if attempt == ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
    ctx.notify_change()
    return json_response(config)


routes = [
    Route("/configurations/denyByIPForFailedAuthConfig", get_config, methods=["GET"]),
    Route("/configurations/denyByIPForFailedAuthConfig", put_config, methods=["PUT"]),
]
