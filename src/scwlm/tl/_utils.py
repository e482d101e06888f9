"""Shared machinery of :mod:`scwlm.tl`: time labels, data preparation, h5ad-safe storage, models."""

from __future__ import annotations

import json
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from ..pp._checks import _available, check_anndata, check_finite, obsm_array, uns_entry
from ..pp._standardize import _standardized
from ..pp._velocity import _velocities

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from ..mechanics import Mechanics

_ATOL = 1e-9


# ----------------------------------------------------------------------------------------- labels
def format_number(v: float) -> str:
    """``1.0 -> "1"``, ``0.5 -> "0.5"``: short, exact label strings for numeric time labels."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return np.format_float_positional(v, trim="-")


def _parse_number(x: Any) -> float | None:
    if isinstance(x, bool) or isinstance(x, np.bool_):
        return None
    if isinstance(x, numbers.Real):
        v = float(x)
    else:
        try:
            v = float(str(x).strip())
        except ValueError:
            return None
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class TimeAxis:
    """Time labels of the cells and the times they stand for.

    ``labels`` (strings, sorted by time) are the labels that have cells; ``times`` their numeric
    times; ``codes[i]`` the index in ``labels`` of cell ``i``; ``kind`` how the times were derived:
    ``"numeric"`` (numeric column), ``"numeric labels"`` (categories/strings that parse as
    numbers) or ``"category order"`` (positions 0..K-1 of an ordered categorical's categories).
    """

    labels: tuple[str, ...]
    times: np.ndarray
    codes: np.ndarray
    kind: str

    def index(self, value: Any, what: str) -> int:
        """Index in :attr:`labels` of a label given as its string or (numeric axes) its time."""
        i = self.find(value)
        if i is None:
            raise ValueError(f"{what} {value!r} is not a time label of the data; labels: {list(self.labels)}"
                             + ("" if self.kind == "category order" else f" (times {self.times.tolist()})"))
        return i

    def find(self, value: Any) -> int | None:
        """Like :meth:`index` but ``None`` when nothing matches."""
        if isinstance(value, (str, np.str_, bytes)):
            s = value.decode() if isinstance(value, bytes) else str(value)
            if s in self.labels:
                return self.labels.index(s)
            if self.kind == "category order":
                return None
            v = _parse_number(s)
        else:
            v = _parse_number(value)
            if v is None:
                return None
            if self.kind == "category order":  # numbers name categories here, not positions
                s = format_number(v)
                return self.labels.index(s) if s in self.labels else None
        if v is None:
            return None
        hits = np.flatnonzero(np.abs(self.times - v) <= _ATOL * max(1.0, abs(v)))
        return int(hits[0]) if hits.size else None


def _obs_column(adata: AnnData, time_key: str) -> pd.Series:
    if not isinstance(time_key, str) or time_key not in adata.obs.columns:
        raise KeyError(f"time_key {time_key!r} is not a column of adata.obs; available obs columns: "
                       f"{_available(adata.obs.columns)}")
    return adata.obs[time_key]


def time_axis(adata: AnnData, time_key: str) -> TimeAxis:
    """Derive the :class:`TimeAxis` of ``adata.obs[time_key]`` (validating it; reads only).

    Numeric columns: times are the values. Categoricals (ordered or not) and string columns whose
    labels all parse as numbers: times are those numbers (an ordered categorical must list them in
    increasing order). Other ordered categoricals: times are the category positions 0..K-1.
    Anything else (unordered non-numeric labels) raises ``ValueError``.
    """
    col = _obs_column(adata, time_key)
    if col.isna().any():
        raise ValueError(f"adata.obs[{time_key!r}] has {int(col.isna().sum())} cells without a time label (NaN); "
                         f"remove them (adata = adata[adata.obs[{time_key!r}].notna()].copy()) first")
    hint = (f"give adata.obs[{time_key!r}] numeric times or make it an ordered categorical, e.g. "
            f"adata.obs[{time_key!r}] = pd.Categorical(adata.obs[{time_key!r}], categories=[...], ordered=True)")
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = list(col.cat.categories)
        nums = [_parse_number(c) for c in cats]
        codes_all = col.cat.codes.to_numpy()
        if all(n is not None for n in nums):
            nums_arr = np.asarray(nums, dtype=np.float64)
            if np.unique(nums_arr).size != nums_arr.size:
                raise ValueError(f"the categories of adata.obs[{time_key!r}] {cats} parse to duplicate times")
            if col.cat.ordered and (np.diff(nums_arr) <= 0).any():
                raise ValueError(f"adata.obs[{time_key!r}] is an ordered categorical whose categories {cats} are "
                                 f"numbers out of increasing order; reorder the categories or use numbers")
            kind, cat_times = "numeric labels", nums_arr
        elif col.cat.ordered:
            kind, cat_times = "category order", np.arange(len(cats), dtype=np.float64)
        else:
            raise ValueError(f"adata.obs[{time_key!r}] is an unordered categorical with non-numeric labels "
                             f"{[str(c) for c in cats][:10]}; their order in time is unknown: {hint}")
        present = np.unique(codes_all)
        order = present[np.argsort(cat_times[present], kind="stable")]
        remap = np.full(len(cats), -1)
        remap[order] = np.arange(order.size)
        labels = tuple(str(cats[i]) if kind == "category order" or not isinstance(cats[i], numbers.Real)
                       else format_number(cats[i]) for i in order)
        return TimeAxis(labels, cat_times[order], remap[codes_all], kind)
    if pd.api.types.is_bool_dtype(col.dtype):
        raise ValueError(f"adata.obs[{time_key!r}] is boolean, not a time label: {hint}")
    if pd.api.types.is_numeric_dtype(col.dtype):
        vals = col.to_numpy(dtype=np.float64)
        if not np.isfinite(vals).all():
            raise ValueError(f"adata.obs[{time_key!r}] contains non-finite times")
        uniq, codes = np.unique(vals, return_inverse=True)
        return TimeAxis(tuple(format_number(u) for u in uniq), uniq, codes.reshape(-1), "numeric")
    strs = col.astype(str).to_numpy()
    uniq_s = np.unique(strs)
    nums = [_parse_number(s) for s in uniq_s]
    if all(n is not None for n in nums):
        nums_arr = np.asarray(nums, dtype=np.float64)
        if np.unique(nums_arr).size != nums_arr.size:
            raise ValueError(f"the labels of adata.obs[{time_key!r}] {uniq_s.tolist()} parse to duplicate times")
        order = np.argsort(nums_arr)
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        codes = rank[np.searchsorted(uniq_s, strs)]
        return TimeAxis(tuple(str(uniq_s[i]) for i in order), nums_arr[order], codes, "numeric labels")
    raise ValueError(f"adata.obs[{time_key!r}] holds unordered string labels {uniq_s[:10].tolist()}; their order "
                     f"in time is unknown: {hint}")


def cell_labels(adata: AnnData, time_key: str, labels: Sequence[str], times: np.ndarray) -> np.ndarray:
    """Index into ``labels`` of every cell (``-1`` for labels unknown to a fit), from the stored mapping."""
    col = _obs_column(adata, time_key)
    labels = [str(x) for x in labels]
    if isinstance(col.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(col.dtype):
        strs = col.astype(object).to_numpy()
        out = np.full(adata.n_obs, -1)
        for j, lab in enumerate(labels):
            hit = np.array([_label_str(s) == lab for s in strs], dtype=bool)
            out[hit] = j
        if (out < 0).all():  # categories relabelled as numbers, e.g. written as ints by another tool
            nums = np.array([_parse_number(s) if _parse_number(s) is not None else np.nan for s in strs])
            for j, t in enumerate(np.asarray(times, dtype=np.float64)):
                out[np.abs(nums - t) <= _ATOL * max(1.0, abs(t))] = j
        return out
    vals = col.to_numpy(dtype=np.float64)
    out = np.full(adata.n_obs, -1)
    for j, t in enumerate(np.asarray(times, dtype=np.float64)):
        out[np.abs(vals - t) <= _ATOL * max(1.0, abs(t))] = j
    return out


def _label_str(x: Any) -> str:
    if isinstance(x, (numbers.Real,)) and not isinstance(x, (bool, np.bool_)):
        return format_number(x)
    return str(x)


def as_label_list(value: Any) -> list[Any]:
    """A label or a list of labels -> list (``None`` -> empty)."""
    if value is None:
        return []
    if isinstance(value, (str, np.str_, numbers.Number)):
        return [value]
    if isinstance(value, (np.ndarray, pd.Index, pd.Series)):
        return list(np.asarray(value).reshape(-1))
    if isinstance(value, Sequence):
        return list(value)
    raise ValueError(f"expected a time label or a list of labels, got {type(value).__name__}")


# ------------------------------------------------------------------------------------ preparation
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


def prepare(adata: AnnData, time_key: str, basis: str, n_dims: int | None, velocity_key: str | None,
            min_times: int = 2) -> Prepared:
    check_anndata(adata)
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


# ---------------------------------------------------------------------------------------- storage
def h5ad_safe(obj: Any) -> Any:
    """Convert to what ``write_h5ad`` stores faithfully: nested dicts of arrays, strings and numbers.

    ``None`` becomes the string ``"None"``; lists become arrays (strings as ``str`` arrays, mixed
    lists as arrays of strings); NumPy scalars become Python scalars.
    """
    if isinstance(obj, dict):
        return {str(k).replace("/", "_"): h5ad_safe(v) for k, v in obj.items()}
    if obj is None:
        return "None"
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (str, np.str_, bytes)):
        return obj.decode() if isinstance(obj, bytes) else str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, numbers.Number):
        return obj
    if isinstance(obj, (list, tuple, np.ndarray)):
        arr = np.asarray(obj) if not isinstance(obj, np.ndarray) else obj
        if arr.dtype.kind in "biuf":
            return arr.copy()
        if arr.dtype.kind == "U":
            return arr.astype(str)
        items = list(arr.reshape(-1)) if isinstance(obj, np.ndarray) else list(obj)
        if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in items) and items:
            return np.asarray(items, dtype=np.float64)
        return np.asarray(["None" if v is None else str(v) for v in items], dtype=str)
    return str(obj)


def stored_str(value: Any) -> str:
    """A string read back from ``.uns`` (``str``, ``numpy.str_``, bytes or a 0-d array)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def stored_list(value: Any) -> list[str]:
    """A list of strings read back from ``.uns`` (array, list, or a single string)."""
    if value is None:
        return []
    if isinstance(value, (str, np.str_, bytes)):
        return [stored_str(value)]
    return [stored_str(v) for v in np.asarray(value, dtype=object).reshape(-1)]


def optional_str(value: Any) -> str | None:
    s = stored_str(value)
    return None if s in ("", "None") else s


def model_state(entry: dict) -> dict:
    """The ``Mechanics.to_state()`` dict stored in ``entry``, normalised after an h5ad round trip."""
    return {
        "meta": stored_str(entry["meta"]),
        "weights": {str(k): np.asarray(v) for k, v in dict(entry["weights"]).items()},
        "history": {str(k): np.asarray(v) for k, v in dict(entry.get("history", {})).items()},
    }


def model_name(holdout: str, seed: int) -> str:
    return f"holdout_{holdout}_seed_{int(seed)}"


def select_state(entry: dict, key: str, holdout: Any = None, seed: Any = None) -> dict:
    """The stored model of a fit (``entry["model"]``) or one of a leave-one-out run (``entry["models"]``)."""
    if "model" in entry:
        return entry["model"]
    if "models" not in entry:
        raise KeyError(f"adata.uns[{key!r}] holds no model (no 'model' or 'models' entry); keys: {_available(entry)}")
    models = dict(entry["models"])
    res = entry.get("results", {})
    hs, ss = stored_list(res.get("holdout", [])), [int(s) for s in np.asarray(res.get("seed", [])).reshape(-1)]
    cands = list(zip(hs, ss))
    if holdout is not None:
        cands = [(h, s) for h, s in cands if h == _label_str(holdout) or h == str(holdout)]
    if seed is not None:
        cands = [(h, s) for h, s in cands if s == int(seed)]
    if not cands:
        raise KeyError(f"no model in adata.uns[{key!r}]['models'] for holdout={holdout!r}, seed={seed!r}; "
                       f"stored: {_available(models)}")
    return models[model_name(*cands[0])]


def get_model(adata: AnnData, key: str, holdout: Any = None, seed: Any = None, device: str = "cpu") -> Mechanics:
    from ..mechanics import Mechanics

    entry = uns_entry(adata, key, "key")
    state = model_state(select_state(entry, key, holdout, seed))
    return Mechanics.from_state(state, device=device)


# ----------------------------------------------------------------------------- applying a fit
@dataclass
class FitInfo:
    """The parameters of a stored fit, read back from ``.uns[key]``."""

    key: str
    time_key: str
    basis: str
    n_dims: int
    velocity_key: str | None
    velocity_source: str
    labels: list[str]
    times: np.ndarray
    holdout: list[str]
    mean: np.ndarray
    std: np.ndarray
    kind: str

    @property
    def axis(self) -> TimeAxis:
        """The fit's labels and times (without cells)."""
        return TimeAxis(tuple(self.labels), self.times, np.zeros(0, dtype=int), self.kind)


def fit_info(adata: AnnData, key: str) -> FitInfo:
    entry = uns_entry(adata, key, "key")
    if "params" not in entry or "standardization" not in entry:
        raise ValueError(f"adata.uns[{key!r}] was not written by scwlm.tl.fit_mechanics or leave_one_out")
    p, s = entry["params"], entry["standardization"]
    return FitInfo(
        key=key, time_key=stored_str(p["time_key"]), basis=stored_str(p["basis"]), n_dims=int(p["n_dims"]),
        velocity_key=optional_str(p.get("velocity_key", "")), velocity_source=stored_str(p.get("velocity_source", "")),
        labels=stored_list(p["time_labels"]), times=np.asarray(p["times"], dtype=np.float64).reshape(-1),
        holdout=stored_list(p.get("holdout", [])),
        mean=np.asarray(s["mean"], dtype=np.float64).reshape(-1), std=np.asarray(s["std"], dtype=np.float64).reshape(-1),
        kind=stored_str(p.get("time_kind", "numeric labels")),
    )


def model_space(adata: AnnData, info: FitInfo, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardised coordinates and velocities of cells ``rows`` with the fit's own statistics."""
    X = obsm_array(adata, info.basis)
    if X.shape[1] < info.n_dims:
        raise ValueError(f"adata.obsm[{info.basis!r}] has {X.shape[1]} columns; the fit used {info.n_dims}")
    with warnings.catch_warnings():
        if info.velocity_source == "zeros":
            warnings.simplefilter("ignore", UserWarning)
        V, source, _ = _velocities(adata, info.basis, info.velocity_key, info.n_dims)
    if source != info.velocity_source:
        warnings.warn(f"the fit used velocities from {info.velocity_source}, but now they come from {source}",
                      UserWarning, stacklevel=3)
    x = X[rows, : info.n_dims]
    check_finite(x, f"adata.obsm[{info.basis!r}]")
    return (x - info.mean) / info.std, V[rows] / info.std


def to_original(x: np.ndarray, info: FitInfo) -> np.ndarray:
    return x * info.std + info.mean


def config_dict(config: Any) -> dict:
    return h5ad_safe(json.loads(json.dumps(config.to_dict())))


# ---------------------------------------------------------------------------------------- metrics
def neighbours(h: int, held: Sequence[int], K: int) -> tuple[int, int]:
    """Previous and next observed (not held-out) snapshot indices around ``h``."""
    held = set(held)
    prev = [i for i in range(h) if i not in held]
    nxt = [i for i in range(h + 1, K) if i not in held]
    if not prev or not nxt:
        raise ValueError(f"snapshot {h} needs observed snapshots on both sides")
    return prev[-1], nxt[0]


def baselines(prep: Prepared, h: int, held: Sequence[int]) -> dict[str, Any]:
    """McCann interpolation and previous-snapshot W1 for held-out snapshot ``h`` (standardised units)."""
    from ..core.baselines import mccann_interpolation
    from ..core.metrics import wasserstein1

    snaps, times = prep.snapshots, prep.axis.times
    s, e = neighbours(h, held, len(snaps))
    frac = float((times[h] - times[s]) / (times[e] - times[s]))
    pts, w = mccann_interpolation(snaps[s], snaps[e], frac)
    return {
        "start": s, "end": e, "fraction": frac,
        "w1_mccann": float(wasserstein1(pts, snaps[h], x_weights=w)),
        "w1_previous": float(wasserstein1(snaps[s], snaps[h])),
    }
