"""Data preparation for a fit: snapshots from an AnnData (reads only), held-out labels, argument checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..pp._checks import check_anndata
from ..pp._standardize import _standardized
from ._time import TimeAxis, as_label_list, time_axis

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["Prepared", "prepare", "resolve_holdouts", "check_unique_obs_names", "check_key_added"]


@dataclass
class Prepared:
    """Everything a fit needs, computed from the AnnData without writing to it."""

    axis: TimeAxis
    X: np.ndarray  # (n_obs, n_dims) standardised
    V: np.ndarray  # (n_obs, n_dims) standardised velocities
    mean: np.ndarray
    std: np.ndarray
    n_dims: int
    velocity_source: str

    @property
    def snapshots(self) -> list[np.ndarray]:
        return [self.X[self.axis.codes == j] for j in range(len(self.axis.labels))]

    @property
    def velocities(self) -> list[np.ndarray]:
        return [self.V[self.axis.codes == j] for j in range(len(self.axis.labels))]


def check_unique_obs_names(adata: AnnData, what: str) -> None:
    """``ValueError`` naming ``obs_names`` when cells share a name (rollouts refer to cells by name)."""
    names = adata.obs_names
    if not names.is_unique:
        dup = names[names.duplicated()].unique()
        raise ValueError(f"{what} needs unique adata.obs_names: {len(dup)} name(s) occur more than once "
                         f"(e.g. {str(dup[0])!r}); call adata.obs_names_make_unique() first")


def check_key_added(key_added: Any) -> str:
    if not isinstance(key_added, str) or not key_added or "/" in key_added:
        raise ValueError(f"key_added must be a non-empty string without '/', got {key_added!r}")
    return key_added


def prepare(adata: AnnData, time_key: str, basis: str, n_dims: int | None, velocity_key: str | None,
            min_times: int = 2, what: str = "scwlm.tl") -> Prepared:
    check_anndata(adata)
    check_unique_obs_names(adata, what)
    axis = time_axis(adata, time_key)
    if len(axis.labels) < min_times:
        raise ValueError(f"adata.obs[{time_key!r}] has {len(axis.labels)} time point(s) ({list(axis.labels)}); "
                         f"at least {min_times} are needed")
    res = _standardized(adata, basis, n_dims, velocity_key)
    return Prepared(axis, res["X"], res["V"], res["mean"], res["std"], res["n_dims"], res["velocity_source"])


def resolve_holdouts(axis: TimeAxis, holdout: Any, what: str = "holdout") -> list[int]:
    """Indices of interior held-out labels (sorted, unique), validated."""
    idx = sorted({axis.index(h, what) for h in as_label_list(holdout)})
    K = len(axis.labels)
    for i in idx:
        if i == 0:
            raise ValueError(f"{what} {axis.labels[i]!r} is the first time point: it cannot be held out (the "
                             f"model starts from it); held-out times must be interior: {list(axis.labels[1:-1])}")
        if i == K - 1:
            raise ValueError(f"{what} {axis.labels[i]!r} is the last time point: held-out times must be interior "
                             f"(an observed time after it is needed for the McCann baseline): "
                             f"{list(axis.labels[1:-1])}")
    return idx
