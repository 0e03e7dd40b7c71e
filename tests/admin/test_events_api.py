"""GET /transactionalEvents/_search and /_count: parameter parsing and the HTTP contract.

The routes are mounted in a tiny Starlette app and driven through its ASGI
interface (no httpx: starlette.testclient is not available), on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount

from portico.admin import events as api
from portico.admin.context import AdminContext
from portico.admin.errors import ApiError
from portico.events import EventRecorder, TransactionEvent
from portico.store import Store

DAY_MS = 86_400_000
FEB_26 = 1_488_067_200_000  # 2017-02-26T00:00:00Z
RANGE = "fromDate=2017-02-26&toDate=2017-02-27"


# --- parameter parsing -------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "end_of_day", "expected"),
    [
        ("2017-02-26", False, FEB_26),
        ("2017-02-26", True, FEB_26 + DAY_MS - 1),
        ("1488067200", False, FEB_26),  # epoch seconds, the spec's other example
        ("1488067200123", False, FEB_26 + 123),  # epoch milliseconds
        ("2017-02-26T10:00:00Z", True, FEB_26 + 10 * 3_600_000),  # a date-time is exact
        ("2017-02-26T12:00:00+02:00", False, FEB_26 + 10 * 3_600_000),
        ("2017-02-26T10:00:00.5", False, FEB_26 + 10 * 3_600_000 + 500),  # naive means UTC
        ("2017-02-26 10:00:00", False, FEB_26 + 10 * 3_600_000),
    ],
)
def test_parse_date(value: str, end_of_day: bool, expected: int) -> None:
    assert api.parse_date("fromDate", value, end_of_day) == expected


@pytest.mark.parametrize("value", ["yesterday", "2017-02-30", "2017-13-01", "26/02/2017", "-5", "9" * 20])
def test_bad_date_is_a_400_naming_the_parameter(value: str) -> None:
    with pytest.raises(ApiError) as err:
        api.parse_date("toDate", value)
    assert err.value.status == 400 and "toDate" in err.value.message


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"toDate": "2017-02-27", "apiId": "x"}, "fromDate"),
        ({"fromDate": "2017-02-26", "apiId": "x"}, "toDate"),
        ({"fromDate": "", "toDate": "2017-02-27", "apiId": "x"}, "fromDate"),
        ({"fromDate": "2017-02-28", "toDate": "2017-02-27", "apiId": "x"}, "fromDate"),
        ({"fromDate": "2017-02-26", "toDate": "2017-02-27", "apiName": "Pet[Store"}, "apiName"),
        ({"fromDate": "2017-02-26", "toDate": "2017-02-27"}, "Insufficient parameters"),
        ({"fromDate": "2017-02-26", "toDate": "2017-02-27", "apiName": ""}, "Insufficient parameters"),
    ],
)
def test_bad_filters(query: dict[str, str], named: str) -> None:
    with pytest.raises(ApiError) as err:
        api.parse_filter(query)
    assert err.value.status == 400 and named in err.value.message


def test_parse_filter() -> None:
    f = api.parse_filter({**dict(p.split("=") for p in RANGE.split("&")), "planName": "Gold.*", "apiId": "a"})
    assert (f.from_date, f.to_date) == (FEB_26, FEB_26 + 2 * DAY_MS - 1)
    assert (f.plan_name, f.api_id, f.api_name) == ("Gold.*", "a", None)


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, (0, api.DEFAULT_SIZE)), ({"from": "20", "size": "5"}, (20, 5)), ({"size": "0"}, (0, 0)),
     ({"size": str(api.MAX_SIZE)}, (0, api.MAX_SIZE))],
)
def test_parse_paging(query: dict[str, str], expected: tuple[int, int]) -> None:
    assert api.parse_paging(query) == expected


@pytest.mark.parametrize(
    ("query", "named"),
    [({"from": "-1"}, "from"), ({"size": "-1"}, "size"), ({"size": str(api.MAX_SIZE + 1)}, "size"),
     ({"from": "ten"}, "from"), ({"size": "1.5"}, "size")],
)
def test_bad_paging(query: dict[str, str], named: str) -> None:
    with pytest.raises(ApiError) as err:
        api.parse_paging(query)
    assert err.value.status == 400 and err.value.message.startswith(named)


# --- the routes, through ASGI --------------------------------------------------

async def api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"errorDetails": exc.message}, status_code=exc.status)


@pytest.fixture
async def app(store: Store) -> AsyncIterator[Starlette]:
    recorder = EventRecorder(store)
    for i in range(5):  # one event per hour on Feb 26 for PetStore, one Weather event on Feb 27
        recorder.record(TransactionEvent(
            creation_date=FEB_26 + i * 3_600_000, api_id="api-1", api_name="PetStore", api_version="1.0",
            application_id="app-a", plan_name="GoldPlan", correlation_id=f"c{i}",
        ))
    recorder.record(TransactionEvent(creation_date=FEB_26 + DAY_MS, api_id="api-2", api_name="Weather",
                                     api_version="2.0", application_id="app-a"))
    await recorder.flush()
    application = Starlette(routes=[Mount("/rest/apigateway", routes=api.routes)],
                            exception_handlers={ApiError: api_error})
    application.state.portico = AdminContext(store=store, events=recorder)
    yield application


async def get(app: Starlette, path: str, query: str) -> tuple[int, Any]:
    """One GET through the app's ASGI interface; returns (status, decoded JSON body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "headers": [(b"host", b"test")],
        "server": ("test", 80), "client": ("127.0.0.1", 50000),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, orjson.loads(body)


async def test_search_route(app: Starlette) -> None:
    status, body = await get(app, "/rest/apigateway/transactionalEvents/_search", f"{RANGE}&apiName=PetStore")
    assert status == 200
    assert list(body) == ["transaction"]
    assert [e["correlationID"] for e in body["transaction"]] == ["c4", "c3", "c2", "c1", "c0"]
    newest = body["transaction"][0]
    assert (newest["apiId"], newest["eventType"], newest["apiVersion"]) == ("api-1", "Transactional", "1.0")


async def test_search_route_pages(app: Starlette) -> None:
    query = f"{RANGE}&applicationId=app-a&from=1&size=2"
    status, body = await get(app, "/rest/apigateway/transactionalEvents/_search", query)
    assert status == 200
    assert [e.get("correlationID") for e in body["transaction"]] == ["c4", "c3"]  # after Weather (newest)


async def test_search_route_date_formats(app: Starlette) -> None:
    # Only Feb 26 from 01:00 to 03:00 UTC, given as epoch ms and ISO 8601.
    query = f"fromDate={FEB_26 + 3_600_000}&toDate=2017-02-26T03:00:00Z&apiId=api-1"
    _, body = await get(app, "/rest/apigateway/transactionalEvents/_search", query)
    assert [e["correlationID"] for e in body["transaction"]] == ["c3", "c2", "c1"]


async def test_count_route(app: Starlette) -> None:
    path = "/rest/apigateway/transactionalEvents/_count"
    status, body = await get(app, path, f"{RANGE}&applicationId=app-a")
    assert status == 200
    assert body == {"count": [
        {"apiId": "api-1", "apiName": "PetStore", "apiVersion": "1.0", "count": 5},
        {"apiId": "api-2", "apiName": "Weather", "apiVersion": "2.0", "count": 1},
    ]}
    _, body = await get(app, path, f"{RANGE}&planName=Gold.*")
    assert body == {"count": [{"apiId": "api-1", "apiName": "PetStore", "apiVersion": "1.0", "count": 5}]}


@pytest.mark.parametrize(
    ("path", "query", "named"),
    [
        ("_search", "toDate=2017-02-27&apiId=api-1", "fromDate"),
        ("_search", f"{RANGE}&apiId=api-1&size=-3", "size"),
        ("_search", f"{RANGE}&apiId=api-1&size=100000", "size"),
        ("_search", f"{RANGE}&apiId=api-1&from=-1", "from"),
        ("_search", "fromDate=26.02.2017&toDate=2017-02-27&apiId=api-1", "fromDate"),
        ("_search", RANGE, "Insufficient parameters"),
        ("_count", "fromDate=2017-02-26&toDate=soon&apiId=api-1", "toDate"),
        ("_count", RANGE, "Insufficient parameters"),
    ],
)
async def test_bad_parameters_answer_400(app: Starlette, path: str, query: str, named: str) -> None:
    status, body = await get(app, f"/rest/apigateway/transactionalEvents/{path}", query)
    assert status == 400
    assert named in body["errorDetails"]


async def test_a_slow_query_is_stopped_with_a_400(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events are indexed by time only and names take regular expressions: a query runs under a time
    limit (events.search.QUERY_SECONDS) on both stores, so a backtracking pattern answers 400 instead of
    holding the database (on SQLite, Python's re would hold the whole process)."""
    import importlib
    import time

    event_search = importlib.import_module("portico.events.search")  # the module, not the function
    monkeypatch.setattr(event_search, "QUERY_SECONDS", 1.0)
    recorder = EventRecorder(store)
    for i in range(3):
        recorder.record(TransactionEvent(creation_date=FEB_26 + i, api_id="api-1", api_name="PetStore",
                                         api_version="1.0", application_name="ab" * 120))
    await recorder.flush()
    application = Starlette(routes=[Mount("/rest/apigateway", routes=api.routes)],
                            exception_handlers={ApiError: api_error})
    application.state.portico = AdminContext(store=store, events=recorder)
    slow = r"(.*)(.*)(.*)(.*)(.*)\5\4\3\2\1"  # seconds to minutes over 240 characters, on both engines
    for path in ("/rest/apigateway/transactionalEvents/_search", "/rest/apigateway/transactionalEvents/_count"):
        started = time.monotonic()
        status, body = await get(application, path, f"{RANGE}&applicationName={slow}")
        assert status == 400 and "took longer" in body["errorDetails"], (path, status, body)
        assert time.monotonic() - started < 4, path
    status, body = await get(application, "/rest/apigateway/transactionalEvents/_search",
                             f"{RANGE}&applicationName=(ab)%2B")  # a quick pattern still answers
    assert status == 200 and len(body["transaction"]) == 3
