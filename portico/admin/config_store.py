"""Reading and writing the settings documents (extended settings, watt keys, error processing)."""

from __future__ import annotations

from typing import Any

from portico.settings import ERROR_PROCESSING_DEFAULTS, EXTENDED_DEFAULTS, WATT_DEFAULTS
from portico.store import StoreTransaction

SETTINGS_ID = "settings"
ERRORS_ID = "errorProcessing"


async def preferred_settings(tx: StoreTransaction) -> dict[str, dict[str, str]]:
    row = await tx.get("settings", SETTINGS_ID)
    body = row.body if row else {}
    return {"extendedKeys": dict(body.get("extendedKeys", {})), "wattKeys": dict(body.get("wattKeys", {}))}


async def extended_setting(tx: StoreTransaction, key: str) -> str:
    prefs = await preferred_settings(tx)
    return prefs["extendedKeys"].get(key, EXTENDED_DEFAULTS.get(key, ""))


async def all_settings(tx: StoreTransaction) -> dict[str, dict[str, str]]:
    prefs = await preferred_settings(tx)
    return {
        "extendedKeys": {**EXTENDED_DEFAULTS, **prefs["extendedKeys"]},
        "wattKeys": {**WATT_DEFAULTS, **prefs["wattKeys"]},
    }


async def error_processing(tx: StoreTransaction) -> dict[str, Any]:
    row = await tx.get("settings", ERRORS_ID)
    return {**ERROR_PROCESSING_DEFAULTS, **(row.body if row else {})}
