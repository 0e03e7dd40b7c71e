"""Reading a keystore or truststore upload: ``multipart/form-data`` as the reference specifies, or a
JSON object with the same field names and ``fileContent`` in base64 (the shape the reference's GET
returns, so exported stores can be posted back)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

from portico.admin.common import read_body
from portico.admin.errors import ApiError
from portico.security.keystore.records import KeyAliasConfig

MAX_STORE_FILE = 2 * 1024 * 1024
MAX_REQUEST = 4 * 1024 * 1024
NAME_RULE = re.compile(r"[A-Za-z0-9_]{1,100}")
_TEXT_FIELDS = ("keyStoreName", "keyStoreDescription", "keyStoreType", "keyStoreProvider", "keyStorePassword",
                "uploadFileName", "pkAliasesList", "pkPasswordsList", "nullPKpasswds", "isPwdBase64Encoded")
# Read-only fields of the GET document, accepted (and ignored) so a fetched store can be posted back.
_IGNORED = ("id", "bitarray", "isWarning", "isLoaded", "message", "keyStoreLocation", "certificateAliases",
            "certficateAliases", "keyAliases")


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file: bytes | None = None

    def text(self, name: str) -> str | None:
        return self.fields.get(name)


def check_name(name: str, what: str) -> str:
    if not NAME_RULE.fullmatch(name):
        raise ApiError(400, f"{what} name {name!r} is invalid: use only letters, digits and underscores "
                            "(no spaces, hyphens or other characters), at most 100")
    return name


def _check_file(data: bytes) -> bytes:
    if len(data) > MAX_STORE_FILE:
        raise ApiError(413, f"the uploaded file is larger than {MAX_STORE_FILE} bytes")
    if not data:
        raise ApiError(400, "field 'fileContent': the uploaded file is empty")
    return data


async def _from_multipart(request: Request, raw: bytes) -> Upload:
    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=2, max_fields=30)
    except Exception as exc:  # starlette raises its own MultiPartException / HTTPException
        raise ApiError(400, f"malformed multipart body: {getattr(exc, 'detail', None) or exc}") from None
    upload = Upload()
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key != "fileContent":
                raise ApiError(400, f"unexpected file field {key!r}; the store file goes in 'fileContent'")
            upload.file = _check_file(await value.read())
            if value.filename and "uploadFileName" not in upload.fields:
                upload.fields.setdefault("uploadFileName", value.filename)
        elif key == "fileContent":
            upload.file = _check_file(_base64(value))
        elif key in _TEXT_FIELDS:
            upload.fields[key] = value
        elif key not in _IGNORED:
            raise ApiError(400, f"unexpected field {key!r}")
    await form.close()
    return upload


def _base64(value: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "field 'fileContent' must be the store file in base64") from None


def _from_json(raw: bytes) -> Upload:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON in request body: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    upload = Upload()
    for key, value in data.items():
        if key == "fileContent":
            if value is None:
                continue
            if not isinstance(value, str):
                raise ApiError(400, "field 'fileContent' must be the store file in base64")
            upload.file = _check_file(_base64(value))
        elif key in _TEXT_FIELDS:
            if value is None:
                continue
            if isinstance(value, list) and key in ("pkAliasesList", "pkPasswordsList", "nullPKpasswds"):
                value = ",".join(" " if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                                 for v in value)
            if isinstance(value, bool):
                value = str(value).lower()
            if not isinstance(value, str):
                raise ApiError(400, f"field {key!r} must be a string")
            upload.fields[key] = value
        elif key not in _IGNORED:
            raise ApiError(400, f"unexpected field {key!r}")
    return upload


async def read_upload(request: Request) -> Upload:
    raw = await read_body(request, MAX_REQUEST)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        return await _from_multipart(request, raw)
    if content_type.startswith("application/x-www-form-urlencoded"):
        return await _from_multipart(request, raw)
    if not raw.strip():
        raise ApiError(400, "request body is empty; send multipart/form-data (or JSON) with the store fields")
    return _from_json(raw)


def _flag(upload: Upload, name: str) -> bool:
    value = (upload.text(name) or "false").strip().lower()
    if value not in ("true", "false"):
        raise ApiError(400, f"field {name!r} must be true or false, got {value!r}")
    return value == "true"


def password(upload: Upload, name: str = "keyStorePassword") -> str | None:
    """The store password as sent (base64-decoded when ``isPwdBase64Encoded`` is true)."""
    value = upload.text(name)
    if value is None:
        return None
    return _decode_password(value, name) if _flag(upload, "isPwdBase64Encoded") else value


def _decode_password(value: str, name: str) -> str:
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ApiError(400, f"field {name!r} is not valid base64 although isPwdBase64Encoded is true") from None


def _split(value: str | None) -> list[str]:
    if value is None or not value.strip():
        return []
    return value.split(",")


def key_aliases(upload: Upload, handle_prefix: str) -> list[KeyAliasConfig] | None:
    """The key aliases and their passwords (None when ``pkAliasesList`` was not sent).

    ``pkPasswordsList`` lists a password per alias, a blank for none; ``nullPKpasswds`` may say
    "true" for an alias without a password. A password equal to the alias's handle (what GET
    shows) means "keep the stored one" and comes back as the handle itself."""
    aliases = [a.strip() for a in _split(upload.text("pkAliasesList"))]
    if upload.text("pkAliasesList") is None:
        if upload.text("pkPasswordsList") or upload.text("nullPKpasswds"):
            raise ApiError(400, "field 'pkPasswordsList' needs 'pkAliasesList' naming the key aliases")
        return None
    if any(not a for a in aliases):
        raise ApiError(400, "field 'pkAliasesList' has an empty alias name")
    if len(set(a.lower() for a in aliases)) != len(aliases):
        raise ApiError(400, "field 'pkAliasesList' names an alias twice")
    passwords = _split(upload.text("pkPasswordsList"))
    nulls = [n.strip().lower() for n in _split(upload.text("nullPKpasswds"))]
    if passwords and len(passwords) != len(aliases):
        raise ApiError(400, f"field 'pkPasswordsList' has {len(passwords)} entries for {len(aliases)} key aliases")
    if nulls and len(nulls) != len(aliases):
        raise ApiError(400, f"field 'nullPKpasswds' has {len(nulls)} entries for {len(aliases)} key aliases")
    if any(n not in ("true", "false") for n in nulls):
        raise ApiError(400, "field 'nullPKpasswds' must be a comma-separated list of true/false")
    encoded = _flag(upload, "isPwdBase64Encoded")
    out: list[KeyAliasConfig] = []
    for i, alias in enumerate(aliases):
        raw = passwords[i] if passwords else ""
        secret: str | None = raw.strip() or None
        if nulls and nulls[i] == "true":
            secret = None
        if secret is not None and secret != f"{handle_prefix}.{alias}" and encoded:
            secret = _decode_password(secret, "pkPasswordsList")
        out.append(KeyAliasConfig(alias, secret))
    return out
