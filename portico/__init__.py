from __future__ import annotations

import importlib.util

__version__ = "0.1.0"


def data_plane_kind() -> str:
    """``compiled`` when the data plane's modules are the mypyc build of ``setup.py`` (a regular
    ``pip install .``), ``interpreted`` when they run as Python (an editable install)."""
    spec = importlib.util.find_spec("portico.gateway.runtime")  # finds the module without importing it
    origin = spec.origin if spec is not None else None
    return "interpreted" if origin is None or origin.endswith(".py") else "compiled"
