"""Errors of the management API, always rendered as ``{"errorDetails": "..."}``."""

from __future__ import annotations


class ApiError(Exception):
    """Raise from any management handler to answer with ``status`` and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"{what} with id {ident!r} was not found")
