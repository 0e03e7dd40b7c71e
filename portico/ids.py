"""Cheap unique ids for the hot path (correlation ids, event ids).

``uuid4`` costs a system call per id; a random per-process prefix plus a counter is unique across
processes and restarts for all practical purposes and costs a string format."""

from __future__ import annotations

import itertools
import os

_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def fast_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):012x}"
