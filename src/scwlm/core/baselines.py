r"""Reference predictors that WLM must beat (computed on the same data as WLM).

Interpolation
    :func:`mccann_interpolation`: McCann's displacement interpolation between two observed
    snapshots along their exact optimal transport plan for the squared Euclidean cost (POT's
    network simplex): mass :math:`\pi_{ij}` travels on the straight line from :math:`x_i` to
    :math:`y_j`, so at fraction :math:`s` it sits at :math:`(1 - s)\,x_i + s\,y_j` (McCann 1997).
    The "previous snapshot" baseline is simply the earlier snapshot itself.
    :func:`interpolation_baselines` scores both for a held-out snapshot, between the observed
    neighbours the interpolation protocol uses (:func:`~scwlm.core.protocols.previous_observed`
    and :func:`next_observed`); :mod:`scwlm.tl` and the benchmarks use it.
Forecast
    The last training snapshot, unchanged (carry-forward: compare it directly), and, when
    velocities are known, :func:`constant_velocity` (:math:`x + (t - t_0)\,v`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._imports import quiet_import
from .metrics import _as_numpy, wasserstein1
from .protocols import previous_observed

__all__ = ["mccann_interpolation", "interpolation_baselines", "next_observed", "constant_velocity"]


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


def next_observed(h: int, holdout: Sequence[int], n_snapshots: int) -> int:
    """Index of the first snapshot after ``h`` that is not held out (the mirror of
    :func:`~scwlm.core.protocols.previous_observed`)."""
    held = set(holdout)
    nxt = [i for i in range(h + 1, n_snapshots) if i not in held]
    if not nxt:
        raise ValueError(f"held-out snapshot {h} has no later observed snapshot to interpolate towards")
    return nxt[0]


def interpolation_baselines(snapshots: Sequence, times: Sequence[float], h: int, holdout: Sequence[int]) -> dict:
    r"""McCann and previous-snapshot :math:`W_1` for the held-out snapshot ``h``.

    The neighbours are the observed snapshots around ``h`` when the snapshots at ``holdout`` are
    hidden: ``start`` = :func:`~scwlm.core.protocols.previous_observed` (where the interpolation
    protocol starts its rollout) and ``end`` = :func:`next_observed`. McCann's interpolation
    between them at ``fraction`` :math:`= (t_h - t_s) / (t_e - t_s)` and the start snapshot itself
    are compared with snapshot ``h`` by exact :math:`W_1`.

    Returns
    -------
    dict
        ``start``, ``end`` (indices), ``fraction``, ``w1_mccann``, ``w1_previous``.

    Examples
    --------
    >>> import numpy as np
    >>> snaps = [np.zeros((3, 1)), np.ones((3, 1)), 2 * np.ones((3, 1))]
    >>> b = interpolation_baselines(snaps, [0.0, 1.0, 2.0], 1, [1])
    >>> b["start"], b["end"], b["fraction"], round(b["w1_mccann"], 6), b["w1_previous"]
    (0, 2, 0.5, 0.0, 1.0)
    """
    s = previous_observed(h, holdout)
    e = next_observed(h, holdout, len(snapshots))
    frac = float((times[h] - times[s]) / (times[e] - times[s]))
    pts, w = mccann_interpolation(snapshots[s], snapshots[e], frac)
    return {
        "start": s, "end": e, "fraction": frac,
        "w1_mccann": float(wasserstein1(pts, snapshots[h], x_weights=w)),
        "w1_previous": float(wasserstein1(snapshots[s], snapshots[h])),
    }


def constant_velocity(x, v, dt: float) -> np.ndarray:
    """Free flight: every point moves with its observed velocity for ``dt``."""
    x, v = _as_numpy(x), _as_numpy(v)
    if x.shape != v.shape:
        raise ValueError(f"velocities {v.shape} do not match points {x.shape}")
    return x + dt * v
