"""Bytes -> plain JSON-compatible document, with guards against hostile input.

Imported specifications come from users (uploads, URLs), so parsing must fail with a
message a user can act on and must not let a small YAML file expand into gigabytes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

# Expanded size budget for YAML documents. A YAML alias is a pointer, so a 1 kB
# "billion laughs" file loads cheaply but expands to 10**9 nodes the moment anything
# walks it (deepcopy, json.dumps, the validator). Counting aliases is not enough: nine
# levels of nine aliases are only 81 aliases. So we measure what the document would
# expand to. A legitimate 10 MB spec stays well below this.
MAX_EXPANDED_NODES = 3_000_000

# Deeper documents are not specs; the cap also keeps our recursive walkers far from
# Python's recursion limit.
MAX_DEPTH = 200

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class SpecError(ValueError):
    """An imported specification cannot be used; the message names the problem and where.

    The message is shown to users as-is (``{"errorDetails": "..."}`` with status 400).
    """


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates as strings.

    ``version: 2024-01-01`` would otherwise become a ``datetime.date`` and the stored
    model would no longer be JSON-serializable.
    """


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(raw: bytes) -> tuple[dict[str, Any], str]:
    """Decode and parse ``raw`` (JSON or YAML) into a mapping; return it with the text."""
    text = decode_text(raw)
    if not text.strip():
        raise SpecError("the specification is empty")
    data = _parse(text)
    if not isinstance(data, dict):
        raise SpecError(f"the specification must be a mapping at the top level, not {_kind(data)}")
    return _to_json_compatible(data, "", 0), text


def decode_text(raw: bytes) -> str:
    try:
        # utf-8-sig: editors on Windows like to prepend a BOM, which is not an error.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"the specification is not UTF-8 text: invalid byte at offset {exc.start}") from exc


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise SpecError("not valid JSON or YAML: the document is nested too deeply") from exc
    except ValueError as json_error:
        try:
            return _load_yaml(text)
        except yaml.YAMLError as yaml_error:
            # YAML is a superset of JSON, so a JSON-looking document failed both ways:
            # the JSON error points closer to the user's mistake.
            if text.lstrip().startswith(("{", "[")):
                raise SpecError(f"not valid JSON or YAML: {_json_problem(json_error)}") from json_error
            raise SpecError(f"not valid JSON or YAML: {_yaml_problem(yaml_error)}") from yaml_error


def _load_yaml(text: str) -> Any:
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        _keep_version_text(node)
        return loader.construct_document(node)
    except RecursionError as exc:
        raise SpecError("not valid JSON or YAML: the document is nested too deeply") from exc
    finally:
        loader.dispose()


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _keep_version_text(root: yaml.Node) -> None:
    """``info.version`` as written: an unquoted ``version: 1.10`` is the text "1.10" (an API's
    version), not the float 1.1. Only plain scalars YAML would read as numbers are retagged."""
    if not isinstance(root, yaml.MappingNode):
        return
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "info" and isinstance(value, yaml.MappingNode):
            for field, item in value.value:
                if (isinstance(field, yaml.ScalarNode) and field.value == "version"
                        and isinstance(item, yaml.ScalarNode) and item.tag in _NUMBER_TAGS):
                    item.tag = "tag:yaml.org,2002:str"


def _check_expansion(root: yaml.Node) -> None:
    """Reject recursive aliases and documents that would expand past MAX_EXPANDED_NODES."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise SpecError("not valid JSON or YAML: recursive YAML alias")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if total > MAX_EXPANDED_NODES:
            raise SpecError(
                f"the YAML document expands to more than {MAX_EXPANDED_NODES} nodes "
                "(too many anchors/aliases)"
            )
        sizes[key] = total
        return total

    size(root)


def _to_json_compatible(value: Any, where: str, depth: int) -> Any:
    """Copy ``value`` with string keys only, rejecting YAML types JSON cannot hold."""
    if depth > MAX_DEPTH:
        raise SpecError(f"{where or 'document'}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        # Unquoted YAML response codes (`200:`) load as ints; OpenAPI keys are strings.
        out = {}
        for k, v in value.items():
            key = _text(_key(k), where)
            out[key] = _to_json_compatible(v, _join(where, key), depth + 1)
        return out
    if isinstance(value, list):
        return [_to_json_compatible(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, bool) or value is None:
        return value
    # The stored model is JSON: NaN and Infinity have no JSON form, and integers past 64 bits
    # cannot be written by the store's encoder.
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{where or 'document'}: {value} is not a JSON number")
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        raise SpecError(f"{where or 'document'}: the number {str(value)[:40]} is too large (at most 64 bits)")
    if isinstance(value, int | float):
        return value
    raise SpecError(f"{where or 'document'}: unsupported YAML value of type {type(value).__name__}")


def _text(value: str, where: str) -> str:
    """``value`` if it can be stored: a lone surrogate (a JSON ``\\ud800`` escape) cannot be UTF-8."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SpecError(f"{where or 'document'}: text with an unpaired surrogate escape") from None
    return value


def _key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if value is None:
        return "an empty document"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _json_problem(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"line {error.lineno}, column {error.colno}: {error.msg}"
    return str(error)


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "syntax error"
        if mark is not None:
            return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
        return problem
    return str(error)
