"""Gradient-flow SDEs ``dX = -grad V(X) dt + sigma dW`` with the five benchmark potentials (paper C.1)."""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from ._dataset import Dataset, _float, _int, _seed

__all__ = ["GF_POTENTIALS", "gf_potential", "euler_maruyama", "gradient_flow_sde"]

#: names of the five potentials of appendix C.1 (see :func:`gf_potential`)
GF_POTENTIALS: tuple[str, ...] = ("bohachevsky", "oakley_ohagan", "quadratic", "styblinski_tang", "wavy_plateau")

Array = np.ndarray
PotentialFn = Callable[[Array], Array]


def _check_points(x: Array) -> Array:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] != 2:
        raise ValueError(f"the potentials are defined on R^2: expected an (n, 2) array, got shape {x.shape}")
    return x


def _bohachevsky(x: Array) -> Array:
    x = _check_points(x)
    x1, x2 = x[..., 0], x[..., 1]
    return 10.0 * (x1**2 + 2.0 * x2**2 - 0.3 * np.cos(3 * np.pi * x1) - 0.4 * np.cos(4 * np.pi * x2))


def _bohachevsky_grad(x: Array) -> Array:
    x = _check_points(x)
    x1, x2 = x[..., 0], x[..., 1]
    g1 = 10.0 * (2.0 * x1 + 0.9 * np.pi * np.sin(3 * np.pi * x1))
    g2 = 10.0 * (4.0 * x2 + 1.6 * np.pi * np.sin(4 * np.pi * x2))
    return np.stack([g1, g2], axis=-1)


def _oakley_ohagan(x: Array) -> Array:
    x = _check_points(x)
    return 5.0 * np.sum(np.sin(x) + np.cos(x) + x**2 + x, axis=-1)


def _oakley_ohagan_grad(x: Array) -> Array:
    x = _check_points(x)
    return 5.0 * (np.cos(x) - np.sin(x) + 2.0 * x + 1.0)


def _quadratic(x: Array) -> Array:
    x = _check_points(x)
    return 5.0 * np.sum(x**2, axis=-1)


def _quadratic_grad(x: Array) -> Array:
    return 10.0 * _check_points(x)


def _styblinski_tang(x: Array) -> Array:
    x = _check_points(x)
    return 0.5 * np.sum(x**4 - 16.0 * x**2 + 5.0 * x, axis=-1)


def _styblinski_tang_grad(x: Array) -> Array:
    x = _check_points(x)
    return 0.5 * (4.0 * x**3 - 32.0 * x + 5.0)


def _wavy_plateau(x: Array) -> Array:
    x = _check_points(x)
    return np.sum(np.cos(np.pi * x) + 0.5 * x**4 - 3.0 * x**2 + 1.0, axis=-1)


def _wavy_plateau_grad(x: Array) -> Array:
    x = _check_points(x)
    return -np.pi * np.sin(np.pi * x) + 2.0 * x**3 - 6.0 * x


_TABLE: dict[str, tuple[PotentialFn, PotentialFn]] = {
    "bohachevsky": (_bohachevsky, _bohachevsky_grad),
    "oakley_ohagan": (_oakley_ohagan, _oakley_ohagan_grad),
    "quadratic": (_quadratic, _quadratic_grad),
    "styblinski_tang": (_styblinski_tang, _styblinski_tang_grad),
    "wavy_plateau": (_wavy_plateau, _wavy_plateau_grad),
}


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise ValueError(f"potential must be a name (str), got {name!r}")
    key = re.sub(r"[^a-z0-9]", "", name.lower())  # "Oakley–O'Hagan", "styblinski-tang", ...
    for canon in GF_POTENTIALS:
        if key == canon.replace("_", ""):
            return canon
    raise ValueError(f"unknown potential {name!r}; choose one of {', '.join(GF_POTENTIALS)}")


def gf_potential(name: str) -> tuple[PotentialFn, PotentialFn]:
    r"""The potential ``V`` and its analytic gradient for one of the five benchmark SDEs.

    ================== =================================================================
    name               :math:`V(x)`, :math:`x \in \mathbb{R}^2`
    ================== =================================================================
    bohachevsky        :math:`10(x_1^2 + 2x_2^2 - 0.3\cos 3\pi x_1 - 0.4\cos 4\pi x_2)`
    oakley_ohagan      :math:`5\sum_i (\sin x_i + \cos x_i + x_i^2 + x_i)`
    quadratic          :math:`5|x|^2`
    styblinski_tang    :math:`\tfrac12\sum_i (x_i^4 - 16x_i^2 + 5x_i)`
    wavy_plateau       :math:`\sum_i (\cos \pi x_i + \tfrac12 x_i^4 - 3x_i^2 + 1)`
    ================== =================================================================

    Parameters
    ----------
    name
        One of :data:`GF_POTENTIALS`; case, spaces, hyphens and apostrophes are ignored
        (``"Styblinski-Tang"``, ``"oakley-ohagan"``, ``"Wavy plateau"`` all work).

    Returns
    -------
    (V, grad_V)
        ``V`` maps an ``(n, 2)`` array to ``(n,)`` values, ``grad_V`` to ``(n, 2)`` gradients.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones), or, when called, for arrays whose
        last axis is not 2.

    Examples
    --------
    >>> V, grad_V = gf_potential("Quadratic")
    >>> V(np.array([[1.0, 2.0]])), grad_V(np.array([[1.0, 2.0]]))
    (array([25.]), array([[10., 20.]]))
    """
    return _TABLE[_canonical(name)]


def euler_maruyama(
    x0: np.ndarray,
    grad_V: PotentialFn,
    *,
    sigma2: float,
    dt: float,
    n_substeps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    r"""Advance ``dX = -grad V(X) dt + sigma dW`` over one interval ``dt`` with Euler–Maruyama.

    Takes ``n_substeps`` steps of size ``h = dt / n_substeps``:
    ``x <- x - grad_V(x) h + sqrt(sigma2 h) xi`` with ``xi ~ N(0, I)``.

    Parameters
    ----------
    x0
        ``(n, d)`` starting points (not modified).
    grad_V
        Gradient of the potential, ``(n, d) -> (n, d)``.
    sigma2
        Diffusivity :math:`\sigma^2` (the noise variance per unit time and coordinate).
    dt
        Length of the interval.
    n_substeps
        Number of Euler–Maruyama steps in the interval.
    rng
        Source of the Gaussian increments.

    Returns
    -------
    numpy.ndarray
        ``(n, d)`` points at the end of the interval.

    Raises
    ------
    ValueError
        For negative ``sigma2``, non-positive ``dt`` or ``n_substeps``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x1 = euler_maruyama(np.zeros((10000, 2)), np.zeros_like, sigma2=1.0, dt=0.01, n_substeps=10, rng=rng)
    >>> bool(abs(x1.var() - 0.01) < 0.001)
    True
    """
    sigma2 = _float("sigma2", sigma2, nonnegative=True)
    dt = _float("dt", dt, positive=True)
    n_substeps = _int("n_substeps", n_substeps)
    h = dt / n_substeps
    scale = np.sqrt(sigma2 * h)
    x = np.array(x0, dtype=np.float64, copy=True)
    for _ in range(n_substeps):
        x = x - grad_V(x) * h + scale * rng.standard_normal(x.shape)
    return x


def gradient_flow_sde(
    potential: str,
    *,
    paired: bool = True,
    n: int = 1000,
    n_steps: int = 20,
    dt: float = 0.01,
    substeps: int = 10,
    sigma2: float = 1.0,
    p0_var: float = 0.2,
    random_state: int | None = 0,
) -> Dataset:
    r"""Snapshots of a gradient-flow SDE ``dX = -grad V(X) dt + sigma dW`` (paper appendix C.1).

    ``X_0 ~ N(0, p0_var I_2)``; snapshots every ``dt`` (``n_steps + 1`` of them, ``t = 0 .. n_steps dt``),
    simulated with :func:`euler_maruyama` using ``substeps`` steps per interval.

    Parameters
    ----------
    potential
        Name of the potential, see :func:`gf_potential` and :data:`GF_POTENTIALS`.
    paired
        ``True``: the same ``n`` particles are evolved over all times (row ``i`` of every snapshot
        is particle ``i``). ``False`` (unpaired): every snapshot ``k`` is a fresh, independent
        sample from ``p0`` simulated from 0 to ``t_k`` (snapshot 0 a fresh draw from ``p0``), so
        there is no particle identity across times.
    n
        Particles per snapshot.
    n_steps
        Number of intervals; ``n_steps + 1`` snapshots.
    dt
        Snapshot spacing.
    substeps
        Euler–Maruyama steps per interval (step ``dt / substeps``).
    sigma2
        Diffusivity :math:`\sigma^2`.
    p0_var
        Variance of the initial Gaussian (per coordinate).
    random_state
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical output.

    Returns
    -------
    Dataset
        Velocities only at the first snapshot: the analytic probability-flow velocity

        .. math:: v_0(x) = -\nabla V(x) - \tfrac{\sigma^2}{2} \nabla \log p_0(x)
                         = -\nabla V(x) + \tfrac{\sigma^2}{2}\, x / \mathrm{p0\_var},

        i.e. the velocity of the deterministic flow with the same marginals (the
        Wasserstein gradient flow of :math:`\int V p + \tfrac{\sigma^2}{2}\int p\log p`). Note the
        sign: the score term *spreads* the cloud (it points away from the mode of ``p0``); with it,
        :math:`\frac{d}{dt} E|X_t|^2 = 2 E[X_0 \cdot v_0]` at ``t = 0``. The other entries are
        ``None``. ``meta`` has the potential, ``paired``, every setting and ``"n_train"`` (the
        paper trains on the first ``(n_steps + 1) // 2`` = 10 marginals and forecasts the rest).

    Raises
    ------
    ValueError
        For an unknown potential or a non-positive size, step, variance or substep count.

    Examples
    --------
    >>> ds = gradient_flow_sde("styblinski-tang", n=100)
    >>> ds.n_snapshots, float(ds.times[-1]), ds.meta["potential"], ds.velocities[1] is None
    (21, 0.2, 'styblinski_tang', True)
    """
    name = _canonical(potential)
    V, grad_V = _TABLE[name]
    if not isinstance(paired, (bool, np.bool_)):
        raise ValueError(f"paired must be True or False, got {paired!r}")
    n = _int("n", n)
    n_steps = _int("n_steps", n_steps)
    dt = _float("dt", dt, positive=True)
    substeps = _int("substeps", substeps)
    sigma2 = _float("sigma2", sigma2, nonnegative=True)
    p0_var = _float("p0_var", p0_var, positive=True)
    seed = _seed(random_state)
    rng = np.random.default_rng(seed)
    std0 = np.sqrt(p0_var)
    em = dict(sigma2=sigma2, dt=dt, n_substeps=substeps, rng=rng)

    x0 = std0 * rng.standard_normal((n, 2))
    snaps = [x0]
    if paired:
        x = x0
        for _ in range(n_steps):
            x = euler_maruyama(x, grad_V, **em)
            snaps.append(x)
    else:
        for k in range(1, n_steps + 1):
            x = std0 * rng.standard_normal((n, 2))
            for _ in range(k):
                x = euler_maruyama(x, grad_V, **em)
            snaps.append(x)
    v0 = -grad_V(x0) + 0.5 * sigma2 * x0 / p0_var
    times = np.arange(n_steps + 1, dtype=np.float64) * dt
    meta = {"name": f"gradient_flow_sde/{name}", "potential": name, "paired": bool(paired), "n": n,
            "n_steps": n_steps, "dt": dt, "substeps": substeps, "sigma2": sigma2, "p0_var": p0_var,
            "random_state": seed, "n_train": (n_steps + 1) // 2,
            "velocity": "analytic probability-flow velocity at t=0 only"}
    return Dataset(snaps, times, [v0] + [None] * n_steps, meta)
