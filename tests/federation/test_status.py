"""The status board: a health report asked for before an error was recorded does not clear it."""

from __future__ import annotations

from portico.federation.status import StatusBoard
from portico.store import Store
from portico.store.db import now_ms


async def test_a_stale_healthy_report_keeps_a_newer_error(store: Store) -> None:
    board = StatusBoard(store, "node-1")
    asked = now_ms() - 1_000  # a HEALTH_CHECK sent before the ingestion below finished
    await board.provider_error("i1", "us-east-1: AccessDenied")
    await board.provider_error("i1", None, asked)
    status = (await board.status_of(["i1"]))["i1"]
    assert status["lastProviderError"]["message"] == "us-east-1: AccessDenied"

    await board.provider_error("i1", None, now_ms() + 1)  # asked for after the error: the provider is fine again
    assert (await board.status_of(["i1"]))["i1"]["lastProviderError"] is None
    await board.provider_error("i1", "again")
    await board.provider_error("i1", None)  # no time given (discovery without errors): clears
    assert (await board.status_of(["i1"]))["i1"]["lastProviderError"] is None
