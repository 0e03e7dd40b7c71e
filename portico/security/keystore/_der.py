"""The few DER pieces the keystore formats need: read one TLV, write SEQUENCE/OID/NULL/OCTET STRING."""

from __future__ import annotations

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06


class DerError(ValueError):
    """Bytes that are not the DER structure expected."""


def read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """``(tag, value, end)`` of the element starting at ``pos``."""
    if pos + 2 > len(data):
        raise DerError("truncated DER element")
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("unsupported or truncated DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError("truncated DER element")
    return tag, data[pos:end], end


def children(value: bytes) -> list[tuple[int, bytes]]:
    """The elements inside a constructed value."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(value):
        tag, inner, pos = read_tlv(value, pos)
        out.append((tag, inner))
    return out


def encode(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(raw))) + raw + value


def encode_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body.extend(reversed(chunk))
    return encode(OID, bytes(body))


def decode_oid(value: bytes) -> str:
    if not value:
        raise DerError("empty OBJECT IDENTIFIER")
    parts = [value[0] // 40, value[0] % 40]
    acc = 0
    for byte in value[1:]:
        acc = (acc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(acc)
            acc = 0
    return ".".join(str(p) for p in parts)
