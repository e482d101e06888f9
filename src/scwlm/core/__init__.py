"""The WLM engine: plain PyTorch + GeomLoss + POT, no AnnData.

Modules: :mod:`~scwlm.core.potential` (set-attention potential), :mod:`~scwlm.core.attention`
(row-blocked attention kernels of the analytic force), :mod:`~scwlm.core.integrate`
(damped leapfrog), :mod:`~scwlm.core.friction`, :mod:`~scwlm.core.divergence` (Sinkhorn loss),
:mod:`~scwlm.core.metrics` (exact W1), :mod:`~scwlm.core.snapshots` (validated inputs),
:mod:`~scwlm.core.trainer` (Algorithm 1) and :mod:`~scwlm.core.protocols` (evaluation).
"""

from .config import WLMConfig
from .divergence import SinkhornDivergence, blur_heuristic, point_cloud_diameter
from .friction import Friction
from .integrate import leapfrog, step_coefficients
from .metrics import mean_se, wasserstein1
from .potential import SetPotential
from .protocols import forecast, interpolate
from .snapshots import Snapshots, as_snapshots
from .trainer import Task, TrainingDivergedError, TrainResult, train

__all__ = [
    "WLMConfig", "SinkhornDivergence", "blur_heuristic", "point_cloud_diameter", "Friction", "leapfrog",
    "step_coefficients", "mean_se", "wasserstein1", "SetPotential", "forecast", "interpolate", "Snapshots",
    "as_snapshots", "Task", "TrainingDivergedError", "TrainResult", "train",
]
