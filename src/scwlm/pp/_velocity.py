"""RNA velocity in an embedding: what WLM uses as the initial velocities of observed cells."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from ._checks import check_anndata, check_finite, check_n_dims, dense_2d, obsm_array

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["embedding_velocities"]

#: ``velocity_source`` values recorded in ``.uns`` (see :func:`embedding_velocities`)
SOURCE_ZEROS = "zeros"
SOURCE_PCS = "layers['velocity'] @ varm['PCs']"


def _velocities(adata: AnnData, basis: str, velocity_key: str | None, n_dims: int | None) -> tuple[np.ndarray, str, int]:
    """Velocities ``(n_obs, n_dims)``, a description of where they came from, and ``n_dims``."""
    check_anndata(adata)
    X = obsm_array(adata, basis)
    n_dims = check_n_dims(n_dims, X.shape[1], f"adata.obsm[{basis!r}]")
    if velocity_key is not None and velocity_key in adata.obsm:
        what = f"adata.obsm[{velocity_key!r}]"
        V = dense_2d(adata.obsm[velocity_key], what, adata.n_obs)
        if V.shape[1] < n_dims:
            raise ValueError(f"{what} has {V.shape[1]} columns but n_dims={n_dims} velocity components are needed")
        V = V[:, :n_dims]
        check_finite(V, what)
        return V, f"obsm['{velocity_key}']", n_dims
    missing = []
    if basis != "X_pca":
        missing.append(f"basis is {basis!r}, not 'X_pca' (varm['PCs'] are PCA loadings)")
    if "velocity" not in adata.layers:
        missing.append("no adata.layers['velocity']")
    if "PCs" not in adata.varm:
        missing.append("no adata.varm['PCs']")
    if not missing:
        V = dense_2d(adata.layers["velocity"], "adata.layers['velocity']", adata.n_obs)
        PCs = dense_2d(adata.varm["PCs"], "adata.varm['PCs']", adata.n_vars)
        if PCs.shape[1] < n_dims:
            raise ValueError(f"adata.varm['PCs'] has {PCs.shape[1]} components but n_dims={n_dims} are needed")
        PCs = PCs[:, :n_dims]
        check_finite(PCs, "adata.varm['PCs']")
        nan_genes = ~np.isfinite(V).all(axis=0)
        if nan_genes.any():
            warnings.warn(
                f"{int(nan_genes.sum())} of {adata.n_vars} genes have non-finite velocities (genes without a fitted "
                f"velocity model); they are set to 0 before projecting onto the PCs", UserWarning, stacklevel=3)
            V = np.where(np.isfinite(V), V, 0.0)
        return V @ PCs, SOURCE_PCS, n_dims
    where = f"adata.obsm[{velocity_key!r}] is absent" if velocity_key is not None else "velocity_key is None"
    warnings.warn(
        f"no velocities found ({where}; cannot project layers['velocity'] either: {'; '.join(missing)}); "
        f"using zero initial velocities", UserWarning, stacklevel=3)
    return np.zeros((adata.n_obs, n_dims)), SOURCE_ZEROS, n_dims


def embedding_velocities(
    adata: AnnData,
    *,
    basis: str = "X_pca",
    velocity_key: str | None = "velocity_pca",
    n_dims: int | None = None,
) -> np.ndarray:
    r"""Velocities of every cell in the first ``n_dims`` coordinates of an embedding (reads only).

    Looked up in this order:

    1. ``adata.obsm[velocity_key]`` (first ``n_dims`` columns), e.g. what
       ``scvelo.tl.velocity_embedding(adata, basis="pca")`` writes as ``"velocity_pca"``. Note that
       scVelo builds these from the velocity graph (expected displacement under the transition
       probabilities), not by a linear map, so their scale is that of the embedding's
       neighbourhoods.
    2. For ``basis="X_pca"``: the gene-space velocities ``adata.layers["velocity"]`` projected with
       the PCA loadings ``adata.varm["PCs"]`` (``n_vars x n_comps``):

       .. math:: V_{\mathrm{pca}} = V\, \mathrm{PCs}_{[:, :n_{dims}]}

       without centring (velocities are time derivatives, and the derivative of
       :math:`(x - \mu)\,\mathrm{PCs}` is :math:`\dot x\, \mathrm{PCs}`). Non-finite entries (scVelo
       gives NaN to genes without a fitted model) are set to 0 with a warning. Caveats: scVelo's
       velocities live in the space of the smoothed moments ``layers["Ms"]``, not of the
       log-normalised ``X`` that PCA was computed on, so the projection mixes two spaces (it is a
       first-order approximation); genes outside the PCA (e.g. not highly variable, zero
       loadings) drop out; and if ``X`` was scaled before PCA the per-gene scale factors are not
       applied to ``V``.
    3. Otherwise zero velocities, with a :class:`UserWarning` (WLM then starts every cell at rest).

    Parameters
    ----------
    adata
        Annotated data matrix.
    basis
        Key of the embedding in ``adata.obsm`` (must exist; it fixes ``n_dims``' upper bound).
    velocity_key
        Key of embedding velocities in ``adata.obsm`` (``None`` skips step 1).
    n_dims
        Number of leading components (default: all columns of ``basis``).

    Returns
    -------
    numpy.ndarray
        ``(n_obs, n_dims)`` float64 velocities. Nothing is written to ``adata``.

    Raises
    ------
    KeyError
        If ``basis`` is not in ``adata.obsm`` (the message lists the available keys).
    ValueError
        If the velocities have the wrong number of rows, too few columns, or non-finite values
        (obsm), or ``n_dims`` exceeds the basis.

    Examples
    --------
    >>> import anndata as ad, numpy as np, scwlm
    >>> adata = ad.AnnData(np.zeros((4, 3)))
    >>> adata.obsm["X_pca"] = np.arange(8.0).reshape(4, 2)
    >>> adata.obsm["velocity_pca"] = np.ones((4, 2))
    >>> scwlm.pp.embedding_velocities(adata, n_dims=1).ravel().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    return _velocities(adata, basis, velocity_key, n_dims)[0]
