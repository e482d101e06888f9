r"""The ``adata.uns`` format of :mod:`scwlm.tl`: one record type per kind of entry.

Every writer (:func:`~scwlm.tl.fit_mechanics`, :func:`~scwlm.tl.leave_one_out`,
:func:`~scwlm.tl.rollout`) builds a record and stores ``record.to_uns()``; every reader (``tl``
and ``pl``) goes through :func:`read_record` / ``from_uns``. Nothing else looks at the keys.

Layout of ``adata.uns[key]`` (``format_version`` 2)
    ``kind``
        ``"fit"`` (:class:`FitRecord`) or ``"leave_one_out"`` (:class:`LeaveOneOutRecord`).
    ``format_version``
        :data:`FORMAT_VERSION`.
    ``params``
        How the data were prepared and the model trained (:class:`Params`): ``time_key``,
        ``basis``, ``n_dims``, ``velocity_key`` (``""`` for ``None``), ``velocity_source``,
        ``time_labels`` / ``times`` / ``time_kind`` (the label -> time mapping, sorted by time),
        ``n_cells`` per label, ``holdouts`` (the held-out labels: all left out of the one model
        of a fit, each left out of its own models in a leave-one-out run), ``friction`` (the
        argument), ``n_iter``, ``device``, ``engine_config``; a fit adds ``random_state`` and
        ``train_labels``, a leave-one-out run ``seeds`` and ``start_labels``.
    ``standardization``
        ``mean`` and ``std``: ``x_basis = x_model * std + mean``.
    ``loss_history``, ``friction_history``
        ``(n_iter,)`` for a fit, ``(n_models, n_iter)`` (rows in table order) for a leave-one-out run.
    ``model`` (fit) / ``models`` + ``model_keys`` (leave-one-out)
        :meth:`~scwlm.Mechanics.to_state` dicts; ``model_keys[i]`` names the model of table row
        ``i`` in ``models`` (``f"holdout_{label}_seed_{seed}"`` with ``"/"`` replaced by ``"_"``,
        as HDF5 keys cannot hold it).
    ``friction``, ``metrics`` (fit) / ``results``, ``columns``, ``metrics`` (leave-one-out)
        The learned friction and the scores. ``metrics`` also says how every :math:`W_1` was
        computed (:func:`evaluation_metrics`): per held-out label (fit) or table row
        (leave-one-out) ``w1_method`` / ``w1_mccann_method`` / ``w1_previous_method``
        (``"exact"`` on all cells, or ``"subsampled"``), ``w1_draw_se`` /
        ``w1_mccann_draw_se`` / ``w1_previous_draw_se`` (standard error over the subsample
        draws, 0 when exact), and ``w1_settings`` (``max_points``, ``subsample``, ``n_draws``,
        ``seed``) and ``rollout_chunk_size`` (``"None"``: all cells at once).
    ``rollouts``
        ``name -> ``:class:`RolloutRecord` (written by :func:`~scwlm.tl.rollout`).

Row-wise columns (``metrics["holdout"]``, ``results["holdout"]``) are singular: one label per row;
the list of held-out labels is ``params["holdouts"]`` in both kinds.

Format history
    1 (implicit; scwlm up to commit 64cf8ec): no ``kind`` or ``format_version``; a fit stored its
    held-out labels as ``params["holdout"]``, a leave-one-out run as ``params["holdouts"]`` (with
    an empty ``params["holdout"]``) and had no ``model_keys``. Such entries are still read: the kind
    is told from ``model`` versus ``models``, here and nowhere else.

    2 gained optional entries later (entries without them are read as before): how each
    :math:`W_1` was computed (``w1_method``, ``w1_draw_se``, ... in a fit's ``metrics``; a
    leave-one-out ``metrics`` entry) and a rollout's ``chunk_size`` (absent: all cells at once).
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Union

import numpy as np
import pandas as pd

from ..pp._checks import _available, uns_entry
from ._time import TimeAxis, label_str

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = [
    "FORMAT_VERSION", "Params", "RolloutRecord", "FitRecord", "LeaveOneOutRecord", "Record", "read_record",
    "write_record", "add_rollout", "h5ad_safe", "stored_str", "stored_list", "safe_key", "config_dict",
    "evaluation_metrics",
]

#: version of the layout written by this code (1 = the implicit layout of scwlm <= 64cf8ec)
FORMAT_VERSION = 2

#: columns of a leave-one-out table (``results``)
LOO_COLUMNS = ["holdout", "seed", "w1", "w1_mccann", "w1_previous", "friction"]


# ------------------------------------------------------------------------------ h5ad-safe values
def h5ad_safe(obj: Any) -> Any:
    """Convert to what ``write_h5ad`` stores faithfully: nested dicts of arrays, strings and numbers.

    ``None`` becomes the string ``"None"``; lists become arrays (strings as ``str`` arrays, mixed
    lists as arrays of strings); NumPy scalars become Python scalars; ``"/"`` in dict keys becomes
    ``"_"`` (:func:`safe_key`).
    """
    if isinstance(obj, dict):
        return {safe_key(k): h5ad_safe(v) for k, v in obj.items()}
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


def safe_key(name: Any) -> str:
    """A dict key as HDF5 / Zarr can store it (``"/"`` separates groups there): ``"/"`` -> ``"_"``."""
    return str(name).replace("/", "_")


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


def _optional_str(value: Any) -> str | None:
    s = stored_str(value)
    return None if s in ("", "None") else s


def _optional_int(value: Any) -> int | None:
    """An integer stored in ``.uns``, or ``None`` for an absent entry or the string ``"None"``."""
    if value is None:
        return None
    value = _scalar(value)
    if isinstance(value, str):
        return None if value in ("", "None") else int(value)
    return int(value)


def _floats(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(-1)


def _history(value: Any) -> np.ndarray:
    return np.asarray(value if value is not None else [], dtype=np.float64)


def _scalar(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return stored_str(value) if isinstance(value, (str, bytes)) else value


def model_state(entry: Any) -> dict:
    """The ``Mechanics.to_state()`` dict stored in ``entry``, normalised after an h5ad round trip."""
    return {
        "meta": stored_str(entry["meta"]),
        "weights": {str(k): np.asarray(v) for k, v in dict(entry["weights"]).items()},
        "history": {str(k): np.asarray(v) for k, v in dict(entry.get("history", {})).items()},
    }


def config_dict(config: Any) -> dict:
    """A :class:`~scwlm.WLMConfig` as stored in ``params["engine_config"]``."""
    return h5ad_safe(json.loads(json.dumps(config.to_dict())))


# ------------------------------------------------------------------------------------ records
@dataclass
class Params:
    """How the data of a fit were prepared and its models trained (``adata.uns[key]["params"]``)."""

    time_key: str
    basis: str
    n_dims: int
    velocity_key: str | None
    velocity_source: str
    labels: list[str]
    times: np.ndarray
    time_kind: str
    n_cells: np.ndarray
    holdouts: list[str]
    friction: str | float
    n_iter: int
    device: str
    engine_config: dict

    @classmethod
    def of_fit(cls, prep: Any, *, time_key: str, basis: str, velocity_key: str | None,
               held: Any, friction: str | float, n_iter: int, device: Any, config: Any) -> Params:
        """The params of a fit of the prepared data ``prep`` (its axis, snapshots, dimensions and
        velocity source), with the held-out snapshot indices ``held``."""
        axis = prep.axis
        return cls(
            time_key=time_key, basis=basis, n_dims=int(prep.n_dims), velocity_key=velocity_key,
            velocity_source=prep.velocity_source, labels=list(axis.labels),
            times=np.asarray(axis.times, dtype=np.float64), time_kind=axis.kind,
            n_cells=np.asarray([x.shape[0] for x in prep.snapshots], dtype=np.int64),
            holdouts=[axis.labels[h] for h in held], friction=friction, n_iter=int(n_iter), device=str(device),
            engine_config=config_dict(config),
        )

    @property
    def axis(self) -> TimeAxis:
        """The fit's labels and times (without cells)."""
        return TimeAxis(tuple(self.labels), self.times, np.zeros(0, dtype=int), self.time_kind)

    def to_uns(self) -> dict:
        return {
            "time_key": self.time_key, "basis": self.basis, "n_dims": int(self.n_dims),
            "velocity_key": self.velocity_key or "", "velocity_source": self.velocity_source,
            "time_labels": np.asarray(self.labels, dtype=str), "times": np.asarray(self.times, dtype=np.float64),
            "time_kind": self.time_kind, "n_cells": np.asarray(self.n_cells, dtype=np.int64),
            "holdouts": np.asarray(self.holdouts, dtype=str),
            "friction": self.friction if isinstance(self.friction, str) else float(self.friction),
            "n_iter": int(self.n_iter), "device": str(self.device), "engine_config": dict(self.engine_config),
        }

    @classmethod
    def from_uns(cls, p: Any, key: str, legacy_holdouts: str = "holdouts") -> Params:
        """Read ``params``; ``legacy_holdouts`` is the key of the held-out labels in format 1."""
        try:
            if "holdouts" in p:
                holdouts = stored_list(p["holdouts"])
            else:
                holdouts = stored_list(p.get(legacy_holdouts, []))
            friction = _scalar(p.get("friction", "learnable"))
            return cls(
                time_key=stored_str(p["time_key"]), basis=stored_str(p["basis"]), n_dims=int(p["n_dims"]),
                velocity_key=_optional_str(p.get("velocity_key", "")),
                velocity_source=stored_str(p.get("velocity_source", "")),
                labels=stored_list(p["time_labels"]), times=_floats(p["times"]),
                time_kind=stored_str(p.get("time_kind", "numeric labels")),
                n_cells=np.asarray(p.get("n_cells", []), dtype=np.int64).reshape(-1), holdouts=holdouts,
                friction=friction if isinstance(friction, str) else float(friction),
                n_iter=int(_scalar(p.get("n_iter", 0))), device=stored_str(p.get("device", "")),
                engine_config=dict(p.get("engine_config", {})),
            )
        except KeyError as e:
            raise ValueError(f"adata.uns[{key!r}]['params'] lacks {e.args[0]!r}; it was not written by "
                             f"scwlm.tl.fit_mechanics or leave_one_out") from None


@dataclass
class RolloutRecord:
    """A rollout written by :func:`~scwlm.tl.rollout` (``adata.uns[key]["rollouts"][name]``)."""

    source: str
    source_time: float
    targets: list[str]
    target_times: np.ndarray
    n_cells: int
    substeps: int
    random_state: int
    source_cells: list[str]
    obsm_keys: list[str]
    basis: str
    n_dims: int
    chunk_size: int | None = None  # cells rolled out as one population; None: all (and records before chunking)

    kind: ClassVar[str] = "rollout"

    def to_uns(self) -> dict:
        return h5ad_safe({
            "kind": self.kind, "format_version": FORMAT_VERSION,
            "source": self.source, "source_time": float(self.source_time), "targets": list(self.targets),
            "target_times": np.asarray(self.target_times, dtype=np.float64), "n_cells": int(self.n_cells),
            "substeps": int(self.substeps), "random_state": int(self.random_state),
            "source_cells": np.asarray(self.source_cells, dtype=str), "obsm_keys": list(self.obsm_keys),
            "basis": self.basis, "n_dims": int(self.n_dims),
            "chunk_size": None if self.chunk_size is None else int(self.chunk_size),
        })

    @classmethod
    def from_uns(cls, rec: Any, name: str = "") -> RolloutRecord:
        try:
            return cls(
                source=stored_list(rec["source"])[0], source_time=float(_scalar(rec.get("source_time", np.nan))),
                targets=stored_list(rec["targets"]), target_times=_floats(rec["target_times"]),
                n_cells=int(_scalar(rec.get("n_cells", 0))), substeps=int(_scalar(rec.get("substeps", 0))),
                random_state=int(_scalar(rec.get("random_state", 0))), source_cells=stored_list(rec["source_cells"]),
                obsm_keys=stored_list(rec["obsm_keys"]), basis=stored_str(rec.get("basis", "")),
                n_dims=int(_scalar(rec.get("n_dims", 0))), chunk_size=_optional_int(rec.get("chunk_size")),
            )
        except KeyError as e:
            raise ValueError(f"rollout record {name!r} lacks {e.args[0]!r}") from None


def _rollouts(entry: Any) -> dict[str, RolloutRecord]:
    return {str(k): RolloutRecord.from_uns(v, str(k)) for k, v in dict(entry.get("rollouts", {})).items()}


def _version(entry: Any, key: str) -> int:
    v = int(_scalar(entry.get("format_version", 1)))
    if v > FORMAT_VERSION:
        raise ValueError(f"adata.uns[{key!r}] has format_version {v}, newer than this scwlm reads "
                         f"({FORMAT_VERSION}); upgrade scwlm")
    return v


def _standardization(entry: Any, key: str) -> tuple[np.ndarray, np.ndarray]:
    s = entry["standardization"]
    return _floats(s["mean"]), _floats(s["std"])


@dataclass
class FitRecord:
    """One model fitted by :func:`~scwlm.tl.fit_mechanics` (``kind = "fit"``)."""

    params: Params
    mean: np.ndarray
    std: np.ndarray
    model: dict
    friction: float
    friction_history: np.ndarray
    loss_history: np.ndarray
    random_state: int
    train_labels: list[str]
    metrics: dict | None = None
    rollouts: dict[str, RolloutRecord] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    kind: ClassVar[str] = "fit"

    def to_uns(self) -> dict:
        out: dict[str, Any] = {
            "kind": self.kind, "format_version": FORMAT_VERSION,
            "params": {**self.params.to_uns(), "random_state": int(self.random_state),
                       "train_labels": np.asarray(self.train_labels, dtype=str)},
            "standardization": {"mean": np.asarray(self.mean).copy(), "std": np.asarray(self.std).copy()},
            "friction": float(self.friction),
            "friction_history": np.asarray(self.friction_history, dtype=np.float64),
            "loss_history": np.asarray(self.loss_history, dtype=np.float64),
            "model": self.model,
        }
        if self.metrics is not None:
            out["metrics"] = self.metrics
        out = h5ad_safe(out)
        if self.rollouts:
            out["rollouts"] = {name: r.to_uns() for name, r in self.rollouts.items()}
        return out

    @classmethod
    def from_uns(cls, entry: Any, key: str) -> FitRecord:
        version = _version(entry, key)
        p = entry["params"]
        mean, std = _standardization(entry, key)
        return cls(
            params=Params.from_uns(p, key, legacy_holdouts="holdout"), mean=mean, std=std,
            model=entry["model"], friction=float(_scalar(entry.get("friction", np.nan))),
            friction_history=_history(entry.get("friction_history")), loss_history=_history(entry.get("loss_history")),
            random_state=int(_scalar(p.get("random_state", 0))), train_labels=stored_list(p.get("train_labels", [])),
            metrics=dict(entry["metrics"]) if "metrics" in entry else None, rollouts=_rollouts(entry),
            format_version=version,
        )

    # -------------------------------------------------------------------------------- reading
    def model_state(self, key: str, holdout: Any = None, seed: Any = None) -> dict:
        """The stored model (``holdout`` / ``seed`` select among leave-one-out models; ignored here)."""
        return model_state(self.model)

    def model_for(self, label: str) -> tuple[Any, Any]:
        """``(holdout, seed)`` selecting the model that predicts the held-out ``label``."""
        return None, None

    def excluded_for(self, label: str) -> list[str]:
        """The labels hidden from the model that predicts the held-out ``label``: all held-out ones."""
        return list(self.params.holdouts)

    def w1(self, label: str, seed: Any = None) -> float | None:
        """The stored WLM :math:`W_1` of held-out ``label``, if any."""
        if self.metrics is None:
            return None
        labels = stored_list(self.metrics.get("holdout", []))
        if label not in labels:
            return None
        return float(np.asarray(self.metrics["w1"]).reshape(-1)[labels.index(label)])

    def histories(self, name: str, key: str) -> list[tuple[str, np.ndarray]]:
        """``[(curve label, history)]`` of ``"loss"`` or ``"friction"``."""
        return [(key, self.loss_history if name == "loss" else self.friction_history)]


@dataclass
class LeaveOneOutRecord:
    """The models and table of :func:`~scwlm.tl.leave_one_out` (``kind = "leave_one_out"``)."""

    params: Params
    mean: np.ndarray
    std: np.ndarray
    seeds: list[int]
    start_labels: list[str]
    table: pd.DataFrame
    models: dict[str, Any]
    model_keys: list[str]
    loss_history: np.ndarray
    friction_history: np.ndarray
    rollouts: dict[str, RolloutRecord] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    metrics: dict | None = None  # how each row's W1 was computed (evaluation_metrics); None in older entries

    kind: ClassVar[str] = "leave_one_out"

    @staticmethod
    def key_names(holdouts: list[str], seeds: list[int]) -> list[str]:
        """Names in ``models`` of the rows ``(holdouts[i], seeds[i])``: ``holdout_{label}_seed_{seed}``
        made HDF5-safe (``"/"`` -> ``"_"``), with a ``_{i}`` suffix should two labels collide."""
        names: list[str] = []
        for i, (h, s) in enumerate(zip(holdouts, seeds)):
            name = safe_key(f"holdout_{h}_seed_{int(s)}")
            names.append(name if name not in names else f"{name}_{i}")
        return names

    def to_uns(self) -> dict:
        out = h5ad_safe({
            "kind": self.kind, "format_version": FORMAT_VERSION,
            "params": {**self.params.to_uns(), "seeds": np.asarray(self.seeds, dtype=np.int64),
                       "start_labels": list(self.start_labels)},
            "standardization": {"mean": np.asarray(self.mean).copy(), "std": np.asarray(self.std).copy()},
            "results": {c: self.table[c].to_numpy() for c in LOO_COLUMNS},
            "columns": LOO_COLUMNS,
            "model_keys": list(self.model_keys),
            "loss_history": np.asarray(self.loss_history, dtype=np.float64),
            "friction_history": np.asarray(self.friction_history, dtype=np.float64),
        })
        if self.metrics is not None:
            out["metrics"] = h5ad_safe(self.metrics)
        # model names are made safe once, in key_names; h5ad_safe must not rewrite them again
        out["models"] = {name: h5ad_safe(self.models[name]) for name in self.model_keys}
        if self.rollouts:
            out["rollouts"] = {name: r.to_uns() for name, r in self.rollouts.items()}
        return out

    @classmethod
    def from_uns(cls, entry: Any, key: str) -> LeaveOneOutRecord:
        version = _version(entry, key)
        p = entry["params"]
        mean, std = _standardization(entry, key)
        res = dict(entry.get("results", {}))
        columns = stored_list(entry.get("columns", LOO_COLUMNS))
        table = pd.DataFrame({c: np.asarray(res[c]).reshape(-1) for c in columns if c in res})
        if "holdout" in table:
            table["holdout"] = np.asarray(stored_list(res["holdout"]), dtype=object).astype(str)
        if "seed" in table:
            table["seed"] = table["seed"].astype(np.int64)
        hs = table["holdout"].tolist() if "holdout" in table else []
        ss = table["seed"].tolist() if "seed" in table else []
        keys = stored_list(entry["model_keys"]) if "model_keys" in entry else cls.key_names(hs, ss)
        return cls(
            params=Params.from_uns(p, key), mean=mean, std=std,
            seeds=[int(s) for s in np.asarray(p.get("seeds", []), dtype=np.int64).reshape(-1)],
            start_labels=stored_list(p.get("start_labels", [])), table=table, models=dict(entry["models"]),
            model_keys=keys, loss_history=_history(entry.get("loss_history")),
            friction_history=_history(entry.get("friction_history")), rollouts=_rollouts(entry),
            format_version=version, metrics=dict(entry["metrics"]) if "metrics" in entry else None,
        )

    # -------------------------------------------------------------------------------- reading
    def _rows(self, holdout: Any = None, seed: Any = None) -> list[int]:
        hs, ss = self.table["holdout"].tolist(), [int(s) for s in self.table["seed"]]
        rows = list(range(len(hs)))
        if holdout is not None:
            rows = [i for i in rows if hs[i] == label_str(holdout) or hs[i] == str(holdout)]
        if seed is not None:
            rows = [i for i in rows if ss[i] == int(seed)]
        return rows

    def model_state(self, key: str, holdout: Any = None, seed: Any = None) -> dict:
        """The model of the first table row matching ``holdout`` and ``seed`` (``None``: any)."""
        rows = self._rows(holdout, seed)
        if not rows:
            raise KeyError(f"no model in adata.uns[{key!r}]['models'] for holdout={holdout!r}, seed={seed!r}; "
                           f"stored: {_available(self.model_keys)}")
        name = self.model_keys[rows[0]]
        if name not in self.models:
            raise KeyError(f"adata.uns[{key!r}]['models'] lacks {name!r}; stored: {_available(self.models)}")
        return model_state(self.models[name])

    def model_for(self, label: str) -> tuple[Any, Any]:
        return label, None

    def excluded_for(self, label: str) -> list[str]:
        """The labels hidden from the model that predicts ``label``: that label alone."""
        return [label]

    def w1(self, label: str, seed: Any = None) -> float | None:
        rows = self._rows(label, seed)
        return float(self.table["w1"].iloc[rows[0]]) if rows and "w1" in self.table else None

    def histories(self, name: str, key: str) -> list[tuple[str, np.ndarray]]:
        arr = self.loss_history if name == "loss" else self.friction_history
        if arr.ndim == 1:
            return [(key, arr)]
        hs, ss = self.table.get("holdout", pd.Series([])).tolist(), self.table.get("seed", pd.Series([])).tolist()
        if len(hs) == arr.shape[0] and len(ss) == arr.shape[0]:
            labels = [f"holdout {h}, seed {s}" for h, s in zip(hs, ss)]
        else:
            labels = [f"model {i}" for i in range(arr.shape[0])]
        return list(zip(labels, arr))


def evaluation_metrics(w1_method: list[str], w1_se: list[float], w1_settings: dict, baselines: list[dict],
                       chunk_size: int | None) -> dict:
    """How the :math:`W_1` of every held-out row was computed, as stored in ``metrics``.

    ``w1_method`` and ``w1_se`` hold one entry per row (the interpolation protocol's
    ``w1_method`` / ``w1_se`` of that row's holdout: :meth:`~scwlm.Mechanics.evaluate`),
    ``w1_settings`` the protocol's settings, ``baselines`` one
    :func:`~scwlm.core.baselines.interpolation_baselines` result per row, ``chunk_size`` the
    rollouts' chunk size. The model's standard error over draws is stored as ``w1_draw_se``
    (in a fit's ``metrics``, ``w1_se`` has long been the standard error of ``w1`` over the
    held-out labels and keeps that meaning).

    Examples
    --------
    >>> settings = {"max_points": 5000, "subsample": 5000, "n_draws": 5, "seed": 0}
    >>> base = {"w1_mccann_method": "subsampled", "w1_mccann_se": 0.02, "w1_previous_method": "exact",
    ...         "w1_previous_se": 0.0}
    >>> m = evaluation_metrics(["subsampled"], [0.01], settings, [base], 5000)
    >>> m["w1_method"].tolist(), m["w1_mccann_method"].tolist(), m["rollout_chunk_size"]
    (['subsampled'], ['subsampled'], 5000)
    """
    def column(values, dtype):
        return np.asarray(list(values), dtype=dtype).reshape(-1)

    return {
        "w1_method": column(w1_method, str),
        "w1_draw_se": column(w1_se, np.float64),
        "w1_mccann_method": column([b["w1_mccann_method"] for b in baselines], str),
        "w1_mccann_draw_se": column([b["w1_mccann_se"] for b in baselines], np.float64),
        "w1_previous_method": column([b["w1_previous_method"] for b in baselines], str),
        "w1_previous_draw_se": column([b["w1_previous_se"] for b in baselines], np.float64),
        "w1_settings": {str(k): (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in dict(w1_settings).items()},
        "rollout_chunk_size": "None" if chunk_size is None else int(chunk_size),
    }


Record = Union[FitRecord, LeaveOneOutRecord]
_KINDS: dict[str, type] = {FitRecord.kind: FitRecord, LeaveOneOutRecord.kind: LeaveOneOutRecord}


def record_from_uns(entry: Any, key: str) -> Record:
    """The record stored in ``entry = adata.uns[key]`` (any format version)."""
    if not isinstance(entry, dict) or "params" not in entry or "standardization" not in entry:
        raise ValueError(f"adata.uns[{key!r}] was not written by scwlm.tl.fit_mechanics or leave_one_out")
    if "kind" in entry:
        kind = stored_str(entry["kind"])
        if kind not in _KINDS:
            raise ValueError(f"adata.uns[{key!r}] has kind {kind!r}; scwlm.tl knows {sorted(_KINDS)}")
    elif "model" in entry:  # format 1 (scwlm <= 64cf8ec) had no kind: tell it from the stored model(s)
        kind = FitRecord.kind
    elif "models" in entry:
        kind = LeaveOneOutRecord.kind
    else:
        raise KeyError(f"adata.uns[{key!r}] holds no model (no 'model' or 'models' entry); keys: {_available(entry)}")
    return _KINDS[kind].from_uns(entry, key)


def read_record(adata: AnnData, key: str) -> Record:
    """The record in ``adata.uns[key]``; ``KeyError`` listing the uns keys when it is absent."""
    return record_from_uns(uns_entry(adata, key, "key"), key)


def _recorded_obsm_keys(adata: AnnData, skip: str | None = None) -> set[str]:
    """obsm keys recorded by the rollouts of scwlm entries of ``adata.uns`` (except ``uns[skip]``)."""
    out: set[str] = set()
    for k, entry in adata.uns.items():
        if k == skip or not isinstance(entry, dict) or not isinstance(entry.get("rollouts"), dict):
            continue
        for rec in entry["rollouts"].values():
            if isinstance(rec, dict) and "obsm_keys" in rec:
                out.update(stored_list(rec["obsm_keys"]))
    return out


def _stale_obsm_keys(adata: AnnData, key: str) -> list[str]:
    """The obsm keys written by rollouts of the entry ``adata.uns[key]`` that is about to be replaced
    (those no other entry records)."""
    old = adata.uns.get(key)
    if not isinstance(old, dict) or not isinstance(old.get("rollouts"), dict):
        return []
    mine: set[str] = set()
    for rec in old["rollouts"].values():
        if isinstance(rec, dict) and "obsm_keys" in rec:
            mine.update(stored_list(rec["obsm_keys"]))
    others = _recorded_obsm_keys(adata, skip=key)
    return sorted(k for k in mine - others if k in adata.obsm)


def write_record(adata: AnnData, key: str, record: Record) -> None:
    """Store ``record`` as ``adata.uns[key]``; a replaced entry's rollouts go, with their obsm entries."""
    stale = _stale_obsm_keys(adata, key)
    adata.uns[key] = record.to_uns()
    for k in stale:
        del adata.obsm[k]


def add_rollout(adata: AnnData, key: str, name: str, record: RolloutRecord) -> None:
    """Record a rollout in ``adata.uns[key]["rollouts"][name]`` (the obsm arrays are written by the caller).

    A rollout recorded earlier under the same ``name`` is replaced; its obsm entries that the new
    one does not rewrite (and no other entry records) are removed.
    """
    entry = adata.uns[key]
    rollouts = dict(entry.get("rollouts", {}))
    stale: set[str] = set()
    if name in rollouts and isinstance(rollouts[name], dict):
        stale = set(stored_list(rollouts[name].get("obsm_keys", []))) - set(record.obsm_keys)
    rollouts[name] = record.to_uns()
    entry["rollouts"] = rollouts
    adata.uns[key] = entry
    if stale:
        stale -= _recorded_obsm_keys(adata)
        for k in sorted(stale):
            if k in adata.obsm:
                del adata.obsm[k]
