"""Packaging hook: pure Python unless REELSCALE_NATIVE=1, which compiles the edge's hot path.

Everything else about the package is in pyproject.toml. Without the variable this file
passes nothing to setup(), so `pip install -e .` and every other install are what they were
without it. With REELSCALE_NATIVE=1 the modules listed in src/reelscale/edge/native.py
(NATIVE_MODULES) are compiled with mypyc. Build that only into a directory of its own, as
`reelscale edge build-native` does: a compiled module next to its .py in the working tree
would be imported instead of the .py and hide every later edit of it.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

from setuptools import setup

HERE = Path(__file__).resolve().parent
MODULE_LIST = HERE / "src" / "reelscale" / "edge" / "native.py"


def native_modules() -> list[str]:
    """The modules to compile: none unless REELSCALE_NATIVE=1."""
    if os.environ.get("REELSCALE_NATIVE") != "1":
        return []
    # Read, not imported: building must not need reelscale or its dependencies importable.
    for node in ast.parse(MODULE_LIST.read_text()).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "NATIVE_MODULES" for t in targets):
                return [str(name) for name in ast.literal_eval(node.value)]
    raise RuntimeError(f"no NATIVE_MODULES in {MODULE_LIST}")


def setup_arguments() -> dict[str, Any]:
    modules = native_modules()
    if not modules:
        return {}
    from mypyc.build import mypycify  # only the native build needs mypy installed

    # Relative paths: setuptools runs this file from the project's root, and mypy names
    # each module from its path below src/.
    paths = [str(Path("src", *module.split(".")).with_suffix(".py")) for module in modules]
    return {
        "ext_modules": mypycify(
            ["--config-file", str(HERE / "pyproject.toml"), *paths],
            opt_level="3",
            debug_level="1",
        )
    }


if __name__ == "__main__":  # setuptools' build backend runs this file as __main__
    setup(**setup_arguments())
