"""Predicted versus observed cells in an embedding: held-out time points and rollouts."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .._docs import (
    _doc_params,
    doc_components,
    doc_embedding_basis,
    doc_n_cells,
    doc_plot_returns,
    doc_random_state_subset,
    doc_show_save_ax,
    doc_substeps,
)
from ._utils import axis_name, check_components, finish, knn_transfer, new_axes

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["holdout", "rollout", "rollout_arrays"]

_GREY = "#d3d3d3"
_OBS = "C0"
_PRED = "C3"


def is_anndata(data: Any) -> bool:
    return hasattr(data, "obsm") and hasattr(data, "uns") and hasattr(data, "obs")


@_doc_params(doc_n_cells=doc_n_cells, doc_substeps=doc_substeps, doc_random_state=doc_random_state_subset,
             doc_show_save_ax=doc_show_save_ax, doc_returns=doc_plot_returns)
def holdout(
    adata: AnnData,
    key: str = "wlm",
    *,
    holdout: Any = None,
    basis: str = "X_umap",
    n_neighbors: int = 15,
    n_cells: int | None = None,
    substeps: int | None = None,
    seed: int | None = None,
    random_state: int = 0,
    size: float | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
) -> Figure | Axes | None:
    """Observed cells of a held-out time point next to the cells WLM predicts for it.

    The cells of the previous observed time point are simulated (with their velocities) to the
    held-out time, as in the interpolation protocol. Other time points are drawn in light grey.

    Predictions live in the model's space (standardised first ``n_dims`` coordinates of the fit's
    basis, mapped back to its units). To draw them on an existing 2-D embedding such as a UMAP,
    each predicted cell is placed by k-nearest-neighbour regression from the observed cells'
    (fit basis -> ``basis``) pairs (:class:`sklearn.neighbors.KNeighborsRegressor`, distance
    weights, ``n_neighbors``): UMAP has no exact transform for new points, so this is an
    approximation that can only place predictions within the region covered by observed cells.
    If ``adata.obsm[basis]`` is absent, the first two coordinates of the fit's basis (e.g. PC1, PC2)
    are used instead, and the title says so.

    Parameters
    ----------
    adata
        Annotated data matrix fitted with a ``holdout`` (:func:`scwlm.tl.fit_mechanics`) or a
        :func:`scwlm.tl.leave_one_out` result.
    key
        Key of the fit in ``adata.uns``.
    holdout
        Held-out label to show (default: the first).
    basis
        2-D embedding to draw on (default ``"X_umap"``).
    n_neighbors
        Neighbours of the k-NN placement.
    {doc_n_cells}
    {doc_substeps}
    seed
        For a leave-one-out result: which seed's model (default: the first).
    {doc_random_state}
    size
        Marker size.
    {doc_show_save_ax}

    Returns
    -------
    {doc_returns}

    Raises
    ------
    ValueError
        If the fit has no held-out time point, or ``holdout`` is not one of them.

    Examples
    --------
    >>> scwlm.tl.fit_mechanics(adata, "day", holdout=2)  # doctest: +SKIP
    >>> scwlm.pl.holdout(adata, "wlm")  # doctest: +SKIP
    """
    from ..core.protocols import previous_observed
    from ..tl._rollout import predict
    from ..tl._store import read_record

    record = read_record(adata, key)
    labels = record.params.labels
    held = record.params.holdouts
    if not held:
        raise ValueError(f"the fit adata.uns[{key!r}] has no held-out time point; fit with holdout=... or use "
                         f"scwlm.tl.leave_one_out")
    if holdout is None:
        h_label = held[0]
    else:
        j = record.params.axis.find(holdout)
        h_label = labels[j] if j is not None else str(holdout)
        if h_label not in held:
            raise ValueError(f"{holdout!r} was not held out; held-out labels: {held}")
    h = labels.index(h_label)
    try:
        start = labels[previous_observed(h, [labels.index(x) for x in record.excluded_for(h_label)])]
    except ValueError:
        raise ValueError(f"held-out label {h_label!r} has no earlier observed time point") from None
    model_holdout, _ = record.model_for(h_label)
    pred = predict(adata, key, start, [h_label], n_cells=n_cells, substeps=substeps, random_state=random_state,
                   holdout=model_holdout, seed=seed)
    from ..pp._checks import obsm_array
    from ..tl._time import cell_labels

    info = record.params
    P = pred.basis[0]
    Xfit = obsm_array(adata, info.basis)[:, : info.n_dims]
    codes = cell_labels(adata, info.time_key, info.labels, info.times)
    if basis in adata.obsm:
        E = obsm_array(adata, basis)
        if E.shape[1] < 2:
            raise ValueError(f"adata.obsm[{basis!r}] has fewer than two columns")
        E = E[:, :2]
        P2 = knn_transfer(Xfit, E, P, n_neighbors)
        name = axis_name(basis)
        where = f"{name}; predictions placed by {n_neighbors}-NN regression from {info.basis}"
    else:
        if info.n_dims < 2:
            raise ValueError(f"adata.obsm[{basis!r}] is absent and the fit has a single dimension: nothing 2-D to draw")
        E, P2 = Xfit[:, :2], P[:, :2]
        name = axis_name(info.basis)
        where = f"first two {name}s of {info.basis}; {basis} not found" if name == "PC" else \
            f"first two coordinates of {info.basis}; {basis} not found"
    ax_given = ax is not None
    fig, ax = new_axes(ax, (5.5, 4.5))
    s = size if size is not None else min(30.0, max(2.0, 20000.0 / max(adata.n_obs, 1)))
    other = codes != h
    ax.scatter(E[other, 0], E[other, 1], s=s, c=_GREY, lw=0, label="other times", rasterized=True)
    ax.scatter(E[~other, 0], E[~other, 1], s=s, c=_OBS, lw=0, alpha=0.8, label=f"observed {info.time_key} {h_label}")
    ax.scatter(P2[:, 0], P2[:, 1], s=s, c=_PRED, lw=0, alpha=0.8, label=f"predicted from {start}")
    ax.set_xlabel(f"{name}1")
    ax.set_ylabel(f"{name}2")
    ax.set_xticks([])
    ax.set_yticks([])
    title = f"held-out {info.time_key} {h_label} ({where})"
    w1 = record.w1(h_label, seed)
    if w1 is not None:
        title += f"\nW1 = {w1:.3g}"
    ax.set_title(title, fontsize="medium")
    leg = ax.legend(fontsize="small", frameon=False)
    for handle in leg.legend_handles:
        handle.set_sizes([20.0])
    return finish(fig, ax, ax_given, name="holdout", show=show, save=save, return_fig=return_fig)


# ---------------------------------------------------------------------------------------- rollout
@dataclass
class Panels:
    """What :func:`rollout` and :func:`scwlm.pl.animate` draw: one entry per time."""

    titles: list[str]
    observed: list[np.ndarray | None]  # (n_i, 2) or None
    predicted: list[np.ndarray | None]  # (n, 2) or None
    xlabel: str
    ylabel: str


def panels_from_anndata(adata: AnnData, key: str, *, rollout_key: str | None, source: Any, targets: Any,
                        n_cells: int | None, substeps: int | None, random_state: int, components: Sequence[int],
                        basis: str | None, n_neighbors: int) -> Panels:
    """The panels of a recorded rollout (``rollout_key``), or of one simulated now (``source``, ``targets``)."""
    from ..pp._checks import check_anndata, obsm_array
    from ..tl._rollout import predict
    from ..tl._store import read_record
    from ..tl._time import cell_labels

    check_anndata(adata)
    record = read_record(adata, key)
    info = record.params
    Xfit = obsm_array(adata, info.basis)[:, : info.n_dims]
    if source is not None or targets is not None:
        if source is None or targets is None:
            raise ValueError("give both source and targets to simulate (or neither, to draw a recorded rollout)")
        pred = predict(adata, key, source, targets, n_cells=n_cells, substeps=substeps, random_state=random_state)
        names, times, rows, coords = pred.targets, pred.target_times, pred.rows, list(pred.basis)
        src = pred.source
    else:
        rk = f"{key}_rollout" if rollout_key is None else rollout_key
        recs = record.rollouts
        if rk not in recs:
            raise KeyError(f"no rollout {rk!r} recorded in adata.uns[{key!r}]['rollouts'] (recorded: "
                           f"{sorted(recs) or 'none'}); run scwlm.tl.rollout first or pass source and targets")
        rec = recs[rk]
        names, times, src = rec.targets, rec.target_times, rec.source
        pos = {n: i for i, n in enumerate(np.asarray(adata.obs_names).astype(str))}
        cells = rec.source_cells
        missing = [c for c in cells if c not in pos]
        if missing:
            raise ValueError(f"{len(missing)} simulated cells of rollout {rk!r} are no longer in adata (e.g. {missing[0]!r})")
        rows = np.asarray([pos[c] for c in cells], dtype=np.int64)
        coords = []
        for k in rec.obsm_keys:
            if k not in adata.obsm:
                raise KeyError(f"adata.obsm[{k!r}] of rollout {rk!r} is missing")
            coords.append(obsm_array(adata, k, "rollout")[rows])
    codes = cell_labels(adata, info.time_key, info.labels, info.times)
    s_idx = info.labels.index(src)

    if basis is None:
        comps = check_components(components, info.n_dims)
        space, to2 = Xfit[:, comps], (lambda P: P[:, comps])
        name = axis_name(info.basis)
        xlabel, ylabel = f"{name}{comps[0] + 1}", f"{name}{comps[1] + 1}"
    else:
        E = obsm_array(adata, basis)
        comps = check_components(components, E.shape[1])
        space = E[:, comps]
        to2 = (lambda P: knn_transfer(Xfit, space, P, n_neighbors))
        name = axis_name(basis)
        xlabel, ylabel = f"{name}{comps[0] + 1}", f"{name}{comps[1] + 1}"

    def observed(label_idx: int | None) -> np.ndarray | None:
        if label_idx is None:
            return None
        sel = codes == label_idx
        return space[sel] if sel.any() else None

    titles = [f"{info.time_key} {src} (start)"]
    obs_list = [observed(s_idx)]
    pred_list: list[np.ndarray | None] = [space[rows]]
    order = np.argsort(times, kind="stable")
    for i in order:
        j = info.axis.find(names[i])
        titles.append(f"{info.time_key} {names[i]}" + ("" if j is not None else " (not observed)"))
        obs_list.append(observed(j))
        pred_list.append(to2(np.asarray(coords[i])))
    return Panels(titles, obs_list, pred_list, xlabel, ylabel)


def panels_from_arrays(observed: Any, predicted: Any, times: Any, components: Sequence[int]) -> Panels:
    """The panels of observed snapshots and / or predicted positions given as arrays."""
    if observed is not None and not isinstance(observed, (list, tuple)) and not (
            isinstance(observed, np.ndarray) and observed.ndim == 3):
        raise TypeError(f"expected a list of observed (n_i, d) arrays (or None), got {type(observed).__name__}")
    pred = None if predicted is None else np.asarray(predicted, dtype=np.float64)
    if pred is not None and pred.ndim != 3:
        raise ValueError(f"predicted must be a (T, n, d) array, got shape {pred.shape}")
    obs = None if observed is None else list(observed)
    if pred is None and obs is None:
        raise ValueError("give observed snapshots, predicted positions, or both")
    T = pred.shape[0] if pred is not None else len(obs)
    if obs is not None and len(obs) != T:
        raise ValueError(f"{len(obs)} observed snapshots but {T} predicted time points; they must be aligned "
                         f"(use None for times without observations)")
    dims = {pred.shape[2]} if pred is not None else set()
    obs_arr = []
    for i in range(T):
        o = None if obs is None or obs[i] is None else np.asarray(obs[i], dtype=np.float64)
        if o is not None:
            if o.ndim != 2:
                raise ValueError(f"observed[{i}] must be an (n, d) array, got shape {o.shape}")
            dims.add(o.shape[1])
        obs_arr.append(o)
    if len(dims) != 1:
        raise ValueError(f"observed and predicted points have different dimensions: {sorted(dims)}")
    comps = check_components(components, dims.pop())
    if times is None:
        titles = [f"t{i}" for i in range(T)]
    else:
        tt = list(np.asarray(times).reshape(-1))
        if len(tt) != T:
            raise ValueError(f"{len(tt)} times for {T} time points")
        titles = [f"t = {t:g}" if isinstance(t, (int, float, np.number)) else f"t = {t}" for t in tt]
    return Panels(titles, [None if o is None else o[:, comps] for o in obs_arr],
                  [None if pred is None else pred[i][:, comps] for i in range(T)],
                  f"x{comps[0] + 1}", f"x{comps[1] + 1}")


def limits(p: Panels) -> tuple[tuple[float, float], tuple[float, float]]:
    pts = [a for a in p.observed + p.predicted if a is not None and a.size]
    allp = np.concatenate(pts) if pts else np.zeros((1, 2))
    allp = allp[np.isfinite(allp).all(axis=1)]
    if allp.size == 0:
        allp = np.zeros((1, 2))
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-9)
    return (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])


_ROLLOUT_OPTS = {"doc_components": doc_components, "doc_show_save_ax": doc_show_save_ax,
                 "doc_returns": doc_plot_returns}


@_doc_params(doc_n_cells=doc_n_cells, doc_substeps=doc_substeps, doc_random_state=doc_random_state_subset,
             doc_basis=doc_embedding_basis, **_ROLLOUT_OPTS)
def rollout(
    adata: AnnData,
    key: str = "wlm",
    *,
    rollout_key: str | None = None,
    source: Any = None,
    targets: Any = None,
    n_cells: int | None = None,
    substeps: int | None = None,
    random_state: int = 0,
    components: Sequence[int] = (0, 1),
    basis: str | None = None,
    n_neighbors: int = 15,
    ncols: int = 4,
    size: float = 6.0,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
    **array_input: Any,
) -> Figure | Any | None:
    """Panels over time of a fitted AnnData: observed cells (blue) and predicted cells (red).

    Draws the rollout recorded by :func:`scwlm.tl.rollout` (``rollout_key``, default
    ``f"{key}_rollout"``), or, when ``source`` and ``targets`` are given, simulates one without
    writing to ``adata``. The first panel is the start (the simulated cells in red over all cells
    of that time); then one panel per target with the observed cells of that label, if any.
    Coordinates: ``components`` of the fit's basis, or of ``basis`` (e.g. ``"X_umap"``) with
    predictions placed by k-NN regression as in :func:`holdout`. For plain arrays use
    :func:`rollout_arrays`.

    Parameters
    ----------
    adata
        Annotated data matrix with a fit in ``adata.uns[key]``.
    key
        Key of the fit in ``adata.uns``.
    rollout_key
        Which recorded rollout to draw (the ``key_added`` of :func:`scwlm.tl.rollout`).
    source, targets
        Simulate the cells of ``source`` to ``targets`` instead (as in :func:`scwlm.tl.rollout`).
    {doc_n_cells}
    {doc_substeps}
    {doc_random_state}
    {doc_components}
    {doc_basis}
    ncols
        Panels per row.
    size
        Marker size.
    {doc_show_save_ax}
        ``ax`` may also be a sequence of axes, one per panel.
    **array_input
        Deprecated: ``rollout(observed_list, predicted=..., times=...)`` is forwarded to
        :func:`rollout_arrays` with a :class:`DeprecationWarning`.

    Returns
    -------
    {doc_returns}
        With several panels, the axes are a list.

    Raises
    ------
    KeyError
        ``key``, ``rollout_key`` or an obsm entry of the recorded rollout is missing.
    ValueError
        Only one of ``source`` / ``targets``, bad ``components``, cells of the recorded rollout
        no longer in ``adata``.

    Examples
    --------
    >>> scwlm.tl.rollout(adata, "wlm", source=0, targets=[1, 2])  # doctest: +SKIP
    >>> scwlm.pl.rollout(adata, "wlm", basis="X_umap")  # doctest: +SKIP
    >>> scwlm.pl.rollout(adata, "wlm", source=1, targets=[2, 2.5], return_fig=True)  # doctest: +SKIP
    """
    draw = dict(ncols=ncols, size=size, ax=ax, show=show, save=save, return_fig=return_fig)
    if not is_anndata(adata):
        unknown = sorted(set(array_input) - {"predicted", "times"})
        if unknown:
            raise TypeError(f"rollout() got unexpected keyword arguments {unknown}")
        warnings.warn("scwlm.pl.rollout(observed_arrays, predicted=..., times=...) is deprecated; use "
                      "scwlm.pl.rollout_arrays(observed, predicted, times)", DeprecationWarning, stacklevel=2)
        return rollout_arrays(adata, array_input.get("predicted"), array_input.get("times"), components=components,
                              **draw)
    if array_input:
        raise TypeError(f"rollout() got unexpected keyword arguments {sorted(array_input)} for AnnData input "
                        f"(predicted / times belong to scwlm.pl.rollout_arrays)")
    p = panels_from_anndata(adata, key, rollout_key=rollout_key, source=source, targets=targets, n_cells=n_cells,
                            substeps=substeps, random_state=random_state, components=components, basis=basis,
                            n_neighbors=n_neighbors)
    return _draw(p, **draw)


@_doc_params(**_ROLLOUT_OPTS)
def rollout_arrays(
    observed: Any = None,
    predicted: Any = None,
    times: Any = None,
    *,
    components: Sequence[int] = (0, 1),
    ncols: int = 4,
    size: float = 6.0,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
) -> Figure | Any | None:
    """Panels over time from plain arrays, in any 2-D basis: observed (blue) and predicted (red).

    Parameters
    ----------
    observed
        A list of ``T`` observed ``(n_i, d)`` arrays (``None`` for times without observations),
        or ``None``.
    predicted
        A ``(T, n, d)`` array aligned with ``observed`` (e.g. :meth:`~scwlm.Mechanics.rollout`
        output with the start prepended), or ``None``.
    times
        ``T`` values for the panel titles (default ``t0``, ``t1``, ...).
    {doc_components}
    ncols
        Panels per row.
    size
        Marker size.
    {doc_show_save_ax}
        ``ax`` may also be a sequence of axes, one per panel.

    Returns
    -------
    {doc_returns}
        With several panels, the axes are a list.

    Raises
    ------
    ValueError
        Neither ``observed`` nor ``predicted``; misaligned lengths or dimensions.

    Examples
    --------
    >>> import numpy as np, scwlm
    >>> obs = [np.random.default_rng(i).normal(size=(20, 2)) + i for i in range(3)]
    >>> pred = np.stack([obs[0] + 0.9 * i for i in range(3)])
    >>> fig = scwlm.pl.rollout_arrays(obs, pred, times=[0, 1, 2], return_fig=True, show=False)
    >>> len(fig.axes)
    3
    """
    p = panels_from_arrays(observed, predicted, times, components)
    return _draw(p, ncols=ncols, size=size, ax=ax, show=show, save=save, return_fig=return_fig)


def _draw(p: Panels, *, ncols: int, size: float, ax: Any, show: bool | None, save: bool | str | Path | None,
          return_fig: bool) -> Figure | Any | None:
    import matplotlib.pyplot as plt

    n = len(p.titles)
    ax_given = ax is not None
    if ax_given:
        axes = [ax] if hasattr(ax, "scatter") else list(np.asarray(ax, dtype=object).reshape(-1))
        if len(axes) != n:
            raise ValueError(f"{n} panels but {len(axes)} axes were given")
        fig = axes[0].figure
    else:
        nc = max(1, min(int(ncols), n))
        nr = math.ceil(n / nc)
        fig, grid = plt.subplots(nr, nc, figsize=(3.2 * nc, 3.0 * nr), squeeze=False, sharex=True, sharey=True)
        axes = list(grid.reshape(-1))
        for extra in axes[n:]:
            extra.remove()
        axes = axes[:n]
    xlim, ylim = limits(p)
    for i, a in enumerate(axes):
        if p.observed[i] is not None:
            a.scatter(p.observed[i][:, 0], p.observed[i][:, 1], s=size, c=_OBS, alpha=0.5, lw=0, label="observed")
        if p.predicted[i] is not None:
            a.scatter(p.predicted[i][:, 0], p.predicted[i][:, 1], s=size, c=_PRED, alpha=0.7, lw=0, label="predicted")
        a.set_title(p.titles[i], fontsize="medium")
        a.set_xlim(*xlim)
        a.set_ylim(*ylim)
        a.set_xlabel(p.xlabel)
        if i == 0:
            a.set_ylabel(p.ylabel)
            a.legend(fontsize="small", frameon=False, markerscale=2)
    return finish(fig, axes if len(axes) > 1 else axes[0], ax_given, name="rollout", show=show, save=save,
                  return_fig=return_fig)
