"""GIF animations of rollouts."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .._docs import _doc_params, doc_components, doc_embedding_basis, doc_n_cells, doc_substeps
from ._embedding import _OBS, _PRED, Panels, is_anndata, limits, panels_from_anndata, panels_from_arrays

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["animate", "animate_arrays"]

_GIF_OPTS = {"doc_components": doc_components, "doc_gif": """fps
        Frames per second.
    size, dpi
        Marker size and resolution."""}


def _check_fps(fps: Any) -> None:
    if not (isinstance(fps, (int, float)) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")


@_doc_params(doc_n_cells=doc_n_cells, doc_substeps=doc_substeps, doc_basis=doc_embedding_basis, **_GIF_OPTS)
def animate(
    adata: AnnData,
    path: str | os.PathLike,
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
    fps: float = 4,
    size: float = 8.0,
    dpi: int = 80,
    **array_input: Any,
) -> Path:
    """Write a GIF of a rollout of a fitted AnnData: observed and predicted cells side by side.

    The frames are the rollout recorded by :func:`scwlm.tl.rollout` (``rollout_key``, default
    ``f"{key}_rollout"``; the start, then each target), or, with ``source`` and ``targets``, a
    rollout simulated without writing (as :func:`scwlm.pl.rollout` draws them). For plain arrays
    use :func:`animate_arrays`.

    Parameters
    ----------
    adata
        Annotated data matrix with a fit in ``adata.uns[key]``.
    path
        Output file (``.gif``; missing folders are created).
    key
        Key of the fit in ``adata.uns``.
    rollout_key, source, targets
        As in :func:`scwlm.pl.rollout`.
    {doc_n_cells}
    {doc_substeps}
    random_state
        Seed of the choice of the ``n_cells`` subset.
    {doc_components}
    {doc_basis}
    {doc_gif}
    **array_input
        Deprecated: ``animate(frames, path, observed=..., times=...)`` is forwarded to
        :func:`animate_arrays` with a :class:`DeprecationWarning`.

    Returns
    -------
    pathlib.Path
        The written file (written with :class:`matplotlib.animation.PillowWriter`).

    Examples
    --------
    >>> scwlm.tl.rollout(adata, "wlm", source=0, targets=[1, 2])  # doctest: +SKIP
    >>> scwlm.pl.animate(adata, "rollout.gif", fps=2)  # doctest: +SKIP
    """
    if not is_anndata(adata):
        unknown = sorted(set(array_input) - {"observed", "times"})
        if unknown:
            raise TypeError(f"animate() got unexpected keyword arguments {unknown}")
        warnings.warn("scwlm.pl.animate(frames, path, observed=..., times=...) is deprecated; use "
                      "scwlm.pl.animate_arrays(frames, path, observed=..., times=...)", DeprecationWarning,
                      stacklevel=2)
        return animate_arrays(adata, path, observed=array_input.get("observed"), times=array_input.get("times"),
                              components=components, fps=fps, size=size, dpi=dpi)
    if array_input:
        raise TypeError(f"animate() got unexpected keyword arguments {sorted(array_input)} for AnnData input "
                        f"(observed / times belong to scwlm.pl.animate_arrays)")
    _check_fps(fps)
    p = panels_from_anndata(adata, key, rollout_key=rollout_key, source=source, targets=targets, n_cells=n_cells,
                            substeps=substeps, random_state=random_state, components=components, basis=basis,
                            n_neighbors=n_neighbors)
    return _save(p, path, side=True, fps=fps, size=size, dpi=dpi)


@_doc_params(**_GIF_OPTS)
def animate_arrays(
    frames: Any,
    path: str | os.PathLike,
    *,
    observed: Any = None,
    times: Any = None,
    components: Sequence[int] = (0, 1),
    fps: float = 4,
    size: float = 8.0,
    dpi: int = 80,
) -> Path:
    """Write a GIF of predicted positions (one frame per time), optionally with observations beside.

    Parameters
    ----------
    frames
        A ``(T, n, d)`` array of predicted positions (e.g. :meth:`~scwlm.Mechanics.rollout` output).
    path
        Output file (``.gif``; missing folders are created).
    observed
        A list of ``T`` observed ``(n_i, d)`` arrays (``None`` where unobserved), drawn in a
        second panel.
    times
        ``T`` times for the frame titles.
    {doc_components}
    {doc_gif}

    Returns
    -------
    pathlib.Path
        The written file (written with :class:`matplotlib.animation.PillowWriter`).

    Examples
    --------
    >>> import numpy as np, scwlm
    >>> frames = np.cumsum(np.random.default_rng(0).normal(size=(5, 30, 2)), axis=0)
    >>> scwlm.pl.animate_arrays(frames, "rollout.gif", fps=2).suffix  # doctest: +SKIP
    '.gif'
    """
    _check_fps(fps)
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be a (T, n, d) array, got shape {frames.shape}")
    p = panels_from_arrays(observed, frames, times, components)
    return _save(p, path, side=observed is not None, fps=fps, size=size, dpi=dpi)


def _save(p: Panels, path: str | os.PathLike, *, side: bool, fps: float, size: float, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(p, path, side=side, fps=fps, size=size, dpi=dpi)
    return path


def _write(p: Panels, path: Path, *, side: bool, fps: float, size: float, dpi: int) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    xlim, ylim = limits(p)
    ncols = 2 if side else 1
    fig, axes = plt.subplots(1, ncols, figsize=(3.6 * ncols, 3.4), squeeze=False)
    axes = list(axes[0])
    empty = np.zeros((0, 2))
    if side:
        a_obs, a_pred = axes
        a_obs.set_title("observed", fontsize="medium")
        a_pred.set_title("predicted", fontsize="medium")
    else:
        a_obs, a_pred = None, axes[0]
    sc_obs = a_obs.scatter([], [], s=size, c=_OBS, lw=0, alpha=0.6) if a_obs is not None else None
    sc_pred = a_pred.scatter([], [], s=size, c=_PRED, lw=0, alpha=0.7)
    for a in axes:
        a.set_xlim(*xlim)
        a.set_ylim(*ylim)
        a.set_xlabel(p.xlabel)
        a.set_ylabel(p.ylabel)
    title = fig.suptitle("")

    def update(i: int) -> tuple:
        if sc_obs is not None:
            sc_obs.set_offsets(p.observed[i] if p.observed[i] is not None else empty)
        sc_pred.set_offsets(p.predicted[i] if p.predicted[i] is not None else empty)
        title.set_text(p.titles[i])
        return (sc_pred,) if sc_obs is None else (sc_obs, sc_pred)

    anim = FuncAnimation(fig, update, frames=len(p.titles), blit=False)
    try:
        anim.save(str(path), writer=PillowWriter(fps=fps), dpi=dpi)
    finally:
        plt.close(fig)
