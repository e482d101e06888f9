r"""Evaluation metrics: the exact Wasserstein-1 distance and mean +- standard error summaries."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ._imports import quiet_import

__all__ = ["wasserstein1", "mean_se"]


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def wasserstein1(x, y, *, x_weights=None, y_weights=None, num_iter_max: int = 10_000_000) -> float:
    r"""Exact :math:`W_1` between two point clouds (uniform weights unless given).

    .. math::
        W_1(\hat\mu, \hat\nu) = \min_{\pi \in \Pi(\hat\mu, \hat\nu)} \sum_{ij} \pi_{ij}\, \|x_i - y_j\|_2,

    solved as a linear programme by POT's network simplex (:func:`ot.emd2`) in float64, with the
    Euclidean ground cost. Non-finite predicted points (a diverged rollout) make the result ``inf``.

    Parameters
    ----------
    x, y
        Arrays ``(n, d)`` and ``(m, d)`` (NumPy or torch).
    x_weights, y_weights
        Optional non-negative weights (normalised to sum to one); uniform by default.

    Examples
    --------
    >>> import numpy as np
    >>> round(wasserstein1(np.zeros((3, 2)), np.ones((4, 2))), 6)
    1.414214
    """
    ot = quiet_import("ot")
    x, y = _as_numpy(x), _as_numpy(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected (n, d) and (m, d) arrays, got {x.shape} and {y.shape}")
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError("W1 is undefined for an empty point cloud")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return math.inf
    M = ot.dist(x, y, metric="euclidean")
    a = _weights(x_weights, x.shape[0], "x_weights")
    b = _weights(y_weights, y.shape[0], "y_weights")
    return float(ot.emd2(a, b, M, numItermax=num_iter_max))


def _weights(w, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = _as_numpy(w).reshape(-1)
    if w.shape[0] != n or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{name} must be {n} finite non-negative numbers with a positive sum")
    return w / w.sum()


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (sample std / sqrt(n); 0 for a single value) of ``values``.

    Examples
    --------
    >>> mean_se([1.0, 2.0, 3.0])
    (2.0, 0.5773502691896258)
    """
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return float(v.mean()), se
