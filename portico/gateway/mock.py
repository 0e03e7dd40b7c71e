"""Mocked APIs: answers built from the API definition's examples, without the native call.

When ``mockService.enableMock`` is set on an API (``PUT /apis/{id}/mock/enable``), the snapshot
part ``parts/mocking.py`` appends a :class:`MockResponder` to the API's request plans: it runs
after every request policy (identification, validation, throttling still apply) and sets
``ex.response``, which the runtime relays through the response policies.

Choosing the answer of an operation:

* status: the ``x-portico-mock-status`` request header when the operation declares that
  status (or ``NXX``/``default`` covering it); else the lowest declared 2xx, else ``default``
  (as 200), else the lowest declared status;
* content type: the first media type of the ``Accept`` header (by quality, ``type/*`` and
  ``*/*`` ranges honoured) that the response declares; else its first declared media type;
* body: the media type's ``example``, else the first of its ``examples``, else the schema's
  ``example``, else a value generated from the schema (OpenAPI 3); Swagger 2 ``examples`` by
  media type, else the schema likewise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from portico.gateway.exchange import BufferedResponse
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

STATUS_HEADER = b"x-portico-mock-status"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class MockAnswer:
    status: int
    bodies: tuple[tuple[str, bytes], ...]  # (media type, body) in declared order


class _Definition:
    """Local ``$ref`` resolution over one API definition."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def deref(self, node: Any, depth: int = 0) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 20:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                return {}
            target: Any = self.root
            for raw in ref[2:].split("/"):
                part = raw.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            node, depth = target, depth + 1
        return node

    def sample(self, schema: Any, depth: int = 0) -> Any:
        """A value that fits ``schema``: its example/default/enum, else one built from its type."""
        schema = self.deref(schema)
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None
        for key in ("example", "default"):
            if key in schema:
                return schema[key]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                value = self.sample(part, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
            return merged
        for key in ("oneOf", "anyOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.sample(schema[key][0], depth + 1)
        return self._by_type(schema, depth)

    def _by_type(self, schema: dict[str, Any], depth: int) -> Any:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "object" or (kind is None and "properties" in schema):
            props = schema.get("properties") or {}
            return {name: self.sample(sub, depth + 1) for name, sub in props.items()}
        if kind == "array":
            item = self.sample(schema.get("items"), depth + 1)
            return [item] if item is not None else []
        if kind == "integer":
            return int(schema.get("minimum", 0))
        if kind == "number":
            return float(schema.get("minimum", 0))
        if kind == "boolean":
            return True
        if kind == "string":
            return _string_for(schema.get("format"))
        return None


def _string_for(fmt: Any) -> str:
    return {
        "date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "uuid": "00000000-0000-0000-0000-000000000000",
        "email": "user@example.com", "uri": "https://example.com", "byte": "", "binary": "",
    }.get(str(fmt), "string")


def _encode(media_type: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and not (media_type.endswith("json") and not value.lstrip().startswith(("{", "["))):
        return value.encode()
    if value is None:
        return b""
    if media_type.endswith("json") or not isinstance(value, (str, int, float, bool)):
        return orjson.dumps(value)
    return str(value).encode()


def _openapi_bodies(d: _Definition, response: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    out: list[tuple[str, bytes]] = []
    for mt, media in (response.get("content") or {}).items():
        if not isinstance(media, dict):
            continue
        if "example" in media:
            value = media["example"]
        elif isinstance(media.get("examples"), dict) and media["examples"]:
            first = d.deref(next(iter(media["examples"].values())))
            value = first.get("value") if isinstance(first, dict) else None
        else:
            value = d.sample(media.get("schema"))
        out.append((str(mt).lower(), _encode(str(mt).lower(), value)))
    return tuple(out)


def _swagger_bodies(d: _Definition, response: dict[str, Any], produces: list[str]) -> tuple[tuple[str, bytes], ...]:
    raw = response.get("examples")
    examples: dict[str, Any] = raw if isinstance(raw, dict) else {}
    out = [(str(mt).lower(), _encode(str(mt).lower(), v)) for mt, v in examples.items()]
    if "schema" in response:
        value = d.sample(response["schema"])
        out += [(mt.lower(), _encode(mt.lower(), value)) for mt in produces if mt.lower() not in dict(out)]
    return tuple(out)


def _status_of(code: str) -> int | None:
    if code.isdigit():
        return int(code)
    if code.upper() == "DEFAULT":
        return 0
    if len(code) == 3 and code[0].isdigit() and code[1:].upper() == "XX":
        return int(code[0]) * 100
    return None


def _answers(d: _Definition, op: dict[str, Any]) -> dict[int, MockAnswer]:
    swagger = d.root.get("sourceFormat") == "swagger"
    produces = [str(p) for p in (op.get("produces") or d.root.get("produces") or ["application/json"])]
    answers: dict[int, MockAnswer] = {}
    for code, raw in (op.get("responses") or {}).items():
        status = _status_of(str(code))
        response = d.deref(raw)
        if status is None or not isinstance(response, dict):
            continue
        bodies = _swagger_bodies(d, response, produces) if swagger else _openapi_bodies(d, response)
        answers[status] = MockAnswer(status, bodies)
    return answers


def _accepted(accept: bytes | None) -> list[str]:
    """Media ranges of an Accept header, best first (stable for equal quality)."""
    if not accept:
        return []
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.decode("latin-1").split(",")):
        mt, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if mt and q > 0:
            ranked.append((-q, i, mt.lower()))
    return [mt for _, _, mt in sorted(ranked)]


def _covers(media_range: str, mt: str) -> bool:
    if media_range in ("*/*", mt):
        return True
    return media_range.endswith("/*") and mt.split("/", 1)[0] == media_range[:-2]


class MockResponder(PolicyHandler):
    """Not a policy action (lives outside the registry): appended to a mocked API's plans."""

    template_key = "mockService"
    stage = "routing"
    title = "Mocked response"
    Config = PolicyConfig

    def __init__(self, definition: dict[str, Any]) -> None:
        super().__init__(PolicyConfig())
        d = _Definition(definition)
        self._ops: dict[tuple[str, str], dict[int, MockAnswer]] = {}
        for template, item in (definition.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            path = "/" + str(template).strip("/")
            for method in _METHODS:
                if isinstance(item.get(method), dict):
                    self._ops[(path, method.upper())] = _answers(d, item[method])

    def run(self, ex: Exchange) -> Violation | None:
        method = "GET" if ex.method == "HEAD" and (ex.resource, "HEAD") not in self._ops else ex.method
        answers = self._ops.get((ex.resource, method), {})
        answer = self._pick_status(answers, ex.request.header(STATUS_HEADER))
        if answer is None:
            ex.response = _response(200, "", b"")
            return None
        status = answer.status or 200
        media, body = self._pick_body(answer, ex.request.header(b"accept"))
        ex.response = _response(status, media, body)
        return None

    @staticmethod
    def _pick_status(answers: dict[int, MockAnswer], requested: bytes | None) -> MockAnswer | None:
        if requested is not None and requested.strip().isdigit():
            code = int(requested)
            for key in (code, code // 100 * 100, 0):
                if key in answers:
                    found = answers[key]
                    return MockAnswer(code, found.bodies)
        success = sorted(s for s in answers if 200 <= s < 300)
        if success:
            return answers[success[0]]
        if 0 in answers:
            return answers[0]
        return answers[min(answers)] if answers else None

    @staticmethod
    def _pick_body(answer: MockAnswer, accept: bytes | None) -> tuple[str, bytes]:
        if not answer.bodies:
            return "", b""
        for media_range in _accepted(accept):
            for mt, body in answer.bodies:
                if _covers(media_range, mt):
                    return mt, body
        return answer.bodies[0]


def _response(status: int, media: str, body: bytes) -> BufferedResponse:
    headers = [(b"content-length", str(len(body)).encode())]
    if media:
        headers.append((b"content-type", media.encode("latin-1")))
    headers.append((b"x-portico-mocked", b"true"))
    return BufferedResponse(status, headers, body)
