r"""The paper's evaluation protocols (§4): forecasting and leave-one-out interpolation.

Both compare predicted and observed clouds with the exact :math:`W_1` distance
(:func:`~scwlm.core.metrics.wasserstein1`).

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

from .metrics import mean_se, wasserstein1
from .snapshots import Snapshots

__all__ = ["forecast", "interpolate", "previous_observed"]

Simulate = Callable[[torch.Tensor, torch.Tensor | None, float, Sequence[float]], np.ndarray]


def forecast(simulate: Simulate, snaps: Snapshots, n_train: int) -> dict:
    """Forecast protocol; ``simulate(x0, v0, t0, times) -> (len(times), n, d)`` array.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from scwlm.core.snapshots import as_snapshots
    >>> s = as_snapshots([np.zeros((5, 1)), np.ones((5, 1)), 2 * np.ones((5, 1))], [0, 1, 2])
    >>> stay = lambda x0, v0, t0, times: np.stack([x0.numpy()] * len(times))
    >>> forecast(stay, s, n_train=2)["w1"]
    [nan, 1.0, 2.0]
    """
    M = len(snaps) - 1
    if not 1 <= n_train <= M + 1:
        raise ValueError(f"n_train must lie in 1..{M + 1} (number of snapshots), got {n_train}")
    times = snaps.times.tolist()
    pred = simulate(snaps.points[0], snaps.velocities[0], times[0], times[1:])
    w1 = [float("nan")] + [wasserstein1(pred[i - 1], snaps.points[i]) for i in range(1, M + 1)]
    train_idx, test_idx = list(range(1, n_train)), list(range(n_train, M + 1))
    out = {"protocol": "forecast", "times": times, "w1": w1, "n_train": n_train, "train_indices": train_idx, "test_indices": test_idx}
    out["train_mean"], out["train_se"] = mean_se([w1[i] for i in train_idx])
    out["test_mean"], out["test_se"] = mean_se([w1[i] for i in test_idx])
    return out


def previous_observed(h: int, holdout: Sequence[int]) -> int:
    """Index of the last snapshot before ``h`` that is not held out."""
    prev = [i for i in range(h) if i not in set(holdout)]
    if not prev:
        raise ValueError(f"held-out snapshot {h} has no earlier observed snapshot to start from")
    return prev[-1]


def interpolate(simulate: Simulate, snaps: Snapshots, holdout: Sequence[int]) -> dict:
    """Leave-one-out interpolation protocol for the snapshots at indices ``holdout``.

    Examples
    --------
    >>> import numpy as np
    >>> from scwlm.core.snapshots import as_snapshots
    >>> s = as_snapshots([np.zeros((5, 1)), np.ones((5, 1)), 2 * np.ones((5, 1))], [0, 1, 2])
    >>> stay = lambda x0, v0, t0, times: np.stack([x0.numpy()] * len(times))
    >>> interpolate(stay, s, [1])["w1"]
    [1.0]
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
    for h in holdout:
        s = previous_observed(h, holdout)
        pred = simulate(snaps.points[s], snaps.velocities[s], times[s], [times[h]])
        starts.append(s)
        w1.append(wasserstein1(pred[0], snaps.points[h]))
    out = {"protocol": "interpolate", "times": times, "holdout": holdout, "start": starts, "w1": w1}
    out["test_mean"], out["test_se"] = mean_se(w1)
    return out
