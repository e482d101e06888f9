"""GIF animations of rollouts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._embedding import _OBS, _PRED, Panels, limits, panels

__all__ = ["animate"]


def animate(
    frames_or_adata: Any,
    path: str | os.PathLike,
    *,
    fps: float = 4,
    observed: Any = None,
    times: Any = None,
    key: str = "wlm",
    rollout_key: str | None = None,
    source: Any = None,
    targets: Any = None,
    components: Sequence[int] = (0, 1),
    basis: str | None = None,
    n_neighbors: int = 15,
    size: float = 8.0,
    dpi: int = 80,
) -> Path:
    """Write a GIF of a rollout (one frame per time), optionally with observations side by side.

    Parameters
    ----------
    frames_or_adata
        A ``(T, n, d)`` array of predicted positions (e.g. :meth:`~scwlm.Mechanics.rollout` output), or an
        AnnData with a fit: then the frames are the rollout recorded by :func:`scwlm.tl.rollout`
        (``rollout_key``, default ``f"{key}_rollout"``; the start, then each target), or, with
        ``source`` and ``targets``, a rollout simulated without writing; observed cells of each
        time are shown side by side.
    path
        Output file (``.gif``).
    fps
        Frames per second.
    observed
        Arrays input: a list of ``T`` observed ``(n_i, d)`` arrays (``None`` where unobserved),
        drawn in a second panel.
    times
        Arrays input: ``T`` times for the frame titles.
    key, rollout_key, source, targets, basis, n_neighbors
        AnnData input, as in :func:`scwlm.pl.rollout`.
    components
        Two column indices to draw.
    size, dpi
        Marker size and resolution.

    Returns
    -------
    pathlib.Path
        The written file (written with :class:`matplotlib.animation.PillowWriter`).

    Examples
    --------
    >>> import numpy as np, scwlm
    >>> frames = np.cumsum(np.random.default_rng(0).normal(size=(5, 30, 2)), axis=0)
    >>> scwlm.pl.animate(frames, "rollout.gif", fps=2).suffix  # doctest: +SKIP
    '.gif'
    """
    if not (isinstance(fps, (int, float)) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if hasattr(frames_or_adata, "obsm") and hasattr(frames_or_adata, "uns"):
        p = panels(frames_or_adata, key, predicted=None, times=None, rollout_key=rollout_key, source=source,
                   targets=targets, n_cells=None, substeps=5, random_state=0, components=components, basis=basis,
                   n_neighbors=n_neighbors)
        side = True
    else:
        frames = np.asarray(frames_or_adata, dtype=np.float64)
        if frames.ndim != 3 or frames.shape[0] == 0:
            raise ValueError(f"frames must be a (T, n, d) array, got shape {frames.shape}")
        p = panels(observed, key, predicted=frames, times=times, rollout_key=None, source=None, targets=None,
                   n_cells=None, substeps=5, random_state=0, components=components, basis=None, n_neighbors=n_neighbors)
        side = observed is not None
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
