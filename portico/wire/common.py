"""Formats shared by the wire modules."""

from __future__ import annotations

import time


def gmt(ms: int | None) -> str | None:
    """Epoch millis -> the reference's ``2021-03-17 07:22:07 GMT``."""
    if not ms:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S GMT", time.gmtime(ms / 1000))
