r"""The paper's evaluation protocols (§4): forecasting and leave-one-out interpolation.

Both compare predicted and observed clouds with the exact :math:`W_1` distance
(:func:`~scwlm.core.metrics.wasserstein1`) when both clouds have at most ``w1_max_points`` points
(5,000 by default), and otherwise with the mean over ``w1_draws`` draws of exact :math:`W_1` on
subsamples of ``w1_subsample`` points (:func:`~scwlm.core.metrics.wasserstein1_scalable`; seed
``(w1_seed, i)`` for time index ``i``). The returned dict says which was used at every time
(``w1_method``: ``"exact"`` or ``"subsampled"``, and ``"none"`` at :math:`t_0` in a forecast;
strings only, so the dict can be stored in ``adata.uns``), the standard error over draws
(``w1_se``, 0 when exact) and the settings (``w1_settings``); results on small clouds are those of
the exact :math:`W_1` on all points.

Forecast
    One rollout from :math:`t_0` (with :math:`v_0`) over the whole time course; :math:`W_1` at every
    later time, summarised separately over the training times :math:`t_1..t_{n_{train}-1}` and the
    held-out future times :math:`t_{n_{train}}..t_M`.
Interpolate
    Every held-out time :math:`t_h` is predicted by a rollout that restarts from the previous
    *observed* snapshot :math:`X_{h'}` (:math:`h' = \max\{i < h,\ i \notin \text{holdout}\}`) with its
    own velocities when available, else zero.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from .metrics import W1_EXACT_MAX_POINTS, mean_se, wasserstein1_scalable
from .snapshots import Snapshots

__all__ = ["forecast", "interpolate", "previous_observed"]

Simulate = Callable[[torch.Tensor, torch.Tensor | None, float, Sequence[float]], np.ndarray]


class _W1:
    """The W1 of one protocol: exact on small clouds, subsampled on large ones; keeps the record."""

    def __init__(self, max_points: int, subsample: int | None, n_draws: int, seed: int, progress: bool | None,
                 sizes: Sequence[int], total: int) -> None:
        self.kw = dict(max_points=max_points, subsample=subsample, n_draws=n_draws)
        self.seed = seed
        self.se: list[float] = []
        self.method: list[str] = []
        large = any(n > max_points for n in sizes)
        show = large if progress is None else bool(progress)
        self.bar = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="W1 evaluation", leave=False)

    def __call__(self, pred, obs, index: int) -> float:
        est = wasserstein1_scalable(pred, obs, seed=(int(self.seed), int(index)), **self.kw)
        self.se.append(est.se)
        self.method.append("exact" if est.exact else "subsampled")
        if self.bar is not None:
            self.bar.update(1)
        return est.value

    def skip(self) -> None:
        self.se.append(float("nan"))
        self.method.append("none")

    def record(self, out: dict) -> dict:
        if self.bar is not None:
            self.bar.close()
        kw = self.kw
        out["w1_se"], out["w1_method"] = self.se, self.method
        out["w1_settings"] = {
            "max_points": int(kw["max_points"]), "n_draws": int(kw["n_draws"]), "seed": int(self.seed),
            "subsample": int(kw["subsample"] if kw["subsample"] is not None else kw["max_points"]),
        }
        return out


def forecast(
    simulate: Simulate,
    snaps: Snapshots,
    n_train: int,
    *,
    w1_max_points: int = W1_EXACT_MAX_POINTS,
    w1_subsample: int | None = None,
    w1_draws: int = 5,
    w1_seed: int = 0,
    progress: bool | None = None,
) -> dict:
    """Forecast protocol; ``simulate(x0, v0, t0, times) -> (len(times), n, d)`` array.

    ``w1_max_points``, ``w1_subsample``, ``w1_draws`` and ``w1_seed`` choose between the exact
    W1 on all points and its subsampled estimate (module docstring); ``progress`` shows a bar over
    the times (default: only when a cloud is larger than ``w1_max_points``).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from scwlm.core.snapshots import as_snapshots
    >>> s = as_snapshots([np.zeros((5, 1)), np.ones((5, 1)), 2 * np.ones((5, 1))], [0, 1, 2])
    >>> stay = lambda x0, v0, t0, times: np.stack([x0.numpy()] * len(times))
    >>> ev = forecast(stay, s, n_train=2)
    >>> ev["w1"], ev["w1_method"]
    ([nan, 1.0, 2.0], ['none', 'exact', 'exact'])
    """
    M = len(snaps) - 1
    if not 1 <= n_train <= M + 1:
        raise ValueError(f"n_train must lie in 1..{M + 1} (number of snapshots), got {n_train}")
    times = snaps.times.tolist()
    pred = simulate(snaps.points[0], snaps.velocities[0], times[0], times[1:])
    sizes = [int(snaps.points[0].shape[0])] + [int(p.shape[0]) for p in snaps.points[1:]]
    metric = _W1(w1_max_points, w1_subsample, w1_draws, w1_seed, progress, sizes, M)
    metric.skip()
    w1 = [float("nan")] + [metric(pred[i - 1], snaps.points[i], i) for i in range(1, M + 1)]
    train_idx, test_idx = list(range(1, n_train)), list(range(n_train, M + 1))
    out = {"protocol": "forecast", "times": times, "w1": w1, "n_train": n_train, "train_indices": train_idx, "test_indices": test_idx}
    out["train_mean"], out["train_se"] = mean_se([w1[i] for i in train_idx])
    out["test_mean"], out["test_se"] = mean_se([w1[i] for i in test_idx])
    return metric.record(out)


def previous_observed(h: int, holdout: Sequence[int]) -> int:
    """Index of the last snapshot before ``h`` that is not held out."""
    prev = [i for i in range(h) if i not in set(holdout)]
    if not prev:
        raise ValueError(f"held-out snapshot {h} has no earlier observed snapshot to start from")
    return prev[-1]


def interpolate(
    simulate: Simulate,
    snaps: Snapshots,
    holdout: Sequence[int],
    *,
    w1_max_points: int = W1_EXACT_MAX_POINTS,
    w1_subsample: int | None = None,
    w1_draws: int = 5,
    w1_seed: int = 0,
    progress: bool | None = None,
) -> dict:
    """Leave-one-out interpolation protocol for the snapshots at indices ``holdout``.

    The ``w1_*`` settings and ``progress`` are those of :func:`forecast` (``w1_se`` and
    ``w1_method`` have one entry per held-out index).

    Examples
    --------
    >>> import numpy as np
    >>> from scwlm.core.snapshots import as_snapshots
    >>> s = as_snapshots([np.zeros((5, 1)), np.ones((5, 1)), 2 * np.ones((5, 1))], [0, 1, 2])
    >>> stay = lambda x0, v0, t0, times: np.stack([x0.numpy()] * len(times))
    >>> interpolate(stay, s, [1])["w1"]
    [1.0]

    Large clouds get the subsampled estimate (here forced with a small ``w1_max_points``):

    >>> ev = interpolate(stay, s, [1], w1_max_points=3, w1_subsample=3, w1_draws=2)
    >>> ev["w1"], ev["w1_method"], ev["w1_settings"]["n_draws"]
    ([1.0], ['subsampled'], 2)
    """
    M = len(snaps) - 1
    holdout = sorted({int(h) for h in holdout})
    if not holdout:
        raise ValueError("the interpolation protocol needs at least one held-out index")
    for h in holdout:
        if not 1 <= h <= M:
            raise ValueError(f"holdout index {h} out of range 1..{M}")
    times = snaps.times.tolist()
    starts, w1 = [], []
    sizes = [int(p.shape[0]) for p in snaps.points]
    metric = _W1(w1_max_points, w1_subsample, w1_draws, w1_seed, progress, sizes, len(holdout))
    for h in holdout:
        s = previous_observed(h, holdout)
        pred = simulate(snaps.points[s], snaps.velocities[s], times[s], [times[h]])
        starts.append(s)
        w1.append(metric(pred[0], snaps.points[h], h))
    out = {"protocol": "interpolate", "times": times, "holdout": holdout, "start": starts, "w1": w1}
    out["test_mean"], out["test_se"] = mean_se(w1)
    return metric.record(out)
