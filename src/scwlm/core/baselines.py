r"""Reference predictors that WLM must beat (computed on the same data as WLM).

Interpolation
    :func:`mccann_interpolation`: McCann's displacement interpolation between two observed
    snapshots along their exact optimal transport plan for the squared Euclidean cost (POT's
    network simplex): mass :math:`\pi_{ij}` travels on the straight line from :math:`x_i` to
    :math:`y_j`, so at fraction :math:`s` it sits at :math:`(1 - s)\,x_i + s\,y_j` (McCann 1997).
    The "previous snapshot" baseline is simply the earlier snapshot itself.
Forecast
    :func:`carry_forward` (the last training snapshot, unchanged) and, when velocities are
    known, :func:`constant_velocity` (:math:`x + (t - t_0)\,v`).
"""

from __future__ import annotations

import numpy as np

from ._imports import quiet_import
from .metrics import _as_numpy

__all__ = ["mccann_interpolation", "carry_forward", "constant_velocity"]


def mccann_interpolation(x, y, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Displacement interpolation at fraction ``s`` in [0, 1] between clouds ``x (n, d)`` and ``y (m, d)``.

    Returns
    -------
    points, weights
        The interpolated support (one point per non-zero entry of the optimal plan) and its masses
        (summing to one); pass both to :func:`~scwlm.core.metrics.wasserstein1`.

    Examples
    --------
    >>> import numpy as np
    >>> pts, w = mccann_interpolation(np.zeros((2, 1)), np.array([[2.0], [4.0]]), 0.5)
    >>> sorted(pts.ravel().tolist()), w.tolist()
    ([1.0, 2.0], [0.5, 0.5])
    """
    ot = quiet_import("ot")
    x, y = _as_numpy(x), _as_numpy(y)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"s must lie in [0, 1], got {s}")
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected (n, d) and (m, d) arrays, got {x.shape} and {y.shape}")
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    b = np.full(y.shape[0], 1.0 / y.shape[0])
    plan = ot.emd(a, b, ot.dist(x, y, metric="sqeuclidean"), numItermax=10_000_000)
    i, j = np.nonzero(plan > 1e-15)
    w = plan[i, j]
    return (1.0 - s) * x[i] + s * y[j], w / w.sum()


def carry_forward(x) -> np.ndarray:
    """The last observed snapshot, unchanged (the trivial forecast)."""
    return _as_numpy(x).copy()


def constant_velocity(x, v, dt: float) -> np.ndarray:
    """Free flight: every point moves with its observed velocity for ``dt``."""
    x, v = _as_numpy(x), _as_numpy(v)
    if x.shape != v.shape:
        raise ValueError(f"velocities {v.shape} do not match points {x.shape}")
    return x + dt * v
