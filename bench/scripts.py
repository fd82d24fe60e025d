"""Reuse of the standalone scripts (``bench/engine.py``, ``bench/sae.py``...) from the package.

Those scripts import their helpers as a top-level ``_common`` (run as ``python bench/x.py``, their
folder is on ``sys.path``). Importing one as ``bench.x`` needs that name to resolve too: it is
pointed at ``bench._common`` so that both spellings share one module.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def script(name: str) -> ModuleType:
    """The module ``bench/{name}.py``, importable although it says ``from _common import ...``."""
    sys.modules.setdefault("_common", importlib.import_module("bench._common"))
    return importlib.import_module(f"bench.{name}")
