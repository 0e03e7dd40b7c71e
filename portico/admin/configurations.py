"""``/configurations/settings`` (extended settings, watt keys) and ``/configurations/errorProcessing``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import teams
from portico.admin.common import json_response, read_object
from portico.admin.config_store import ERRORS_ID, SETTINGS_ID, all_settings, error_processing, preferred_settings
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.settings import EXTENDED_DEFAULTS, WATT_DEFAULTS, validate_setting


async def get_settings(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        return json_response({"preferredSettings": await preferred_settings(tx), "allSettings": await all_settings(tx)})


def _validated(section: Any, name: str, known: dict[str, str], prefix: str | None) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ApiError(400, f"'{name}' must be an object of setting name -> value")
    out: dict[str, str] = {}
    for key, value in section.items():
        # Settings Portico does not use yet are kept as given, so exported setting documents of the
        # reference import whole; the ones it knows are checked.
        if not isinstance(key, str) or not key or len(key) > 200:
            raise ApiError(400, f"setting names in '{name}' must be non-empty strings of at most 200 characters")
        if prefix and name == "wattKeys" and not key.startswith(prefix):
            raise ApiError(400, f"watt keys start with '{prefix}', got {key!r}")
        try:
            out[key] = validate_setting(key, value)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    return out


async def put_settings(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    prefs = data.get("preferredSettings", data)
    if not isinstance(prefs, dict):
        raise ApiError(400, "'preferredSettings' must be an object with 'extendedKeys' and/or 'wattKeys'")
    unknown = set(prefs) - {"extendedKeys", "wattKeys"}
    if unknown:
        raise ApiError(400, f"unexpected field(s) {sorted(unknown)}; expected 'extendedKeys' and 'wattKeys'")
    extended = _validated(prefs.get("extendedKeys"), "extendedKeys", EXTENDED_DEFAULTS, None)
    watt = _validated(prefs.get("wattKeys"), "wattKeys", WATT_DEFAULTS, "watt.")
    async with ctx.store.transaction() as tx:
        current = await preferred_settings(tx)
        current["extendedKeys"].update(extended)
        current["wattKeys"].update(watt)
        await tx.upsert("settings", SETTINGS_ID, current)
        if extended.get(teams.SETTING, "").lower() == "true":
            await teams.on_team_work_enabled(tx)
        result = {"preferredSettings": current, "allSettings": await all_settings(tx)}
    ctx.notify_change()
    return json_response(result)


async def get_error_processing(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        return json_response(await error_processing(tx))


async def put_error_processing(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    allowed = {"sendNativeProviderFault", "defaultErrorMessage", "fallbackErrorMessage"}
    unknown = set(data) - allowed
    if unknown:
        raise ApiError(400, f"unexpected field(s) {sorted(unknown)}; expected {sorted(allowed)}")
    update: dict[str, Any] = {}
    if "sendNativeProviderFault" in data:
        flag = data["sendNativeProviderFault"]
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            flag = flag.lower() == "true"
        if not isinstance(flag, bool):
            raise ApiError(400, "field 'sendNativeProviderFault' must be true or false")
        update["sendNativeProviderFault"] = flag
    for key in ("defaultErrorMessage", "fallbackErrorMessage"):
        if key in data:
            if not isinstance(data[key], str) or len(data[key]) > 10_000:
                raise ApiError(400, f"field '{key}' must be a string of at most 10000 characters")
            update[key] = data[key]
    async with ctx.store.transaction() as tx:
        current = await error_processing(tx)
        current.update(update)
        await tx.upsert("settings", ERRORS_ID, current)
    ctx.notify_change()
    return json_response(current)


routes = [
    Route("/configurations/settings", get_settings, methods=["GET"]),
    Route("/configurations/settings", put_settings, methods=["PUT"]),
    Route("/configurations/errorProcessing", get_error_processing, methods=["GET"]),
    Route("/configurations/errorProcessing", put_error_processing, methods=["PUT"]),
]
