"""Training curves: loss and friction against iteration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._docs import _doc_params, doc_plot_returns, doc_show_save_ax
from ._utils import finish, new_axes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["loss", "friction"]

_DOCS = {"doc_show_save_ax": doc_show_save_ax, "doc_returns": doc_plot_returns, "doc_data": """data
        An AnnData with a fit in ``.uns[key]`` (:func:`scwlm.tl.fit_mechanics`; a
        :func:`scwlm.tl.leave_one_out` result draws one curve per model), a
        :class:`~scwlm.Mechanics`, or a list of them / a :class:`~scwlm.MechanicsEnsemble`
        (curves overlaid).
    key
        Key of the fit in ``adata.uns``."""}


def _curves(data: Any, key: str, name: str) -> list[tuple[str, np.ndarray]]:
    """``[(label, history)]`` from an AnnData (``.uns[key]``), a Mechanics, or a list of them."""
    from ..mechanics import Mechanics

    if isinstance(data, Mechanics):
        return [("model", _history(data, name))]
    if isinstance(data, (list, tuple)):
        if not data or not all(isinstance(m, Mechanics) for m in data):
            raise TypeError("expected an AnnData, a Mechanics, or a non-empty list of Mechanics")
        return [(f"model {i}", _history(m, name)) for i, m in enumerate(data)]
    if hasattr(data, "uns") and hasattr(data, "obs"):
        from ..tl._store import read_record

        return read_record(data, key).histories(name, key)
    raise TypeError(f"expected an AnnData, a Mechanics, or a list of Mechanics, got {type(data).__name__}")


def _history(mech: Any, name: str) -> np.ndarray:
    if name not in mech.history:
        raise KeyError(f"this model has no {name!r} history (keys: {sorted(mech.history)})")
    return np.asarray(mech.history[name], dtype=np.float64)


def _smooth(y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing moving average (valid part) and the iterations it belongs to."""
    x = np.arange(1, y.size + 1)
    if window <= 1 or y.size < window:
        return x, y
    kernel = np.ones(window) / window
    return x[window - 1:], np.convolve(y, kernel, mode="valid")


def _window(smooth: int | None, n: int) -> int:
    if smooth is None:
        return max(1, n // 50)
    if isinstance(smooth, bool) or not isinstance(smooth, (int, np.integer)) or smooth < 0:
        raise ValueError(f"smooth must be a non-negative integer window (or None for automatic), got {smooth!r}")
    return int(smooth)


def _plot_curves(data: Any, key: str, name: str, ylabel: str, *, ax: Axes | None, smooth: int | None, logy: bool | None,
                 show: bool | None, save: bool | str | Path | None, return_fig: bool) -> Figure | Axes | None:
    curves = _curves(data, key, name)
    ax_given = ax is not None
    fig, ax = new_axes(ax)
    for i, (label, y) in enumerate(curves):
        color = f"C{i % 10}"
        w = _window(smooth, y.size)
        x_raw = np.arange(1, y.size + 1)
        if w > 1 and y.size >= w:
            ax.plot(x_raw, y, color=color, alpha=0.25, lw=0.8)
            xs, ys = _smooth(y, w)
            ax.plot(xs, ys, color=color, lw=1.6, label=label)
        else:
            ax.plot(x_raw, y, color=color, lw=1.4, marker="o" if y.size < 20 else None, ms=3, label=label)
    ys_all = np.concatenate([y for _, y in curves]) if curves else np.zeros(0)
    if logy is None:
        logy = name == "loss" and ys_all.size > 0 and bool((ys_all > 0).all()) and ys_all.max() / ys_all.min() > 20
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    if len(curves) > 1:
        ax.legend(fontsize="small", frameon=False)
    ax.set_title(ylabel)
    return finish(fig, ax, ax_given, name=name, show=show, save=save, return_fig=return_fig)


@_doc_params(**_DOCS)
def loss(
    data: Any,
    key: str = "wlm",
    ax: Axes | None = None,
    smooth: int | None = None,
    *,
    logy: bool | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
) -> Figure | Axes | None:
    """Training loss (sum of Sinkhorn divergences) against iteration.

    Parameters
    ----------
    {doc_data}
    smooth
        Moving-average window (``None``: ``n_iter // 50``; ``0`` or ``1``: raw curve only). The raw
        curve is drawn faintly behind the smoothed one.
    logy
        Logarithmic y axis (``None``: when the loss is positive and spans more than a factor 20).
    {doc_show_save_ax}

    Returns
    -------
    {doc_returns}

    Examples
    --------
    >>> scwlm.pl.loss(adata, "wlm", smooth=20)  # doctest: +SKIP
    """
    return _plot_curves(data, key, "loss", "loss", ax=ax, smooth=smooth, logy=logy, show=show, save=save,
                        return_fig=return_fig)


@_doc_params(**_DOCS)
def friction(
    data: Any,
    key: str = "wlm",
    ax: Axes | None = None,
    smooth: int | None = 0,
    *,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
) -> Figure | Axes | None:
    r"""Friction :math:`\gamma` against iteration (learnable friction; constant when fixed).

    Parameters
    ----------
    {doc_data}
    smooth
        Moving-average window (default ``0``: the friction curve is already smooth).
    {doc_show_save_ax}

    Returns
    -------
    {doc_returns}

    Examples
    --------
    >>> scwlm.pl.friction([mech_a, mech_b])  # doctest: +SKIP
    """
    return _plot_curves(data, key, "friction", "friction γ", ax=ax, smooth=smooth, logy=False, show=show, save=save,
                        return_fig=return_fig)
