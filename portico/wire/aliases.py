"""The reference's JSON shape of aliases (``/alias``)."""

from __future__ import annotations

from typing import Any

from portico.domain.alias import ENDPOINT_ONLY, SIMPLE_ONLY, Alias


def alias_body(alias: Alias) -> dict[str, Any]:
    """The reference's JSON shape of one alias (only the fields of its type)."""
    out = alias.model_dump(exclude_none=True)
    drop = ENDPOINT_ONLY if alias.type == "simple" else SIMPLE_ONLY
    return {k: v for k, v in out.items() if k not in drop}
