"""scwlm: Wasserstein Lagrangian Mechanics — learn how populations move from snapshots.

Array API: :func:`fit`, :func:`fit_many`, :class:`Mechanics`, :func:`load`.
AnnData layer: :mod:`scwlm.pp`, :mod:`scwlm.tl`, :mod:`scwlm.pl`. Data: :mod:`scwlm.datasets`.
Engine: :mod:`scwlm.core`.
"""

from __future__ import annotations

import importlib
from typing import Any

from .api import fit, fit_many
from .core.config import WLMConfig
from .core.trainer import TrainingDivergedError
from .mechanics import Mechanics, MechanicsEnsemble, load

__version__ = "0.1.0"

__all__ = [
    "fit", "fit_many", "load", "Mechanics", "MechanicsEnsemble", "WLMConfig", "TrainingDivergedError",
    "core", "datasets", "pp", "tl", "pl", "__version__",
]

_LAZY = {"core", "datasets", "pp", "tl", "pl"}


def __getattr__(name: str) -> Any:  # lazy submodules: scanpy/matplotlib load only when used
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
