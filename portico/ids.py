"""Cheap unique ids for the hot path (correlation ids, event ids).

``uuid4`` costs a system call per id; a random per-process prefix plus a counter is unique across
processes and restarts for all practical purposes and costs one ``hex`` call. The counter starts at
2**48, so an id is the 16 hex digits of the prefix and 13 of the counter, and ids of one process
sort in the order they were made (up to 2**52 of them). A format spec (``f"{n:012x}"``) would cost
several times more: it is parsed on every call."""

from __future__ import annotations

import itertools
import os

_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1 << 48)


def fast_id() -> str:
    return _PREFIX + hex(next(_COUNTER))[2:]
