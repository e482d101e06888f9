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


# ---------------------------------------------------------------------------- W1 that scales
from typing import Any, NamedTuple  # noqa: E402  (this section is appended to the module)

#: clouds with at most this many points on both sides get the exact W1 on all points
W1_EXACT_MAX_POINTS = 5000


class W1Estimate(NamedTuple):
    """Result of :func:`wasserstein1_scalable`.

    Attributes
    ----------
    value
        The exact :math:`W_1` on all points (``exact``), else the mean over the draws.
    se
        Standard error of the mean over the draws (sample std / sqrt(n_draws)); 0 when exact.
    n_draws
        Number of subsample pairs (1 when exact).
    subsample
        Points drawn from each cloud per draw (``None`` when exact).
    exact
        Whether all points were used.
    seed
        The seed of the subsamples (``None`` when exact).
    """

    value: float
    se: float
    n_draws: int
    subsample: int | None
    exact: bool
    seed: Any = None


def wasserstein1_scalable(
    x,
    y,
    *,
    max_points: int = W1_EXACT_MAX_POINTS,
    subsample: int | None = None,
    n_draws: int = 5,
    seed: int | Sequence[int] = 0,
    progress: bool = False,
) -> W1Estimate:
    r""":math:`W_1` with bounded cost: exact on all points for small clouds, else on subsamples.

    When both clouds have at most ``max_points`` points this is :func:`wasserstein1` on all of them
    (the same float, bit for bit). Otherwise every one of ``n_draws`` draws takes
    ``min(n, subsample)`` points of ``x`` and ``min(m, subsample)`` of ``y`` uniformly without
    replacement (independently of each other and of the other draws, from
    ``numpy.random.default_rng(seed)``) and solves the exact problem on them; the result is the
    mean and the standard error over the draws. Memory is :math:`O(\text{subsample}^2)` and time
    that of one exact problem of that size per draw, whatever the number of points.

    The subsampled value estimates :math:`\mathbb E\, W_1(\hat x_s, \hat y_s)` of clouds of
    ``subsample`` points, which is larger than :math:`W_1` of the full clouds by the subsampling
    bias (it shrinks as ``subsample`` grows, roughly like ``subsample ** (-1 / d)``); ``se`` measures
    the spread over draws only. Compare methods with the same ``subsample`` and ``seed``.

    Parameters
    ----------
    x, y
        Arrays ``(n, d)`` and ``(m, d)`` (NumPy or torch).
    max_points
        Largest cloud size for the exact computation on all points.
    subsample
        Points per cloud and draw when subsampling (default ``max_points``).
    n_draws
        Number of draws when subsampling.
    seed
        Seed of the draws (an integer or a sequence of integers, e.g. ``(seed, time_index)``).
    progress
        Show a progress bar over the draws.

    Returns
    -------
    W1Estimate
        ``(value, se, n_draws, subsample, exact, seed)``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(300, 2)), rng.normal(size=(200, 2)) + 1.0
    >>> est = wasserstein1_scalable(x, y)
    >>> est.exact, est.value == wasserstein1(x, y), est.se
    (True, True, 0.0)
    >>> est = wasserstein1_scalable(x, y, max_points=100, subsample=100, n_draws=4, seed=1)
    >>> est.exact, est.n_draws, est.subsample, est.se > 0
    (False, 4, 100, True)
    """
    for name, v in (("max_points", max_points), ("n_draws", n_draws)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if subsample is None:
        subsample = max_points
    if isinstance(subsample, bool) or not isinstance(subsample, (int, np.integer)) or subsample < 2:
        raise ValueError(f"subsample must be an integer >= 2, got {subsample!r}")
    x, y = _as_numpy(x), _as_numpy(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected (n, d) and (m, d) arrays, got {x.shape} and {y.shape}")
    if x.shape[0] <= max_points and y.shape[0] <= max_points:
        return W1Estimate(wasserstein1(x, y), 0.0, 1, None, True, None)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return W1Estimate(math.inf, 0.0, int(n_draws), int(subsample), False, seed)
    rng = np.random.default_rng(seed)
    nx, ny = min(x.shape[0], int(subsample)), min(y.shape[0], int(subsample))
    draws = range(int(n_draws))
    if progress:
        from tqdm.auto import tqdm

        draws = tqdm(draws, desc=f"W1 ({n_draws} draws of {subsample})", leave=False)
    values = []
    for _ in draws:
        ix = rng.choice(x.shape[0], size=nx, replace=False) if nx < x.shape[0] else slice(None)
        iy = rng.choice(y.shape[0], size=ny, replace=False) if ny < y.shape[0] else slice(None)
        values.append(wasserstein1(x[ix], y[iy]))
    value, se = mean_se(values)
    return W1Estimate(value, se, int(n_draws), int(subsample), False, seed)


__all__ += ["wasserstein1_scalable", "W1Estimate", "W1_EXACT_MAX_POINTS"]
