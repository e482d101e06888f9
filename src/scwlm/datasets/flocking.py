"""Boids: interacting agents with cohesion, separation, alignment and a soft boundary (paper C.4)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._dataset import Dataset, _float, _int, _seed

__all__ = ["boids", "boids_steering"]


def boids_steering(
    x: np.ndarray,
    v: np.ndarray,
    *,
    outer_radius: float = 1.0,
    inner_radius: float = 0.3,
    w_cohesion: float = 0.005,
    w_separation: float = 0.1,
    w_alignment: float = 0.3,
    w_boundary: float = 0.5,
    boundary: float = 5.0,
) -> np.ndarray:
    r"""Steering (velocity increment per unit time) of every boid, as in the paper's appendix C.4.

    With offsets :math:`\Delta_{ij} = x_j - x_i` and neighbourhoods
    :math:`N_r(i) = \{j : |\Delta_{ij}|^2 < r^2\}` (which contain :math:`i` itself: it adds a zero
    offset but counts in the means, as in the authors' code),

    .. math::
        dv_i = w_c \operatorname{mean}_{N_{R}(i)} \Delta_{ij}
             - w_s \sum_{N_{r}(i)} \Delta_{ij}
             + w_a \operatorname{mean}_{N_{R}(i)} (v_j - v_i)
             - w_b \operatorname{sign}(x_i) \odot 1[|x_i| > b],

    with :math:`R` the outer and :math:`r` the inner radius; the boundary term acts per coordinate.

    Parameters
    ----------
    x, v
        Positions and velocities, ``(n, 2)`` arrays (any ``(n, d)`` works).
    outer_radius, inner_radius
        Radii of the cohesion/alignment and of the separation neighbourhoods.
    w_cohesion, w_separation, w_alignment, w_boundary
        Weights of the four forces.
    boundary
        A coordinate beyond ``±boundary`` is pushed back towards the origin.

    Returns
    -------
    numpy.ndarray
        ``(n, d)`` steering ``dv``.

    Raises
    ------
    ValueError
        If ``x`` and ``v`` are not 2-D arrays of the same shape.

    Notes
    -----
    Dense and vectorised: time and memory grow as ``n**2`` (a few ``n x n`` float64 matrices,
    8 MB each for ``n = 1000``).

    Examples
    --------
    >>> import numpy as np
    >>> boids_steering(np.array([[5.1, 0.0]]), np.array([[1.0, 0.0]]))
    array([[-0.5,  0. ]])
    """
    x = np.asarray(x, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if x.ndim != 2 or x.shape != v.shape:
        raise ValueError(f"x and v must be 2-D arrays of the same shape, got {x.shape} and {v.shape}")
    n, d = x.shape
    # squared distances from the exact offsets (not |x|^2 - 2 x.y + |y|^2), so borderline pairs
    # are classified as in the reference implementation
    d2 = np.zeros((n, n))
    for k in range(d):
        diff = np.subtract.outer(x[:, k], x[:, k])
        diff *= diff
        d2 += diff
    ones = np.ones((n, 1))
    # one pass over each neighbourhood matrix: sums of x_j, v_j and the neighbour counts
    s_out = (d2 < outer_radius**2).astype(np.float64) @ np.hstack([x, v, ones])
    s_in = (d2 < inner_radius**2).astype(np.float64) @ np.hstack([x, ones])
    count = s_out[:, -1:]
    frac = count / np.maximum(count, 1.0)  # 1 unless the radius is 0 (no neighbours, not even i)
    cohesion = s_out[:, :d] / np.maximum(count, 1.0) - x * frac
    alignment = s_out[:, d:2 * d] / np.maximum(count, 1.0) - v * frac
    separation = -(s_in[:, :d] - s_in[:, -1:] * x)
    bound = -np.sign(x) * (np.abs(x) > boundary)
    return w_cohesion * cohesion + w_separation * separation + w_alignment * alignment + w_boundary * bound


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    ok = norm > 0
    return np.where(ok, v / np.where(ok, norm, 1.0), fallback)


def _mixture_positions(
    n: int, means: Any, stds: Any, n_components: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if means is None:
        if stds is not None:
            raise ValueError("stds was given without means; give both, or n_components for random components")
        k = int(rng.integers(1, 6)) if n_components is None else _int("n_components", n_components)
        means_arr = rng.uniform(-3.0, 3.0, size=(k, 2))
        stds_arr = rng.uniform(0.3, 1.5, size=k)
    else:
        means_arr = np.asarray(means, dtype=np.float64)
        if means_arr.ndim != 2 or means_arr.shape[1] != 2 or means_arr.shape[0] == 0:
            raise ValueError(f"means must be a (k, 2) array of component centres, got shape {means_arr.shape}")
        k = means_arr.shape[0]
        if n_components is not None and n_components != k:
            raise ValueError(f"n_components={n_components} disagrees with the {k} means given")
        # the authors' default when only the centres are given
        stds_arr = np.full(k, 0.3) if stds is None else np.broadcast_to(np.asarray(stds, dtype=np.float64), (k,)).copy()
        if not np.all(np.isfinite(means_arr)):
            raise ValueError("means must be finite")
    if stds_arr.shape != (k,) or not np.all(np.isfinite(stds_arr)) or np.any(stds_arr <= 0):
        raise ValueError(f"stds must be {k} positive numbers (one per component), got {stds_arr.tolist()}")
    counts = rng.multinomial(n, np.full(k, 1.0 / k))
    labels = np.repeat(np.arange(k), counts)
    x = means_arr[labels] + stds_arr[labels, None] * rng.standard_normal((n, 2))
    perm = rng.permutation(n)
    return x[perm], labels[perm], means_arr, stds_arr


def boids(
    n: int = 1000,
    n_steps: int = 100,
    dt: float = 0.5,
    *,
    outer_radius: float = 1.0,
    inner_radius: float = 0.3,
    w_cohesion: float = 0.005,
    w_separation: float = 0.1,
    w_alignment: float = 0.3,
    w_boundary: float = 0.5,
    boundary: float = 5.0,
    init: str = "gaussian",
    means: Any = None,
    stds: Any = None,
    n_components: int | None = None,
    random_state: int | None = 0,
) -> Dataset:
    r"""Simulate the paper's Boids (appendix C.4): ``n`` unit-speed agents in the plane.

    Each step computes the steering ``dv`` of :func:`boids_steering`, then updates
    ``v <- normalise(v + dt * dv)`` (unit speed) and ``x <- x + dt * v`` with the new ``v``.
    Initial velocities are standard Gaussian, made zero-mean over the agents, then normalised.

    Parameters
    ----------
    n
        Number of agents (at least 2).
    n_steps
        Number of steps; ``n_steps + 1`` snapshots at times ``0, dt, ..., n_steps * dt``.
    dt
        Step size (also the snapshot spacing).
    outer_radius, inner_radius, w_cohesion, w_separation, w_alignment, w_boundary, boundary
        Interaction settings, see :func:`boids_steering` (defaults: the paper's).
    init
        ``"gaussian"``: positions ``N(0, I)`` (the paper's training data). ``"mixture"``: a Gaussian
        mixture (the paper's figure 9 generalisation test) with centres ``means`` ``(k, 2)`` and
        isotropic standard deviations ``stds`` ``(k,)`` (default 0.3 each when only ``means`` is
        given), or ``n_components`` random components (centres uniform in ``[-3, 3]^2``, standard
        deviations uniform in ``[0.3, 1.5]``; 1 to 5 components at random when neither is given).
        Agents are split among the components by a multinomial draw with equal weights.
    means, stds, n_components
        Mixture settings (only with ``init="mixture"``).
    random_state
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical output.

    Returns
    -------
    Dataset
        ``n_steps + 1`` snapshots ``(n, 2)`` with the true velocities at every snapshot (agent
        ``i`` is row ``i`` at every time). ``meta`` holds every setting, ``"n_train"`` (the paper
        trains on the first ``(n_steps + 1) // 2`` = 50 snapshots, ``t <= 24.5``, and forecasts the
        rest) and, for mixtures, ``"means"``, ``"stds"`` and the component of each agent
        (``"component"``).

    Raises
    ------
    ValueError
        For a non-positive size, step or radius, an unknown ``init``, mixture settings with
        ``init="gaussian"``, or malformed ``means``/``stds``.

    Examples
    --------
    >>> ds = boids(n=50, n_steps=4)
    >>> ds.n_snapshots, ds.snapshots[0].shape, float(ds.times[-1])
    (5, (50, 2), 2.0)
    >>> snaps, times, vels = ds
    >>> bool(abs(np.linalg.norm(vels[3], axis=1) - 1).max() < 1e-12)
    True
    """
    n = _int("n", n, minimum=2)
    n_steps = _int("n_steps", n_steps)
    dt = _float("dt", dt, positive=True)
    forces = dict(
        outer_radius=_float("outer_radius", outer_radius, positive=True),
        inner_radius=_float("inner_radius", inner_radius, positive=True),
        w_cohesion=_float("w_cohesion", w_cohesion),
        w_separation=_float("w_separation", w_separation),
        w_alignment=_float("w_alignment", w_alignment),
        w_boundary=_float("w_boundary", w_boundary),
        boundary=_float("boundary", boundary, positive=True),
    )
    seed = _seed(random_state)
    rng = np.random.default_rng(seed)

    meta: dict[str, Any] = {"name": "boids", "n": n, "n_steps": n_steps, "dt": dt, **forces,
                            "init": init, "random_state": seed, "n_train": (n_steps + 1) // 2}
    if init == "gaussian":
        if means is not None or stds is not None or n_components is not None:
            raise ValueError("means, stds and n_components only apply to init='mixture'")
        x = rng.standard_normal((n, 2))
    elif init == "mixture":
        x, labels, means_arr, stds_arr = _mixture_positions(n, means, stds, n_components, rng)
        meta.update(means=means_arr, stds=stds_arr, n_components=len(stds_arr), component=labels)
    else:
        raise ValueError(f"init must be 'gaussian' or 'mixture', got {init!r}")

    v = rng.standard_normal((n, 2))
    v -= v.mean(axis=0, keepdims=True)
    v = _unit(v, np.array([[1.0, 0.0]]))

    xs, vs = [x.copy()], [v.copy()]
    for _ in range(n_steps):
        dv = boids_steering(x, v, **forces)
        v = _unit(v + dt * dv, v)
        x = x + dt * v
        xs.append(x)
        vs.append(v)
    times = np.arange(n_steps + 1, dtype=np.float64) * dt
    return Dataset(xs, times, vs, meta)
