"""The compiled data plane (setup.py): mypyc builds every module it lists, and the data plane's
tests pass against the build.

The rest of the suite runs the editable install, whose modules are plain Python; a `pip install .`
runs the compiled ones, and mypyc's code is stricter than Python's in places (declared types are
checked at run time; a name bound by several `except ... as` clauses of different types fails).
So the build is made here, in a copy of the tree, and the tests of the modules it compiles run
against it in a pytest of their own."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The tests of the compiled modules and of what runs through them on every gateway call.
SUITES = ("tests/gateway", "tests/events", "tests/test_cli.py", "tests/test_app.py")

CHECK = '''
import importlib.util

import portico

COMPILED = {compiled!r}


def test_the_build_is_what_runs() -> None:
    assert portico.data_plane_kind() == "compiled"
    for path in COMPILED:
        name = path.removesuffix(".py").replace("/", ".")
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None and spec.origin.endswith(".so"), (name, spec)
'''


def compiled_modules() -> list[str]:
    """setup.py's COMPILED list, read without running setup.py."""
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "COMPILED" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED list")


def copy_tree(target: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info", ".pytest_cache", "build")
    for name in ("portico", "tests"):
        shutil.copytree(ROOT / name, target / name, ignore=skip)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)


@pytest.mark.timeout(1500)
def test_compiled_data_plane_passes_its_tests(tmp_path: Path) -> None:
    compiled = compiled_modules()
    tree = tmp_path / "tree"
    copy_tree(tree)
    env = {**os.environ, "PORTICO_COMPILE": "1"}
    env.pop("PYTHONPATH", None)
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree, env=env,
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-4000:]
    missing = [path for path in compiled if not list((tree / path).parent.glob(Path(path).stem + ".*.so"))]
    # OptionalBuildExt falls back to Python on a failed build: here, that is a failure.
    assert not missing, f"not compiled: {missing}\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    (tree / "tests" / "test_zz_compiled_build.py").write_text(CHECK.format(compiled=compiled))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-n", "2",
         *SUITES, "tests/test_zz_compiled_build.py"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
