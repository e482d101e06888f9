r"""Reference predictors that WLM must beat (computed on the same data as WLM).

Interpolation
    :func:`mccann_interpolation`: McCann's displacement interpolation between two observed
    snapshots along their exact optimal transport plan for the squared Euclidean cost (POT's
    network simplex): mass :math:`\pi_{ij}` travels on the straight line from :math:`x_i` to
    :math:`y_j`, so at fraction :math:`s` it sits at :math:`(1 - s)\,x_i + s\,y_j` (McCann 1997).
    The "previous snapshot" baseline is simply the earlier snapshot itself.
    :func:`interpolation_baselines` scores both for a held-out snapshot, between the observed
    neighbours the interpolation protocol uses (:func:`~scwlm.core.protocols.previous_observed`
    and :func:`next_observed`); :mod:`scwlm.tl` and the benchmarks use it. Exact on all points
    for snapshots of at most 5,000 points, on seeded bounded subsamples for larger ones (the
    result says which).
Forecast
    The last training snapshot, unchanged (carry-forward: compare it directly), and, when
    velocities are known, :func:`constant_velocity` (:math:`x + (t - t_0)\,v`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._imports import quiet_import
from .metrics import W1_EXACT_MAX_POINTS, _as_numpy, mean_se, wasserstein1, wasserstein1_scalable
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


def interpolation_baselines(
    snapshots: Sequence,
    times: Sequence[float],
    h: int,
    holdout: Sequence[int],
    *,
    w1_max_points: int = W1_EXACT_MAX_POINTS,
    w1_subsample: int | None = None,
    w1_draws: int = 5,
    w1_seed: int = 0,
    progress: bool | None = None,
) -> dict:
    r"""McCann and previous-snapshot :math:`W_1` for the held-out snapshot ``h``.

    The neighbours are the observed snapshots around ``h`` when the snapshots at ``holdout`` are
    hidden: ``start`` = :func:`~scwlm.core.protocols.previous_observed` (where the interpolation
    protocol starts its rollout) and ``end`` = :func:`next_observed`. McCann's interpolation
    between them at ``fraction`` :math:`= (t_h - t_s) / (t_e - t_s)` and the start snapshot itself
    are compared with snapshot ``h``.

    **Small snapshots** (``start``, ``end`` and ``h`` with at most ``w1_max_points`` points each,
    5,000 by default): exact optimal transport on all points, as the paper does (method
    ``"exact"``). **Large snapshots**: exact OT on all points is out of reach (a 40k x 40k plan),
    so both baselines are estimated on bounded subsamples, exactly like the model's :math:`W_1`
    in :mod:`scwlm.core.protocols` (method ``"subsampled"``): each of ``w1_draws`` draws takes
    ``min(n, w1_subsample)`` points of every cloud uniformly without replacement, computes the
    McCann interpolation between the start and end subsamples and the exact :math:`W_1` of it
    (and of the start subsample) to the held-out subsample; the value is the mean over draws and
    ``*_se`` its standard error. The start and held-out subsamples come from
    ``numpy.random.default_rng((w1_seed, h))`` in the order the protocol draws them for the
    model's prediction (one row per start cell), so the previous-snapshot baseline and the model
    are scored on the very same held-out cells in every draw; the end subsamples come from
    ``default_rng((w1_seed, h, 1))``. Memory and time are bounded by problems of
    ``w1_subsample`` points, whatever the number of cells.

    Parameters
    ----------
    snapshots, times
        All snapshots (arrays ``(n_i, d)``) and their times.
    h
        Index of the held-out snapshot.
    holdout
        Indices of all held-out snapshots (they are not used as neighbours).
    w1_max_points, w1_subsample, w1_draws, w1_seed
        As in :func:`~scwlm.core.protocols.interpolate` (``w1_subsample`` defaults to
        ``w1_max_points``).
    progress
        Show a progress bar over the draws (default: only when subsampling).

    Returns
    -------
    dict
        ``start``, ``end`` (indices), ``fraction``, ``w1_mccann``, ``w1_previous``;
        ``w1_mccann_method`` / ``w1_previous_method`` (``"exact"`` or ``"subsampled"``),
        ``w1_mccann_se`` / ``w1_previous_se`` (0 when exact) and ``w1_settings``
        (``max_points``, ``subsample``, ``n_draws``, ``seed``).

    Examples
    --------
    >>> import numpy as np
    >>> snaps = [np.zeros((3, 1)), np.ones((3, 1)), 2 * np.ones((3, 1))]
    >>> b = interpolation_baselines(snaps, [0.0, 1.0, 2.0], 1, [1])
    >>> b["start"], b["end"], b["fraction"], round(b["w1_mccann"], 6), b["w1_previous"]
    (0, 2, 0.5, 0.0, 1.0)
    >>> b["w1_mccann_method"], b["w1_previous_method"]
    ('exact', 'exact')

    Snapshots larger than ``w1_max_points`` (here forced small) are subsampled:

    >>> rng = np.random.default_rng(0)
    >>> big = [rng.normal(size=(40, 2)) + t for t in range(3)]
    >>> b = interpolation_baselines(big, [0.0, 1.0, 2.0], 1, [1], w1_max_points=20, w1_draws=3)
    >>> b["w1_mccann_method"], b["w1_settings"]["subsample"], b["w1_mccann_se"] > 0
    ('subsampled', 20, True)
    """
    for name, v in (("w1_max_points", w1_max_points), ("w1_draws", w1_draws)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    subsample = w1_max_points if w1_subsample is None else w1_subsample
    if isinstance(subsample, bool) or not isinstance(subsample, (int, np.integer)) or subsample < 2:
        raise ValueError(f"w1_subsample must be an integer >= 2, got {w1_subsample!r}")
    if isinstance(w1_seed, bool) or not isinstance(w1_seed, (int, np.integer)) or w1_seed < 0:
        raise ValueError(f"w1_seed must be a non-negative integer, got {w1_seed!r}")
    s = previous_observed(h, holdout)
    e = next_observed(h, holdout, len(snapshots))
    frac = float((times[h] - times[s]) / (times[e] - times[s]))
    xs, xe, xh = snapshots[s], snapshots[e], snapshots[h]
    settings = {"max_points": int(w1_max_points), "subsample": int(subsample), "n_draws": int(w1_draws),
                "seed": int(w1_seed)}
    large = max(len(xs), len(xe), len(xh)) > w1_max_points
    bar = None
    if (large if progress is None else bool(progress)):
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * int(w1_draws) if large else 2, desc=f"baselines W1 (holdout {h})", leave=False)
    # previous snapshot: the protocol's estimator, with the protocol's seed for this holdout
    prev = wasserstein1_scalable(xs, xh, max_points=int(w1_max_points), subsample=int(subsample),
                                 n_draws=int(w1_draws), seed=(int(w1_seed), int(h)))
    if bar is not None:
        bar.update(int(w1_draws) if large else 1)
    if not large:
        pts, w = mccann_interpolation(xs, xe, frac)
        mccann, mccann_se, mccann_method = float(wasserstein1(pts, xh, x_weights=w)), 0.0, "exact"
        if bar is not None:
            bar.update(1)
    else:
        xs_np, xe_np, xh_np = _as_numpy(xs), _as_numpy(xe), _as_numpy(xh)
        rng = np.random.default_rng((int(w1_seed), int(h)))  # start, held-out: as the protocol draws them
        rng_end = np.random.default_rng((int(w1_seed), int(h), 1))
        values = []
        for _ in range(int(w1_draws)):
            i_s, i_h = _draw(rng, len(xs_np), subsample), _draw(rng, len(xh_np), subsample)
            i_e = _draw(rng_end, len(xe_np), subsample)
            pts, w = mccann_interpolation(xs_np[i_s], xe_np[i_e], frac)
            values.append(wasserstein1(pts, xh_np[i_h], x_weights=w))
            if bar is not None:
                bar.update(1)
        mccann, mccann_se = mean_se(values)
        mccann_method = "subsampled"
    if bar is not None:
        bar.close()
    return {
        "start": s, "end": e, "fraction": frac,
        "w1_mccann": float(mccann), "w1_previous": float(prev.value),
        "w1_mccann_method": mccann_method, "w1_previous_method": "exact" if prev.exact else "subsampled",
        "w1_mccann_se": float(mccann_se), "w1_previous_se": float(prev.se), "w1_settings": settings,
    }


def _draw(rng: np.random.Generator, n: int, subsample: int):
    """Indices of ``min(n, subsample)`` points drawn without replacement (all points, and no draw,
    when ``n <= subsample``: as :func:`~scwlm.core.metrics.wasserstein1_scalable` does)."""
    return rng.choice(n, size=int(subsample), replace=False) if subsample < n else slice(None)


def constant_velocity(x, v, dt: float) -> np.ndarray:
    """Free flight: every point moves with its observed velocity for ``dt``."""
    x, v = _as_numpy(x), _as_numpy(v)
    if x.shape != v.shape:
        raise ValueError(f"velocities {v.shape} do not match points {x.shape}")
    return x + dt * v
