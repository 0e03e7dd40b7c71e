"""Background-task helpers that keep cancellation honest on Python 3.11.

Two idioms lose a cancellation there, and a background loop that loses the one meant to stop it
runs forever, so shutdown waits forever:

- ``asyncio.wait_for(event.wait(), t)`` returns normally when the cancellation arrives just as the
  event fires (the inner wait already done): a ``while True`` writer loop woken by the traffic it
  records goes round again. :func:`wait_event` waits under ``asyncio.timeout`` instead, which
  always lets a cancellation through.
- ``task.cancel(); with suppress(CancelledError): await task`` also swallows the *caller's* own
  cancellation (its shutdown budget running out, say). :func:`stop_task` re-raises it.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["stop_task", "wait_event"]


async def wait_event(event: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109 (the point of it)
    """Wait until ``event`` is set, at most ``timeout`` seconds; True when it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended. A cancellation of the caller itself while it
    waits propagates, and so does the task's own exception if it failed (as ``await task``)."""
    if task is None:
        return
    task.cancel()
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        task.cancel()  # we are going away too; do not leave it behind
        raise
    if not task.cancelled() and (exc := task.exception()) is not None:
        raise exc
