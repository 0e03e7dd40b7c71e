"""Download a specification by URL ("import from URL").

The standard library is enough for one bounded GET; it runs in a worker thread so the
event loop is never blocked. The URL comes from a user: only http(s) is allowed (also
on redirects), the body is capped while reading, and every failure becomes a SpecError
naming the URL. Deciding which hosts may be reached (SSRF policy) is the caller's job.
"""

from __future__ import annotations

import asyncio
import http.client
import time
import urllib.error
import urllib.request
from http.client import HTTPResponse
from typing import IO, Any
from urllib.parse import urlsplit

from portico.specs.load import SpecError

_ALLOWED_SCHEMES = ("http", "https")
_CHUNK = 64 * 1024


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never to ftp:// (which urllib would otherwise allow)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in _ALLOWED_SCHEMES:
            raise SpecError(f"cannot fetch {req.full_url}: redirected to unsupported URL {newurl!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


# ASYNC109: the timeout must bound the blocking urllib call in its thread, which
# asyncio.timeout() around the await could not stop.
async def fetch_spec(url: str, max_bytes: int = 10_485_760, timeout: float = 15.0) -> bytes:  # noqa: ASYNC109
    """GET ``url`` and return the body; SpecError on any failure.

    ``timeout`` bounds the whole download, not only each socket operation, so a server
    trickling bytes cannot hold the import open.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in _ALLOWED_SCHEMES or not parts.netloc:
        raise SpecError(f"url: {url!r} is not an http or https URL")
    return await asyncio.to_thread(_fetch, url, max_bytes, timeout)


def _fetch(url: str, max_bytes: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    request = urllib.request.Request(url, headers={"Accept": "application/json, application/yaml, */*"})
    try:
        with opener.open(request, timeout=timeout) as response:
            return _read_body(url, response, max_bytes, deadline, timeout)
    except SpecError:
        raise
    except urllib.error.HTTPError as exc:
        raise SpecError(f"cannot fetch {url}: HTTP status {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise SpecError(f"cannot fetch {url}: {_reason(exc.reason, timeout)}") from exc
    except TimeoutError as exc:
        raise SpecError(f"cannot fetch {url}: timed out after {timeout:g} s") from exc
    except (OSError, ValueError) as exc:
        # ValueError: malformed URL parts (bad port...); OSError: resets, TLS errors...
        raise SpecError(f"cannot fetch {url}: {exc}") from exc
    except http.client.HTTPException as exc:
        # not an HTTP server (BadStatusLine), a broken chunked body (IncompleteRead), huge headers...
        raise SpecError(f"cannot fetch {url}: not a valid HTTP response "
                        f"({type(exc).__name__}: {str(exc).strip()[:200]!r})") from exc


def _read_body(url: str, response: HTTPResponse, max_bytes: int, deadline: float, timeout: float) -> bytes:
    status = response.status
    if not 200 <= status < 300:
        raise SpecError(f"cannot fetch {url}: HTTP status {status} {response.reason}")
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise SpecError(f"cannot fetch {url}: the document is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    received = 0
    while True:
        # read1 returns whatever has arrived instead of waiting for a full chunk,
        # so the deadline is checked while a slow server trickles data.
        chunk = response.read1(_CHUNK)
        if not chunk:
            if response.length:  # the server closed before its Content-Length: half a document
                raise SpecError(f"cannot fetch {url}: the connection closed after {received} bytes of "
                                f"{received + response.length}")
            return b"".join(chunks)
        received += len(chunk)
        if received > max_bytes:
            raise SpecError(f"cannot fetch {url}: the document is larger than {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise SpecError(f"cannot fetch {url}: timed out after {timeout:g} s")
        chunks.append(chunk)


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s"
    return str(reason)
