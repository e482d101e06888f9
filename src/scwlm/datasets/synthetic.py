"""Small built-in systems with known mechanics, for demos and tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._dataset import Dataset, _float, _int, _seed

__all__ = ["harmonic_well", "damped_oscillator_solution"]


def damped_oscillator_solution(
    x0: np.ndarray, v0: np.ndarray, t: float, *, omega: float = 1.0, gamma: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact position and velocity at time ``t`` of ``x'' = -omega^2 x - gamma x'`` (underdamped).

    With :math:`\omega_d = \sqrt{\omega^2 - \gamma^2/4}`, :math:`A = x_0` and
    :math:`B = (v_0 + \tfrac{\gamma}{2} x_0)/\omega_d`:
    :math:`x(t) = e^{-\gamma t/2}(A\cos\omega_d t + B\sin\omega_d t)` and :math:`v = \dot x`.

    Parameters
    ----------
    x0, v0
        Initial positions and velocities (arrays of the same shape).
    t
        Time (a scalar).
    omega
        Natural angular frequency (> 0).
    gamma
        Friction coefficient, ``0 <= gamma < 2 omega``.

    Returns
    -------
    (x, v)
        Positions and velocities at ``t``, same shape as ``x0``.

    Raises
    ------
    ValueError
        If ``omega <= 0``, ``gamma < 0`` or ``gamma >= 2 omega`` (not underdamped).

    Examples
    --------
    >>> x, v = damped_oscillator_solution(np.array([1.0]), np.array([0.0]), np.pi / 2, gamma=0.0)
    >>> np.round(x, 12), np.round(v, 12)
    (array([0.]), array([-1.]))
    """
    omega = _float("omega", omega, positive=True)
    gamma = _float("gamma", gamma, nonnegative=True)
    if gamma >= 2.0 * omega:
        raise ValueError(f"the closed form needs an underdamped well, gamma < 2 omega; got gamma={gamma}, "
                         f"omega={omega}")
    t = _float("t", t)
    x0 = np.asarray(x0, dtype=np.float64)
    v0 = np.asarray(v0, dtype=np.float64)
    if x0.shape != v0.shape:
        raise ValueError(f"x0 and v0 must have the same shape, got {x0.shape} and {v0.shape}")
    wd = np.sqrt(omega**2 - gamma**2 / 4.0)
    a = x0
    b = (v0 + 0.5 * gamma * x0) / wd
    decay = np.exp(-0.5 * gamma * t)
    c, s = np.cos(wd * t), np.sin(wd * t)
    x = decay * (a * c + b * s)
    v = decay * ((-0.5 * gamma * a + wd * b) * c + (-0.5 * gamma * b - wd * a) * s)
    return x, v


def harmonic_well(
    n: int = 200,
    n_times: int = 17,
    dt: float = 0.4,
    *,
    omega: float = 1.0,
    gamma: float = 0.3,
    center: tuple[float, float] = (2.0, 0.0),
    spread: float = 0.3,
    velocity_spread: float = 0.3,
    random_state: int | None = 0,
) -> Dataset:
    r"""Non-interacting particles in the damped harmonic well ``x'' = -omega^2 x - gamma x'``.

    ``X_0 ~ N(center, spread^2 I_2)``, ``V_0 ~ N(0, velocity_spread^2 I_2)``; positions and
    velocities at ``t_k = k dt`` are exact (:func:`damped_oscillator_solution`). The true mechanics
    are the potential :math:`\tfrac12\omega^2|x|^2` with friction ``gamma``, which makes this a
    quick check that a fitted model recovers known physics.

    Parameters
    ----------
    n
        Number of particles (the same ones at every time).
    n_times
        Number of snapshots.
    dt
        Snapshot spacing.
    omega
        Natural angular frequency (> 0).
    gamma
        Friction, ``0 <= gamma < 2 omega``.
    center
        Mean of the initial positions (2 numbers).
    spread, velocity_spread
        Standard deviations of the initial positions and velocities (>= 0).
    random_state
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical output.

    Returns
    -------
    Dataset
        ``n_times`` paired snapshots ``(n, 2)`` with velocities at every snapshot. ``meta`` holds
        the settings and ``"n_train"`` (11 of the default 17 snapshots; ``round(2/3 n_times)`` in
        general, at least 2 when possible).

    Raises
    ------
    ValueError
        If ``gamma >= 2 omega`` (not underdamped), or for non-positive sizes/steps or a malformed
        ``center``.

    Examples
    --------
    >>> ds = harmonic_well(n=20)
    >>> ds.n_snapshots, ds.meta["n_train"], ds.snapshots[0].shape
    (17, 11, (20, 2))
    """
    n = _int("n", n)
    n_times = _int("n_times", n_times)
    dt = _float("dt", dt, positive=True)
    omega = _float("omega", omega, positive=True)
    gamma = _float("gamma", gamma, nonnegative=True)
    if gamma >= 2.0 * omega:
        raise ValueError(f"harmonic_well needs an underdamped well, gamma < 2 omega; got gamma={gamma}, "
                         f"omega={omega}")
    spread = _float("spread", spread, nonnegative=True)
    velocity_spread = _float("velocity_spread", velocity_spread, nonnegative=True)
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (2,) or not np.all(np.isfinite(c)):
        raise ValueError(f"center must be 2 finite numbers, got {center!r}")
    seed = _seed(random_state)
    rng = np.random.default_rng(seed)
    x0 = c + spread * rng.standard_normal((n, 2))
    v0 = velocity_spread * rng.standard_normal((n, 2))
    times = np.arange(n_times, dtype=np.float64) * dt
    xs, vs = [], []
    for t in times:
        x, v = damped_oscillator_solution(x0, v0, float(t), omega=omega, gamma=gamma)
        xs.append(x)
        vs.append(v)
    meta: dict[str, Any] = {"name": "harmonic_well", "n": n, "n_times": n_times, "dt": dt, "omega": omega,
                            "gamma": gamma, "center": c, "spread": spread, "velocity_spread": velocity_spread,
                            "random_state": seed, "n_train": min(n_times, max(2, round(2 * n_times / 3)))}
    return Dataset(xs, times, vs, meta)
