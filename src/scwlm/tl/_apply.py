"""Applying a stored fit: rebuild its model, and move cells between the basis and the model's space."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .._docs import _doc_params, doc_fit_key
from ..pp._checks import check_finite, obsm_array
from ..pp._velocity import _velocities
from ._store import Record, read_record

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from ..mechanics import Mechanics

__all__ = ["get_mechanics", "model_space", "to_original"]


@_doc_params(doc_fit_key=doc_fit_key)
def get_mechanics(adata: AnnData, key: str = "wlm", *, holdout: Any = None, seed: int | None = None,
                  device: str = "cpu") -> Mechanics:
    """Rebuild the :class:`~scwlm.Mechanics` stored by :func:`fit_mechanics` (or :func:`leave_one_out`).

    Works on a fresh AnnData as well as after ``write_h5ad`` / ``read_h5ad`` (which may turn the
    JSON string into ``numpy.str_`` and lists into arrays), and on files written by earlier
    versions of scwlm; rollouts of the rebuilt model are bit-identical to the original's on the
    same device.

    Parameters
    ----------
    adata
        Annotated data matrix with ``adata.uns[key]``.
    {doc_fit_key}
    holdout, seed
        For a :func:`leave_one_out` result: which model (default: the first stored).
    device
        Device of the rebuilt model.

    Returns
    -------
    Mechanics

    Raises
    ------
    KeyError
        If ``adata.uns[key]`` (or the requested leave-one-out model) does not exist.
    ValueError
        If ``adata.uns[key]`` was not written by :mod:`scwlm.tl`.

    Examples
    --------
    >>> mech = scwlm.tl.get_mechanics(adata, "wlm")  # doctest: +SKIP
    >>> mech.friction  # doctest: +SKIP
    1.02
    >>> scwlm.tl.get_mechanics(adata, "wlm_loo", holdout="2", seed=1)  # doctest: +SKIP
    """
    return load_model(read_record(adata, key), key, holdout=holdout, seed=seed, device=device)


def load_model(record: Record, key: str, *, holdout: Any = None, seed: Any = None, device: str = "cpu") -> Mechanics:
    """The :class:`~scwlm.Mechanics` of ``record`` (see :func:`get_mechanics`)."""
    from ..mechanics import Mechanics

    return Mechanics.from_state(record.model_state(key, holdout, seed), device=device)


def model_space(adata: AnnData, record: Record, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardised coordinates and velocities of cells ``rows`` with the fit's own statistics."""
    p = record.params
    X = obsm_array(adata, p.basis)
    if X.shape[1] < p.n_dims:
        raise ValueError(f"adata.obsm[{p.basis!r}] has {X.shape[1]} columns; the fit used {p.n_dims}")
    with warnings.catch_warnings():
        if p.velocity_source == "zeros":
            warnings.simplefilter("ignore", UserWarning)
        V, source, _ = _velocities(adata, p.basis, p.velocity_key, p.n_dims)
    if source != p.velocity_source:
        warnings.warn(f"the fit used velocities from {p.velocity_source}, but now they come from {source}",
                      UserWarning, stacklevel=3)
    x = X[rows, : p.n_dims]
    check_finite(x, f"adata.obsm[{p.basis!r}]")
    return (x - record.mean) / record.std, V[rows] / record.std


def to_original(x: np.ndarray, record: Record) -> np.ndarray:
    """Model-space coordinates in the units of the fit's basis: ``x * std + mean``."""
    return x * record.std + record.mean
