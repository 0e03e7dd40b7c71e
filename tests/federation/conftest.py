"""Fixtures of the federation tests: moto in server mode (reset per test), and a node whose agent
links use short health-check intervals."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.aws import moto_server


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def fresh(moto: str) -> Iterator[str]:
    """moto with no AWS resources left by an earlier test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/reset", method="POST")).read()
    yield moto
