"""Values of the per-request context that are worked out once."""

from __future__ import annotations

from portico.gateway.exchange import authority


def test_host_header_leaves_out_the_default_port() -> None:
    assert authority("http", "example.test", 80) == b"example.test"
    assert authority("https", "example.test", 443) == b"example.test"
    assert authority("https", "example.test", 80) == b"example.test:80"
    assert authority("http", "127.0.0.1", 9000) == b"127.0.0.1:9000"
