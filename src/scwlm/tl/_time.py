"""Time labels: what ``adata.obs[time_key]`` means as times, and which cells carry which label."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from ..pp._checks import _available

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["TimeAxis", "time_axis", "cell_labels", "format_number", "parse_number", "label_str", "as_label_list"]

_ATOL = 1e-9


def format_number(v: float) -> str:
    """``1.0 -> "1"``, ``0.5 -> "0.5"``: short, exact label strings for numeric time labels."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return np.format_float_positional(v, trim="-")


def parse_number(x: Any) -> float | None:
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
            v = parse_number(s)
        else:
            v = parse_number(value)
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
        nums = [parse_number(c) for c in cats]
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
    nums = [parse_number(s) for s in uniq_s]
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
            hit = np.array([label_str(s) == lab for s in strs], dtype=bool)
            out[hit] = j
        if (out < 0).all():  # categories relabelled as numbers, e.g. written as ints by another tool
            nums = np.array([parse_number(s) if parse_number(s) is not None else np.nan for s in strs])
            for j, t in enumerate(np.asarray(times, dtype=np.float64)):
                out[np.abs(nums - t) <= _ATOL * max(1.0, abs(t))] = j
        return out
    vals = col.to_numpy(dtype=np.float64)
    out = np.full(adata.n_obs, -1)
    for j, t in enumerate(np.asarray(times, dtype=np.float64)):
        out[np.abs(vals - t) <= _ATOL * max(1.0, abs(t))] = j
    return out


def label_str(x: Any) -> str:
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
