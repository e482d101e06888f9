"""Validation helpers shared by :mod:`scwlm.pp`, :mod:`scwlm.tl` and :mod:`scwlm.pl`.

Every helper only reads the AnnData; a failure raises before anything is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_anndata(adata: Any) -> None:
    """Raise ``TypeError`` unless ``adata`` looks like an :class:`anndata.AnnData`."""
    if not all(hasattr(adata, a) for a in ("obs", "obsm", "uns", "n_obs")):
        raise TypeError(f"expected an AnnData object, got {type(adata).__name__}")


def _available(keys: Any) -> str:
    keys = sorted(str(k) for k in keys)
    return ", ".join(repr(k) for k in keys) if keys else "none"


def obsm_array(adata: Any, key: str, what: str = "basis") -> np.ndarray:
    """``adata.obsm[key]`` as a float64 ``(n_obs, d)`` array; ``KeyError`` listing the obsm keys if absent."""
    if key not in adata.obsm:
        raise KeyError(f"{what} {key!r} is not in adata.obsm; available obsm keys: {_available(adata.obsm.keys())}")
    return dense_2d(adata.obsm[key], f"adata.obsm[{key!r}]", adata.n_obs)


def dense_2d(value: Any, what: str, n_obs: int) -> np.ndarray:
    """A float64 copy of a 2-D (possibly sparse / DataFrame) array with ``n_obs`` rows."""
    if hasattr(value, "toarray"):
        value = value.toarray()
    elif hasattr(value, "to_numpy"):
        value = value.to_numpy()
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not numeric: {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n_obs, dims), got shape {arr.shape}")
    if arr.shape[0] != n_obs:
        raise ValueError(f"{what} has {arr.shape[0]} rows but adata has {n_obs} observations")
    return arr


def check_n_dims(n_dims: Any, available: int, what: str) -> int:
    """Validate ``n_dims`` against the number of available columns (``None`` = all)."""
    if n_dims is None:
        return int(available)
    if isinstance(n_dims, bool) or not isinstance(n_dims, (int, np.integer)) or n_dims < 1:
        raise ValueError(f"n_dims must be a positive integer, got {n_dims!r}")
    if n_dims > available:
        raise ValueError(f"n_dims={n_dims} but {what} has only {available} columns")
    return int(n_dims)


def check_finite(arr: np.ndarray, what: str) -> None:
    """``ValueError`` naming the first row with NaN/inf."""
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(arr.shape[0], -1).any(axis=1))
        raise ValueError(f"{what} contains NaN or inf values in {rows.size} rows (first: row {int(rows[0])})")


def uns_entry(adata: Any, key: str, what: str = "scwlm result") -> dict:
    """``adata.uns[key]`` (a dict); ``KeyError`` listing the uns keys if absent."""
    if key not in adata.uns:
        raise KeyError(f"{what} {key!r} is not in adata.uns; available uns keys: {_available(adata.uns.keys())}")
    entry = adata.uns[key]
    if not isinstance(entry, dict):
        raise ValueError(f"adata.uns[{key!r}] is not a dict written by scwlm (got {type(entry).__name__})")
    return entry
