"""The audit-log download: a zip of text files of at most 10,000 records each, as the guide says.

Each text file (``auditlogs_1.txt``, ``auditlogs_2.txt``, ...) holds one record per line as a JSON
object in the guide's column names, oldest first. The zip is spooled to a temporary file (memory
up to 8 MB, then disk) while records are read in chunks, so a large export holds neither the
records nor the archive in memory; compression runs in a worker thread."""

from __future__ import annotations

import asyncio
import tempfile
import zipfile
from collections.abc import AsyncIterator
from typing import IO, Any

import orjson

from portico.audit.query import AuditQuery, chunks
from portico.store import Store

RECORDS_PER_FILE = 10_000
_SPOOL_BYTES = 8 * 1024 * 1024
_READ_CHUNK = 64 * 1024


def _lines(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


class _Writer:
    """Appends records to the zip, starting a new text file every ``per_file`` records."""

    def __init__(self, out: IO[bytes], per_file: int) -> None:
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.per_file = per_file
        self.files = 0
        self.records = 0
        self._current: IO[bytes] | None = None
        self._in_current = 0

    def add(self, records: list[dict[str, Any]]) -> None:
        while records:
            if self._current is None or self._in_current == self.per_file:
                self._next_file()
            assert self._current is not None
            room = self.per_file - self._in_current
            part, records = records[:room], records[room:]
            self._current.write(_lines(part))
            self._in_current += len(part)
            self.records += len(part)

    def _next_file(self) -> None:
        if self._current is not None:
            self._current.close()
        self.files += 1
        self._current = self.zip.open(f"auditlogs_{self.files}.txt", "w", force_zip64=True)
        self._in_current = 0

    def abandon(self) -> None:
        """Close a half-written archive (a failed query) so nothing writes to it later."""
        try:
            if self._current is not None:
                self._current.close()
            self.zip.close()
        except (OSError, ValueError):
            pass

    def finish(self) -> None:
        if self._current is None:
            self._next_file()  # an empty result is still one (empty) text file
        assert self._current is not None
        self._current.close()
        self.zip.close()


async def build_zip(store: Store, query: AuditQuery, per_file: int = RECORDS_PER_FILE) -> tuple[IO[bytes], int]:
    """The zip of every record ``query`` matches, rewound, and how many records it holds."""
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
    writer = _Writer(out, per_file)
    try:
        async for records in chunks(store, query):
            await asyncio.to_thread(writer.add, records)
        await asyncio.to_thread(writer.finish)
        out.seek(0)
    except BaseException:
        writer.abandon()
        out.close()
        raise
    return out, writer.records


async def stream(out: IO[bytes]) -> AsyncIterator[bytes]:
    """The archive's bytes; closes (and so deletes) the temporary file at the end."""
    try:
        while block := await asyncio.to_thread(out.read, _READ_CHUNK):
            yield block
    finally:
        out.close()
