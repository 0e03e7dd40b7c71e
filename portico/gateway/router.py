"""Resource matching: a request's resource path against an API's path templates.

Static paths are a dict lookup; templated ones are regexes tried from the most
specific (most literal segments) to the least. With strict matching off, a path
that matches no template falls back to the template that matches its longest
leading run of segments (``/mypath`` serves ``/mypath/abc``). A resource the provider disabled
(``enabled: false`` on the path, or on every one of its methods) matches nothing, and a path it
would match finds no fallback either: disabling ``/pets/{id}`` must not leave ``/pets/7`` served
by ``/pets``. A resource with only some methods disabled answers those like undefined ones."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PARAM = re.compile(r"\{([^}/]+)\}")


@dataclass(frozen=True, slots=True)
class Resource:
    template: str
    methods: frozenset[str]
    pattern: re.Pattern[str] | None = None
    literal_segments: int = 0
    segments: tuple[str, ...] = field(default=())
    param_names: tuple[str, ...] = ()
    hidden: bool = False  # disabled by the provider: blocks its paths, serves none


class Match:
    """A matched resource and its path parameters. A plain class, not a frozen dataclass: the
    compiled router builds one per request, and a frozen dataclass's ``__init__`` stays Python."""

    def __init__(self, resource: Resource, params: dict[str, str]) -> None:
        self.resource = resource
        self.params = params


def _normalize(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def compile_resource(template: str, methods: frozenset[str], hidden: bool = False) -> Resource:
    template = _normalize(template)
    segments = tuple(s for s in template.split("/") if s)
    if "{" not in template:
        return Resource(template, methods, None, len(segments), segments, hidden=hidden)
    # Positional groups: parameter names are free text in specs ("1x", "a-b", repeated names)
    # and must never be able to break the regex.
    regex = ""
    last = 0
    names: list[str] = []
    for m in _PARAM.finditer(template):
        regex += re.escape(template[last : m.start()])
        names.append(m.group(1))
        regex += "([^/]+)"
        last = m.end()
    regex += re.escape(template[last:])
    literal = sum(1 for s in segments if "{" not in s)
    return Resource(template, methods, re.compile(f"^{regex}/?$"), literal, segments, tuple(names), hidden)


class ResourceRouter:
    def __init__(self, resources: list[Resource]) -> None:
        self._static = {r.template: r for r in resources if r.pattern is None}
        self._templated = sorted(
            (r for r in resources if r.pattern is not None),
            key=lambda r: (-r.literal_segments, -len(r.segments)),
        )
        self._all = resources

    @property
    def resources(self) -> list[Resource]:
        """The resources that can be called (not the hidden ones)."""
        return [r for r in self._all if not r.hidden]

    @classmethod
    def from_paths(cls, paths: dict[str, dict[str, object]]) -> ResourceRouter:
        methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
        resources = []
        for template, item in paths.items():
            if not isinstance(item, dict):
                continue
            ops = frozenset(
                m.upper() for m, op in item.items()
                if m in methods and not (isinstance(op, dict) and op.get("enabled") is False)
            )
            # A resource with no enabled method exposes nothing: it is as disabled as one whose
            # path is switched off (404, and no shorter resource answers in its place).
            hidden = item.get("enabled") is False or not ops
            resources.append(compile_resource(template, frozenset() if hidden else ops, hidden=hidden))
        return cls(resources)

    def match(self, path: str, strict: bool = True) -> Match | None:
        path = _normalize(path)
        static = self._static.get(path)
        if static is not None:
            return None if static.hidden else Match(static, {})
        for r in self._templated:
            assert r.pattern is not None
            m = r.pattern.match(path)
            if m is not None:
                return None if r.hidden else Match(r, dict(zip(r.param_names, m.groups(), strict=True)))
        return None if strict else self._best_prefix(path)

    def _best_prefix(self, path: str) -> Match | None:
        segments = [s for s in path.split("/") if s]
        best: Resource | None = None
        for r in self._all:
            n = len(r.segments)
            if n == 0 or n > len(segments):
                continue
            if all(t == s or t.startswith("{") for t, s in zip(r.segments, segments, strict=False)):
                if best is None or n > len(best.segments):
                    best = r
        # The closest resource decides: under a disabled one, a shorter one does not step in.
        return Match(best, {}) if best is not None and not best.hidden else None
