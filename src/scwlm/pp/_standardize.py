"""Global standardisation of an embedding and its velocities (the paper's EB preprocessing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._checks import check_finite
from ._velocity import _velocities

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["standardize", "standardize_embedding"]


def standardize(
    X: Any, V: Any = None, *, mean: Any = None, std: Any = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    r"""Centre and scale points with one global mean/std per coordinate; scale velocities alike.

    :math:`X_s = (X - \mu) / \sigma` and :math:`V_s = V / \sigma` (velocities are derivatives, so
    they are scaled but not centred), with :math:`\mu, \sigma` the mean and NumPy standard
    deviation (``ddof=0``) of each column over all rows of ``X`` — over all cells of all time
    points, as in TrajectoryNet and the WLM paper.

    Parameters
    ----------
    X
        ``(n, d)`` points.
    V
        Optional ``(n, d)`` velocities.
    mean, std
        Use these ``(d,)`` statistics instead of estimating them from ``X`` (e.g. to apply a fit's
        standardisation to new cells).

    Returns
    -------
    Xs, Vs, mean, std
        Standardised points, standardised velocities (``None`` if ``V`` is), and the statistics.

    Raises
    ------
    ValueError
        For non-finite values, shape mismatches, or a constant column (zero std).

    Examples
    --------
    >>> import numpy as np
    >>> Xs, Vs, mean, std = standardize(np.array([[0.0], [2.0]]), np.array([[1.0], [1.0]]))
    >>> Xs.ravel().tolist(), Vs.ravel().tolist(), mean.tolist(), std.tolist()
    ([-1.0, 1.0], [1.0, 1.0], [1.0], [1.0])
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array (n, d), got shape {X.shape}")
    check_finite(X, "X")
    if mean is None:
        mean = X.mean(axis=0)
    if std is None:
        std = X.std(axis=0)
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if mean.shape != (X.shape[1],) or std.shape != (X.shape[1],):
        raise ValueError(f"mean and std must have {X.shape[1]} entries, got {mean.shape} and {std.shape}")
    if not (np.isfinite(std).all() and (std > 0).all()):
        raise ValueError(f"cannot standardise: columns {np.flatnonzero(~(std > 0)).tolist()} are constant (std 0)")
    Xs = (X - mean) / std
    Vs = None
    if V is not None:
        V = np.asarray(V, dtype=np.float64)
        if V.shape != X.shape:
            raise ValueError(f"velocities have shape {V.shape} but the points have shape {X.shape}")
        check_finite(V, "V")
        Vs = V / std
    return Xs, Vs, mean, std


def _standardized(adata: AnnData, basis: str, n_dims: int | None, velocity_key: str | None) -> dict[str, Any]:
    """Compute (without writing) the standardised embedding, velocities and statistics."""
    from ._checks import obsm_array

    V, source, n_dims = _velocities(adata, basis, velocity_key, n_dims)
    X = obsm_array(adata, basis)[:, :n_dims]
    check_finite(X, f"adata.obsm[{basis!r}] (first {n_dims} columns)")
    Xs, Vs, mean, std = standardize(X, V)
    return {"X": Xs, "V": Vs, "mean": mean, "std": std, "n_dims": n_dims, "velocity_source": source}


def standardize_embedding(
    adata: AnnData,
    *,
    basis: str = "X_pca",
    n_dims: int | None = 5,
    velocity_key: str | None = "velocity_pca",
    key_added: str = "scwlm_standardized",
    copy: bool = False,
) -> AnnData | None:
    """Standardise the first ``n_dims`` coordinates of an embedding and their velocities.

    The paper's embryoid-body preprocessing: global mean/std over all cells (see
    :func:`standardize`); velocities from :func:`embedding_velocities` divided by the same std.

    Parameters
    ----------
    adata
        Annotated data matrix.
    basis
        Embedding in ``adata.obsm``.
    n_dims
        Number of leading coordinates (``None``: all).
    velocity_key
        Embedding velocities in ``adata.obsm`` (see :func:`embedding_velocities` for the fallbacks).
    key_added
        Where to write the results.
    copy
        Return a modified copy instead of writing in place.

    Returns
    -------
    AnnData or None
        With ``copy=True`` the modified copy, else ``None``. Writes
        ``adata.obsm[key_added]`` (``(n_obs, n_dims)`` standardised coordinates),
        ``adata.obsm[key_added + "_velocity"]`` and ``adata.uns[key_added]`` =
        ``{"mean", "std", "basis", "n_dims", "velocity_source"}``.

    Raises
    ------
    KeyError
        Missing ``basis``.
    ValueError
        NaN in the embedding, velocities of the wrong shape, a constant coordinate. ``adata`` is
        unchanged whenever an error is raised.

    Examples
    --------
    >>> import anndata as ad, numpy as np, scwlm
    >>> adata = ad.AnnData(np.zeros((4, 3)))
    >>> adata.obsm["X_pca"] = np.array([[0.0, 1], [2, 1], [0, 3], [2, 3]])
    >>> adata.obsm["velocity_pca"] = np.ones((4, 2))
    >>> scwlm.pp.standardize_embedding(adata, n_dims=2)
    >>> adata.obsm["scwlm_standardized"][0].tolist(), adata.uns["scwlm_standardized"]["std"].tolist()
    ([-1.0, -1.0], [1.0, 1.0])
    """
    res = _standardized(adata, basis, n_dims, velocity_key)
    out = adata.copy() if copy else adata
    out.obsm[key_added] = res["X"]
    out.obsm[f"{key_added}_velocity"] = res["V"]
    out.uns[key_added] = {
        "mean": res["mean"], "std": res["std"], "basis": basis, "n_dims": int(res["n_dims"]),
        "velocity_source": res["velocity_source"],
    }
    return out if copy else None
