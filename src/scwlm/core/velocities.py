r"""Initial velocities from optimal transport, for snapshots whose velocities are not measured.

For consecutive snapshots :math:`X_j` and :math:`X_{j+1}` with exact optimal transport plan
:math:`\pi` for the squared Euclidean cost, the barycentric map
:math:`T(x_i) = \sum_k \pi_{ik} y_k / \sum_k \pi_{ik}` gives each point the velocity

.. math::
    v_i = \frac{T(x_i) - x_i}{t_{j+1} - t_j}.

With zero forces and no friction, particles started at :math:`X_j` with these velocities move
along McCann's displacement interpolation (exactly when the plan is a permutation, as for equal
sizes): a WLM model started from OT velocities begins at the interpolation baseline instead of at
rest, and training only has to learn the deviation from straight-line transport.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._imports import quiet_import
from .metrics import _as_numpy

__all__ = ["ot_velocity", "ot_velocities"]

#: above this many points in a cloud, plans are computed on random blocks of this size (mini-batch OT)
EXACT_LIMIT = 4000


def ot_velocity(x: Any, y: Any, gap: float, *, random_state: int = 0) -> np.ndarray:
    """Velocities ``(n, d)`` that carry the points ``x (n, d)`` to ``y (m, d)`` in time ``gap``.

    The barycentric projection of the exact optimal transport plan (POT's network simplex,
    squared Euclidean cost, uniform weights), divided by ``gap``. Clouds larger than
    :data:`EXACT_LIMIT` are matched block by block: the points of each are split into random
    blocks of at most that size and block ``b`` of ``x`` is matched to block ``b`` of ``y``
    (mini-batch OT; deterministic for a given ``random_state``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0]])
    >>> ot_velocity(x, x[::-1] + 2.0, 2.0).ravel().tolist()
    [1.0, 1.0]
    """
    ot = quiet_import("ot")
    x, y = _as_numpy(x).astype(np.float64), _as_numpy(y).astype(np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected (n, d) and (m, d) arrays, got {x.shape} and {y.shape}")
    if not (np.isfinite(gap) and gap > 0):
        raise ValueError(f"gap must be a positive number, got {gap}")
    n, m = len(x), len(y)
    n_blocks = max(1, int(np.ceil(max(n, m) / EXACT_LIMIT)))
    rng = np.random.default_rng(random_state)
    xb = np.array_split(rng.permutation(n), n_blocks)
    yb = np.array_split(rng.permutation(m), n_blocks)
    target = np.empty_like(x)
    for ix, iy in zip(xb, yb):
        a = np.full(len(ix), 1.0 / len(ix))
        b = np.full(len(iy), 1.0 / len(iy))
        plan = ot.emd(a, b, ot.dist(x[ix], y[iy], metric="sqeuclidean"), numItermax=10_000_000)
        target[ix] = (plan @ y[iy]) / plan.sum(1, keepdims=True)
    return (target - x) / gap


def ot_velocities(snapshots: Sequence[Any], times: Sequence[float], *, random_state: int = 0) -> list[np.ndarray | None]:
    """OT velocities of every snapshot toward the next one (``None`` for the last snapshot).

    Examples
    --------
    >>> import numpy as np
    >>> v = ot_velocities([np.zeros((3, 2)), np.ones((3, 2)), 3 * np.ones((3, 2))], [0.0, 1.0, 2.0])
    >>> v[0][0].tolist(), v[1][0].tolist(), v[2] is None
    ([1.0, 1.0], [2.0, 2.0], True)
    """
    times = [float(t) for t in np.asarray(times, dtype=np.float64).reshape(-1)]
    if len(times) != len(snapshots):
        raise ValueError(f"got {len(times)} times for {len(snapshots)} snapshots")
    out: list[np.ndarray | None] = [
        ot_velocity(snapshots[j], snapshots[j + 1], times[j + 1] - times[j], random_state=random_state + j)
        for j in range(len(snapshots) - 1)
    ]
    return out + [None]
