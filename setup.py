"""Portico's build: the metadata is in pyproject.toml; this file only adds the compiled data plane.

The modules every gateway call runs through are compiled to C with mypyc (they are fully typed:
`mypy portico` is clean), which takes about a third off the instructions of a proxied call. The
compiled modules behave as the Python ones; `tests/test_compiled.py` builds them and runs the data
plane's tests against them.

- `pip install .` compiles them (it needs a C compiler and the Python headers; a build that fails
  falls back to plain Python, with a warning, and Portico runs the same, only slower);
- `pip install -e .` (development) does not, so edits take effect without a rebuild;
- `PORTICO_COMPILE=1` or `=0` forces the choice; `python setup.py build_ext --inplace` compiles in
  the source tree (remove the `.so` files next to the modules to run the Python again).

`portico --version` says which kind is running.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The per-request path of the data plane (see docs/architecture.md, "The path of one gateway
# request"). A compiled module may subclass only compiled classes and Exception, and its classes
# cannot be subclassed or patched from Python: keep such code out of these modules.
COMPILED = [
    "portico/ids.py",
    "portico/events/calls.py",
    "portico/gateway/endpoint.py",
    "portico/policies/_identify/verdict.py",
    "portico/gateway/exchange.py",
    "portico/gateway/http.py",
    "portico/gateway/proxy.py",
    "portico/gateway/router.py",
    "portico/gateway/runtime.py",
    "portico/gateway/server.py",
    "portico/gateway/upstream.py",
    "portico/gateway/view.py",
]


def compile_wanted() -> bool:
    choice = os.environ.get("PORTICO_COMPILE", "")
    if choice in ("0", "1"):
        return choice == "1"
    return "editable_wheel" not in sys.argv  # an editable install is for development: plain Python


class OptionalBuildExt(build_ext):
    """All of the compiled modules or none: a failed build leaves the plain Python modules."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no compiler, no headers, a mypyc failure
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            self.warn(f"portico: the data plane is not compiled ({error}); it runs as plain Python")


def ext_modules() -> list[object]:
    if not compile_wanted():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("portico: mypyc is not installed; the data plane runs as plain Python", file=sys.stderr)
        return []
    # --ignore-missing-imports: an isolated build environment has mypy but not Portico's
    # dependencies; their types are then unknown to mypyc, which checks them at run time less.
    try:
        return list(mypycify(["--ignore-missing-imports", *COMPILED], opt_level="3"))
    except (Exception, SystemExit) as error:  # mypyc's type check failed (it exits)
        print(f"portico: mypyc cannot compile the data plane ({error}); it runs as plain Python", file=sys.stderr)
        return []


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
