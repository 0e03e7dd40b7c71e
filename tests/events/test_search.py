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
