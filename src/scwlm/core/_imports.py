"""Imports of optional-heavy dependencies, done once and quietly."""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
from types import ModuleType


@functools.lru_cache(maxsize=None)
def quiet_import(name: str) -> ModuleType:
    """Import ``name`` with stdout captured (GeomLoss and POT import KeOps, which prints a CUDA
    notice on machines without a GPU)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return importlib.import_module(name)
