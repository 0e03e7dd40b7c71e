"""The status board: a health report asked for before an error was recorded does not clear it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from portico.federation import status
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


@dataclass
class _Link:
    id: str
    integration_id: str = "i1"
    agent_id: str = "agent"
    agent_version: str = "1.0"
    remote: str = "127.0.0.1"
    primary: bool = False


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_link_liveness_is_judged_by_the_database_clock(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nodes whose clocks are 20 s apart agree on which links are alive: on PostgreSQL the rows'
    times are the database's, written and compared in SQL. Before, the row written by the node whose
    clock is behind read as stale on the other, and each could elect a different primary."""
    behind, ahead = StatusBoard(store, "node-behind", stale_ms=3_000), StatusBoard(store, "node-ahead", stale_ms=3_000)
    real = status.now_ms
    monkeypatch.setattr(status, "now_ms", lambda: real() - 20_000)
    await behind.link_opened("l1", "i1", "agent", "1.0", "127.0.0.1", False)
    await behind.heartbeat("l1", False)
    monkeypatch.setattr(status, "now_ms", lambda: real() + 20_000)
    await ahead.link_opened("l2", "i1", "agent", "1.0", "127.0.0.1", False)
    for board in (ahead, behind):
        monkeypatch.setattr(status, "now_ms", lambda b=board: real() + (20_000 if b is ahead else -20_000))
        rows = await board.live_links("i1")
        assert [r.link_id for r in rows] == ["l1", "l2"], board.node_id  # the same rows, in the same order
        assert all(abs(r.last_heartbeat - real()) < 5_000 for r in rows)


async def test_the_lease_writes_a_missing_link_row_again(store: Store) -> None:
    """A link whose row could not be written when it opened (or was deleted) gets it back at the next
    lease round, instead of staying invisible to the other nodes."""
    board = StatusBoard(store, "node-1")
    await board.link_opened("l1", "i1", "agent", "1.0", "127.0.0.1", True)
    await board.refresh([_Link("l1", primary=True), _Link("l2", agent_id="late")])
    rows = {r.link_id: r for r in await board.live_links("i1")}
    assert set(rows) == {"l1", "l2"} and rows["l2"].agent_id == "late" and rows["l2"].node_id == "node-1"
    await board.refresh([_Link("l1", primary=True), _Link("l2", agent_id="late")])  # (no duplicate)
    assert len(await board.live_links("i1")) == 2
