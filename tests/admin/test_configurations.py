"""Extended settings, watt keys and the error template."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.node import Node


async def test_settings_roundtrip(node: Node) -> None:
    initial = (await node.admin.get("/configurations/settings")).json()
    assert initial["preferredSettings"] == {"extendedKeys": {}, "wattKeys": {}}
    assert initial["allSettings"]["extendedKeys"]["apiKeyHeader"] == "x-Gateway-APIKey"
    r = await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"apiKeyHeader": "X-Key", "pg.endpoint.readTimeout": 5},
        "wattKeys": {"watt.server.enterprisegateway.ignoreXForwardedForHeader": "false"}}})
    assert r.status_code == 200, r.text
    now = (await node.admin.get("/configurations/settings")).json()
    assert now["preferredSettings"]["extendedKeys"] == {"apiKeyHeader": "X-Key", "pg.endpoint.readTimeout": "5"}
    assert now["allSettings"]["wattKeys"]["watt.server.enterprisegateway.ignoreXForwardedForHeader"] == "false"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"preferredSettings": {"extendedKeys": {"strictResourceMatching": "perhaps"}}}, "strictResourceMatching"),
        ({"preferredSettings": {"extendedKeys": {"pg.endpoint.readTimeout": "soon"}}}, "pg.endpoint.readTimeout"),
        ({"preferredSettings": {"extendedKeys": {"apiKeyExpirationPeriod": "10 fortnights"}}}, "invalid period"),
        ({"preferredSettings": {"extendedKeys": {"apiKeyHeader": "bad header"}}}, "apiKeyHeader"),
        ({"preferredSettings": {"wattKeys": {"noSuchSetting": "1"}}}, "noSuchSetting"),
        ({"preferredSettings": {"extendedKeys": {"pg.endpoint.readTimeout": "nan"}}}, "finite"),
        ({"preferredSettings": {"extendedKeys": ["x"]}}, "extendedKeys"),
        ({"preferredSettings": {"other": {}}}, "other"),
        ({"preferredSettings": {"extendedKeys": {"apiKeyHeader": {"x": 1}}}}, "apiKeyHeader"),
        ({"preferredSettings": {"extendedKeys": {"startDayOfTheWeek": "FUNDAY"}}}, "startDayOfTheWeek"),
        ({"preferredSettings": {"extendedKeys": {"startDayOfTheWeek": ""}}}, "startDayOfTheWeek"),
    ],
)
async def test_bad_settings_rejected_and_nothing_saved(node: Node, body: dict[str, Any], fragment: str) -> None:
    r = await node.admin.put("/configurations/settings", json=body)
    assert r.status_code == 400 and fragment in r.json()["errorDetails"]
    assert (await node.admin.get("/configurations/settings")).json()["preferredSettings"]["extendedKeys"] == {}


async def test_error_processing(node: Node) -> None:
    current = (await node.admin.get("/configurations/errorProcessing")).json()
    assert current["sendNativeProviderFault"] is False and "$ERROR_MESSAGE" in current["defaultErrorMessage"]
    r = await node.admin.put("/configurations/errorProcessing", json={"sendNativeProviderFault": "true"})
    assert r.json()["sendNativeProviderFault"] is True
    bad = await node.admin.put("/configurations/errorProcessing", json={"sendNativeProviderFault": 3})
    assert bad.status_code == 400
    unknown = await node.admin.put("/configurations/errorProcessing", json={"template": "x"})
    assert unknown.status_code == 400 and "template" in unknown.json()["errorDetails"]
