"""Gateway error responses, rendered through the configured error template."""

from __future__ import annotations

import time

import orjson

from portico.gateway.http import ResponseWriter
from portico.settings import DEFAULT_ERROR_TEMPLATE

JSON_HEADERS = [(b"content-type", b"application/json")]


def render_template(
    template: str,
    message: str,
    service: str = "",
    operation: str = "",
    client_ip: str = "",
    user: str = "",
    application: str = "",
) -> str:
    now = time.gmtime()
    values = {
        "$ERROR_MESSAGE": message.rstrip("."),  # the template punctuates itself
        "$SERVICE": service,
        "$OPERATION": operation,
        "$TIME": time.strftime("%H:%M:%S", now),
        "$DATE": time.strftime("%Y-%m-%d", now),
        "$CLIENT_IP": client_ip,
        "$USER": user or "Default",
        "$CONSUMER_APPLICATION": application or "Unknown",
    }
    out = template or DEFAULT_ERROR_TEMPLATE
    # Longest names first so $ERROR_MESSAGE is not eaten by a shorter variable.
    for name in sorted(values, key=len, reverse=True):
        out = out.replace(name, values[name])
    return out


async def send_error(
    resp: ResponseWriter,
    status: int,
    text: str,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> int:
    body = orjson.dumps({"Exception": text})
    await resp.respond(status, [*JSON_HEADERS, *extra_headers], body)
    return len(body)
