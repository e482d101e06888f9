"""The learned potential-energy landscape of a 2-D system."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .._docs import _doc_params, doc_plot_returns, doc_show_save_ax
from ._utils import finish, new_axes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..mechanics import Mechanics

__all__ = ["potential"]


def insertion_energy(mech: Mechanics, grid: np.ndarray, reference: np.ndarray | None, t: float | None) -> np.ndarray:
    r""":math:`\Delta\Psi(y) = \Psi_\theta(R \cup \{y\}) - \Psi_\theta(R)` for every row ``y`` of ``grid``.

    With no reference population (``R`` empty) this is :math:`\Psi_\theta(\{y\})`, the energy of a
    lone particle at ``y``.
    """
    if reference is None:
        return np.asarray([mech.potential(y[None, :], t) for y in grid])
    base = mech.potential(reference, t)
    cloud = np.vstack([reference, np.zeros((1, reference.shape[1]))])
    out = np.empty(grid.shape[0])
    for i, y in enumerate(grid):
        cloud[-1] = y
        out[i] = mech.potential(cloud, t) - base
    return out


@_doc_params(doc_show_save_ax=doc_show_save_ax, doc_returns=doc_plot_returns)
def potential(
    mechanics: Mechanics,
    *,
    t: float | None = None,
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
    reference: Any = None,
    resolution: int = 40,
    quiver: bool = True,
    cmap: str = "viridis",
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
) -> Figure | Axes | None:
    r"""The learned landscape of a 2-D system: energy of a probe particle, and the forces.

    WLM's potential :math:`\Psi_\theta(x_1, \dots, x_N)` is a function of the whole population
    (particles interact through attention), so there is no single-particle landscape. This plot
    shows the **insertion energy** of a probe particle added to a reference population ``R``:

    .. math:: \Delta\Psi(y) = \Psi_\theta(R \cup \{y\}) - \Psi_\theta(R),

    on a ``resolution x resolution`` grid (filled contours): low values are where the population
    would pull an extra particle (the probe feels the force :math:`-\nabla_y \Delta\Psi`). Arrows
    show the forces :math:`-\nabla_{x_j}\Psi_\theta(R)` on the reference particles themselves, at
    their positions. Without ``reference`` the landscape is that of a lone particle,
    :math:`\Psi_\theta(\{y\})`, and the arrows show its force field :math:`-\nabla_y\Psi_\theta(\{y\})`
    (finite differences on the grid).

    Parameters
    ----------
    mechanics
        A fitted 2-D :class:`~scwlm.Mechanics` (in its own, e.g. standardised, coordinates).
    t
        Time, for time-dependent models (default: the first training time).
    xlim, ylim
        Grid extent (default: the reference population's range plus 15 %, else ``(-3, 3)``).
    reference
        ``(n, 2)`` reference population, e.g. a snapshot (in model coordinates).
    resolution
        Grid points per axis (cost: ``resolution**2`` potential evaluations).
    quiver
        Draw the force arrows.
    cmap
        Colormap of the landscape.
    {doc_show_save_ax}

    Returns
    -------
    {doc_returns}

    Raises
    ------
    ValueError
        If the model is not 2-D, or ``reference`` is not an ``(n, 2)`` finite array.

    Examples
    --------
    >>> snaps, times, vels = scwlm.datasets.harmonic_well()  # doctest: +SKIP
    >>> mech = scwlm.fit(snaps, times, vels, n_iter=500)  # doctest: +SKIP
    >>> scwlm.pl.potential(mech, reference=snaps[0])  # doctest: +SKIP
    """
    from ..mechanics import Mechanics

    if not isinstance(mechanics, Mechanics):
        raise TypeError(f"expected a scwlm.Mechanics, got {type(mechanics).__name__} (use scwlm.tl.get_mechanics)")
    if mechanics.dim != 2:
        raise ValueError(f"pl.potential draws 2-D systems; this model has dimension {mechanics.dim}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    if t is None and mechanics.network.time_features:
        train_times = mechanics.info.get("train_times") or [0.0]
        t = float(train_times[0])
    R = None
    if reference is not None:
        R = np.asarray(reference, dtype=np.float64)
        if R.ndim != 2 or R.shape[1] != 2 or R.shape[0] == 0 or not np.isfinite(R).all():
            raise ValueError(f"reference must be a finite (n, 2) array, got shape {R.shape}")

    def extent(lim: Sequence[float] | None, col: int) -> tuple[float, float]:
        if lim is not None:
            lo, hi = float(lim[0]), float(lim[1])
            if not hi > lo:
                raise ValueError(f"limits must be increasing, got {tuple(lim)}")
            return lo, hi
        if R is None:
            return -3.0, 3.0
        lo, hi = float(R[:, col].min()), float(R[:, col].max())
        pad = 0.15 * max(hi - lo, 1e-6)
        return lo - pad, hi + pad

    (x0, x1), (y0, y1) = extent(xlim, 0), extent(ylim, 1)
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    XX, YY = np.meshgrid(xs, ys)
    grid = np.column_stack([XX.ravel(), YY.ravel()])
    E = insertion_energy(mechanics, grid, R, t).reshape(resolution, resolution)

    ax_given = ax is not None
    fig, ax = new_axes(ax, (5.5, 4.5))
    cs = ax.contourf(XX, YY, E, levels=20, cmap=cmap)
    cb = fig.colorbar(cs, ax=ax)
    cb.set_label("probe insertion energy ΔΨ" if R is not None else "lone-particle energy Ψ({y})")
    if R is not None:
        ax.scatter(R[:, 0], R[:, 1], s=6, c="white", edgecolors="k", linewidths=0.3, label="reference")
        if quiver:
            F = mechanics.forces(R, t)
            ax.quiver(R[:, 0], R[:, 1], F[:, 0], F[:, 1], color="crimson", angles="xy", width=0.004)
    elif quiver:
        gy, gx = np.gradient(E, ys, xs)
        step = max(1, resolution // 15)
        sl = (slice(None, None, step), slice(None, None, step))
        ax.quiver(XX[sl], YY[sl], -gx[sl], -gy[sl], color="crimson", angles="xy", width=0.004)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title("learned potential" + (f" (t = {t:g})" if t is not None else ""), fontsize="medium")
    return finish(fig, ax, ax_given, name="potential", show=show, save=save, return_fig=return_fig)
