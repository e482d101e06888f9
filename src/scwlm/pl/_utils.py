"""Shared plotting helpers: show/save/return conventions, axis names, embedding transfer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def interactive_backend() -> bool:
    """Whether figures should be shown by default (GUI backends and Jupyter's inline backend)."""
    import matplotlib

    backend = str(matplotlib.get_backend()).lower()
    if any(tag in backend for tag in ("inline", "ipympl", "widget")):
        return True
    if backend in _NON_INTERACTIVE:
        return False
    try:  # matplotlib >= 3.9
        from matplotlib.backends import BackendFilter, backend_registry

        interactive = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # pragma: no cover - older matplotlib
        from matplotlib import rcsetup

        interactive = rcsetup.interactive_bk
    return backend in {b.lower() for b in interactive}


def new_axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 4.0)) -> tuple[Figure, Axes]:
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def finish(fig: Figure, ax: Any, ax_given: bool, *, name: str, show: bool | None, save: bool | str | Path | None,
           return_fig: bool) -> Any:
    """Save / show / return like scanpy: the figure with ``return_fig``, the axes when they were given."""
    if save:
        path = Path("figures") / f"{name}.png" if save is True else Path(save)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    if show is None:
        show = interactive_backend() and not ax_given and not return_fig
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    if return_fig:
        return fig
    if ax_given:
        return ax
    return None


def axis_name(basis: str) -> str:
    """``"X_pca" -> "PC"``, ``"X_umap" -> "UMAP"``, ``"X_tsne" -> "tSNE"``, else the key without ``X_``."""
    known = {"x_pca": "PC", "x_umap": "UMAP", "x_tsne": "tSNE", "x_phate": "PHATE", "x_diffmap": "DC"}
    return known.get(basis.lower(), basis[2:] if basis.startswith("X_") else basis)


def knn_transfer(source: np.ndarray, target: np.ndarray, query: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Map ``query`` points from the ``source`` space to the ``target`` space by k-NN regression.

    A :class:`sklearn.neighbors.KNeighborsRegressor` (distance weights) fitted on the observed
    (source, target) pairs, e.g. (PCA coordinates, UMAP coordinates): UMAP has no exact transform
    for new points, so a predicted cell is drawn at the distance-weighted mean UMAP position of its
    nearest observed cells in PCA space.
    """
    from sklearn.neighbors import KNeighborsRegressor

    ok = np.isfinite(source).all(axis=1) & np.isfinite(target).all(axis=1)
    if ok.sum() == 0:
        raise ValueError("no observed cell has finite coordinates in both spaces")
    k = int(max(1, min(n_neighbors, ok.sum())))
    reg = KNeighborsRegressor(n_neighbors=k, weights="distance").fit(source[ok], target[ok])
    out = np.full((query.shape[0], target.shape[1]), np.nan)
    good = np.isfinite(query).all(axis=1)
    if good.any():
        out[good] = reg.predict(query[good])
    return out


def check_components(components: Sequence[int], dim: int) -> list[int]:
    comps = [int(c) for c in components]
    if len(comps) != 2 or any(c < 0 or c >= dim for c in comps):
        raise ValueError(f"components must be two column indices in 0..{dim - 1}, got {list(components)}")
    return comps
