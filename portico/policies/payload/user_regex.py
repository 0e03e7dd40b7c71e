"""Regular expressions written by API providers, run with a time limit.

A pattern such as ``(a+)+b`` takes exponential time on some inputs; on the gateway's single
event loop that would stall every other call. The ``regex`` engine takes a timeout; past it the
evaluation fails with :class:`~portico.policies.payload.PayloadError` (a 4xx/5xx with a stable
key for the caller) instead of holding the loop."""

from __future__ import annotations

from typing import Any

import regex

from portico.policies.payload import PayloadError

TIMEOUT_SECONDS = 0.05


def compile_user_regex(pattern: str) -> Any:
    """Compile, or raise ValueError naming the pattern and the problem."""
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError) as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def _too_slow(pattern: Any) -> PayloadError:
    return PayloadError(f"regular expression {pattern.pattern!r} took longer than {TIMEOUT_SECONDS}s on the payload")


def user_sub(pattern: Any, replacement: str, text: str) -> str:
    try:
        result: str = pattern.sub(replacement, text, timeout=TIMEOUT_SECONDS)
    except TimeoutError:
        raise _too_slow(pattern) from None
    return result


def user_search(pattern: Any, text: str) -> Any:
    try:
        return pattern.search(text, timeout=TIMEOUT_SECONDS)
    except TimeoutError:
        raise _too_slow(pattern) from None


def user_findall(pattern: Any, text: str) -> list[str]:
    """Every whole match; an evaluation past the time limit counts as no match."""
    try:
        return [m.group(0) for m in pattern.finditer(text, timeout=TIMEOUT_SECONDS)]
    except TimeoutError:
        return []
