"""The compiled event queue's batches."""

from __future__ import annotations

from portico.events.calls import CallQueue


def test_take_gives_the_oldest_events_in_order_and_all_when_fewer() -> None:
    woken: list[int] = []
    dropped: list[int] = []
    queue = CallQueue(limit=10, batch=4, on_batch=lambda: woken.append(1), on_drop=lambda: dropped.append(1))
    for n in range(7):
        queue.append(n)
    assert woken == [1]  # once, as the queue reached a batch
    assert queue.take(4) == [0, 1, 2, 3]
    assert queue.take(4) == [4, 5, 6]
    assert queue.take(4) == [] and len(queue.items) == 0
    for n in range(12):
        queue.append(n)
    assert (queue.accepted, len(dropped)) == (17, 2)
    assert queue.take(100) == list(range(10))
