"""The reference's policy-action parameters <-> plain mappings.

On the wire a parameter is ``{"templateKey": k, "values": [...]}`` or, for a
group, ``{"templateKey": k, "parameters": [...]}``; a key may repeat (several
identification rules). We turn that into ``{k: [values...] | [group, ...]}``
so pydantic can validate it, and back for the templates' examples."""

from __future__ import annotations

from typing import Any


class ParameterError(ValueError):
    pass


def parameters_to_mapping(parameters: Any, where: str = "parameters") -> dict[str, list[Any]]:
    if not isinstance(parameters, list):
        raise ParameterError(f"{where} must be a list of {{templateKey, values|parameters}} objects")
    out: dict[str, list[Any]] = {}
    for i, p in enumerate(parameters):
        here = f"{where}[{i}]"
        if not isinstance(p, dict) or not isinstance(p.get("templateKey"), str):
            raise ParameterError(f"{here} must be an object with a string 'templateKey'")
        key = p["templateKey"]
        if "parameters" in p:
            out.setdefault(key, []).append(parameters_to_mapping(p["parameters"], f"{here}.parameters"))
        else:
            values = p.get("values", [])
            if not isinstance(values, list):
                raise ParameterError(f"{here}.values must be a list")
            out.setdefault(key, []).extend(values)
    return out
