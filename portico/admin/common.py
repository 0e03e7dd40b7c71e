"""Request parsing and responses shared by the management handlers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from portico.admin.errors import ApiError

MAX_JSON_BODY = 10 * 1024 * 1024


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


async def read_body(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int = MAX_JSON_BODY) -> Any:
    raw = await read_body(request, limit)
    if not raw.strip():
        raise ApiError(400, "request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON in request body: {exc}") from None


async def read_object(request: Request, envelope: str | None = None) -> dict[str, Any]:
    """A JSON object body; with ``envelope`` also accept ``{envelope: {...}}``."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    if envelope and isinstance(data.get(envelope), dict) and len(data) == 1:
        inner: dict[str, Any] = data[envelope]
        return inner
    return data


def int_param(request: Request, name: str, default: int, minimum: int = 0, maximum: int = 10_000) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter '{name}' must be an integer, got {raw!r}") from None
    if value < minimum or value > maximum:
        raise ApiError(400, f"query parameter '{name}' must be between {minimum} and {maximum}")
    return value


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ApiError(400, f"query parameter '{name}' must be true or false, got {raw!r}")


def ids_param(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    return [p.strip() for value in raw for p in value.split(",") if p.strip()]


def require_str(data: dict[str, Any], key: str, required: bool = True, default: str = "") -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ApiError(400, f"field '{key}' is required")
        return default
    if not isinstance(value, str):
        raise ApiError(400, f"field '{key}' must be a string, got {type(value).__name__}")
    return value


def str_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"field '{key}' must be a list of strings")
    return value
