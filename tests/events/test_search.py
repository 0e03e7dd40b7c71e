"""search / count / count_by_api against real stores, seeded through the recorder."""

from __future__ import annotations

from typing import Any

import pytest

from portico.events import ApiCount, EventFilter, EventRecorder, TransactionEvent, count, count_by_api, search
from portico.store import Store

T0 = 1_709_251_200_000  # 2024-03-01T00:00:00Z
DAY = 86_400_000


def in_range(**criteria: str) -> EventFilter:
    """A filter on the day of T0 plus ``criteria``."""
    return EventFilter(from_date=T0, to_date=T0 + DAY - 1, **criteria)


# name -> (offset from T0 in ms, fields); "old" lies outside in_range().
SEED: dict[str, tuple[int, dict[str, Any]]] = {
    "e1": (1000, dict(api_id="api-1", api_name="PetStore", api_version="1.0", application_id="app-a",
                      application_name="MobileApp", package_id="pkg-1", package_name="Travel",
                      plan_id="plan-g", plan_name="GoldPlan")),
    "e2": (2000, dict(api_id="api-1", api_name="PetStore", api_version="1.0", application_id="app-b",
                      application_name="WebApp")),
    "e3": (3000, dict(api_id="api-2", api_name="PetStore", api_version="2.0", application_id="app-a",
                      application_name="MobileApp", package_id="pkg-1", package_name="Travel",
                      plan_id="plan-s", plan_name="SilverPlan", status="FAILURE", response_code=502)),
    "e4": (4000, dict(api_id="api-3", api_name="Weather", api_version="1.0", application_id="app-b",
                      application_name="WebApp", package_id="pkg-2", package_name="Tools",
                      plan_id="plan-g", plan_name="GoldPlan")),
    "e5": (5000, dict(api_id="api-4", api_name="MyPetStore", api_version="1.0", application_id="app-a",
                      application_name="MobileApp")),
    "old": (-DAY, dict(api_id="api-1", api_name="PetStore", api_version="1.0")),
}


@pytest.fixture
async def seeded(store: Store) -> dict[str, TransactionEvent]:
    recorder = EventRecorder(store)
    events = {name: TransactionEvent(creation_date=T0 + dt, **kw) for name, (dt, kw) in SEED.items()}
    for e in events.values():
        recorder.record(e)
    await recorder.flush()
    assert recorder.written == len(events)
    return events


def names(found: list[dict[str, Any]], events: dict[str, TransactionEvent]) -> list[str]:
    by_id = {e.id: name for name, e in events.items()}
    return [by_id[body["id"]] for body in found]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"api_id": "api-1"}, ["e2", "e1"]),
        ({"api_name": "PetStore"}, ["e3", "e2", "e1"]),
        ({"api_name": "Pet.*"}, ["e3", "e2", "e1"]),  # anchored: not MyPetStore
        ({"api_name": ".*Pet.*"}, ["e5", "e3", "e2", "e1"]),
        ({"api_name": "Store"}, []),
        ({"api_version": "2.0"}, ["e3"]),
        ({"application_id": "app-b"}, ["e4", "e2"]),
        ({"application_name": "Mobile.*"}, ["e5", "e3", "e1"]),
        ({"package_id": "pkg-1"}, ["e3", "e1"]),
        ({"package_name": "Travel"}, ["e3", "e1"]),
        ({"package_name": "T(ravel|ools)"}, ["e4", "e3", "e1"]),
        ({"plan_id": "plan-g"}, ["e4", "e1"]),
        ({"plan_name": "GoldPlan"}, ["e4", "e1"]),
        ({"plan_name": ".*Plan"}, ["e4", "e3", "e1"]),
        ({"api_name": "PetStore", "plan_name": "GoldPlan"}, ["e1"]),
        ({"application_id": "app-a", "api_version": "1.0"}, ["e5", "e1"]),
    ],
)
async def test_filters(
    store: Store, seeded: dict[str, TransactionEvent], criteria: dict[str, str], expected: list[str]
) -> None:
    filters = in_range(**criteria)
    found, total = await search(store, filters)
    assert names(found, seeded) == expected
    assert total == len(expected)
    assert await count(store, filters) == len(expected)


async def test_time_range_is_inclusive(store: Store, seeded: dict[str, TransactionEvent]) -> None:
    found, _ = await search(store, EventFilter(from_date=T0 + 2000, to_date=T0 + 4000))
    assert names(found, seeded) == ["e4", "e3", "e2"]
    found, _ = await search(store, EventFilter(api_id="api-1"))
    assert names(found, seeded) == ["e2", "e1", "old"]  # no range: everything, newest first


async def test_paging(store: Store, seeded: dict[str, TransactionEvent]) -> None:
    everything = in_range()
    found, total = await search(store, everything, offset=1, limit=2)
    assert (names(found, seeded), total) == (["e4", "e3"], 5)
    found, total = await search(store, everything, offset=4, limit=10)
    assert (names(found, seeded), total) == (["e1"], 5)
    found, total = await search(store, everything, offset=50, limit=10)
    assert (found, total) == ([], 5)


async def test_results_are_the_wire_form(store: Store, seeded: dict[str, TransactionEvent]) -> None:
    found, _ = await search(store, in_range(api_version="2.0"))
    assert found == [seeded["e3"].to_json()]
    assert found[0]["responseCode"] == "502" and found[0]["status"] == "FAILURE"


async def test_count_by_api(store: Store, seeded: dict[str, TransactionEvent]) -> None:
    counts = await count_by_api(store, in_range(api_name=".*"))
    assert counts == [
        ApiCount("api-4", "MyPetStore", "1.0", 1),
        ApiCount("api-1", "PetStore", "1.0", 2),
        ApiCount("api-2", "PetStore", "2.0", 1),
        ApiCount("api-3", "Weather", "1.0", 1),
    ]
    assert await count_by_api(store, in_range(plan_id="none")) == []


def test_has_criteria() -> None:
    assert not EventFilter(from_date=1, to_date=2).has_criteria()
    assert EventFilter(from_date=1, to_date=2, plan_name="x").has_criteria()


async def test_call_records_are_stored_compact_and_read_back_in_the_wire_form(store: Store) -> None:
    from sqlalchemy import select

    from portico.store.tables import transaction_events

    headers = (b"host", b"gw:5555", b"x-gateway-apikey", b"secret-key", b"authorization", b"Basic eA==",
               b"x-trace", b"t1")
    record = (
        T0 + 7000, "api-9", "Orders", "2.0", "app-z", "Shop", "10.0.0.7", "corr-1", "POST", "/orders/{id}",
        "a=1&b=x%20y", headers, b"x-gateway-apikey", 502, "NATIVE_FAULT", "http://native/orders/7?a=1", "POST",
        "pkg-7", "plan-7", 12, 10, 321,
    )
    recorder = EventRecorder(store)
    recorder.record(record)
    recorder.record(TransactionEvent(creation_date=T0 + 6000, api_id="api-9", api_name="Orders"))
    await recorder.flush()
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(transaction_events.c.body, transaction_events.c.status)
                                     .where(transaction_events.c.correlation_id == "corr-1"))).one()
    assert stored.body.startswith("[1,") and "secret-key" not in stored.body and stored.status == "FAILURE"
    found, total = await search(store, in_range(api_id="api-9"))
    assert total == 2 and found[1]["apiId"] == "api-9" and "httpMethod" not in found[1]  # the older event
    event = found[0]
    assert event == {
        "id": event["id"], "creationDate": T0 + 7000, "eventType": "Transactional", "sourceGateway": "APIGateway",
        "apiId": "api-9", "apiName": "Orders", "apiVersion": "2.0", "applicationIp": "10.0.0.7",
        "consumerIp": "10.0.0.7", "httpMethod": "POST",
        "requestHeaders": {"host": "gw:5555", "x-gateway-apikey": "********", "authorization": "********",
                           "x-trace": "t1"},
        "responseCode": "502", "status": "FAILURE", "callbackRequest": False, "totalTime": 12, "providerTime": 10,
        "gatewayTime": 2, "totalDataSize": 321, "applicationId": "app-z", "applicationName": "Shop",
        "correlationID": "corr-1", "operationName": "/orders/{id}", "errorOrigin": "NATIVE_FAULT",
        "nativeURL": "http://native/orders/7?a=1", "nativeHttpMethod": "POST", "packageId": "pkg-7",
        "planId": "plan-7", "queryParameters": {"a": "1", "b": "x y"},
    }
    assert event["id"] == "corr-1" and await count(store, in_range(application_id="app-z")) == 1
