"""Simulate observed cells forward with a fitted model, and put predictions next to observations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._docs import _doc_params, doc_n_cells, doc_substeps
from ..mechanics import ROLLOUT_CHUNK_SIZE, _chunk_size
from ..pp._checks import check_anndata, obsm_array
from ._apply import load_model, model_space, to_original
from ._prepare import check_key_added, check_unique_obs_names
from ._store import Record, RolloutRecord, add_rollout, read_record
from ._time import as_label_list, cell_labels, format_number, label_str, parse_number, time_axis

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["rollout", "observed_cells"]


@dataclass
class Prediction:
    """A rollout computed without writing: cells ``rows`` of label ``source`` simulated to ``targets``."""

    source: str
    source_time: float
    rows: np.ndarray  # positions in adata of the simulated cells
    targets: list[str]  # names (labels, or formatted numbers)
    target_times: np.ndarray
    model: np.ndarray  # (T, n, n_dims) standardised
    basis: np.ndarray  # (T, n, n_dims) original units
    substeps: int  # the integrator substeps used (the model's eval_substeps when not given)
    record: Record
    chunk_size: int | None = ROLLOUT_CHUNK_SIZE  # cells rolled out as one population (None: all)


def _targets(record: Record, targets: Any, t0: float) -> tuple[list[str], np.ndarray]:
    names, times = [], []
    values = as_label_list(targets)
    if not values:
        raise ValueError("targets is empty: give a time label or a list of labels / times")
    ax = record.params.axis
    for v in values:
        j = ax.find(v)
        if j is not None:
            names.append(ax.labels[j])
            times.append(float(ax.times[j]))
            continue
        num = None if isinstance(v, (str, np.str_)) and ax.kind == "category order" else parse_number(v)
        if num is None:
            raise ValueError(f"target {v!r} is neither a time label of the fit {ax.labels} nor a number")
        names.append(format_number(num))
        times.append(num)
    times_arr = np.asarray(times, dtype=np.float64)
    early = [n for n, t in zip(names, times_arr) if t < t0 - 1e-12]
    if early:
        raise ValueError(f"targets {early} lie before the source time {format_number(t0)} (the model runs forward)")
    if len(set(names)) != len(names):
        raise ValueError(f"targets contain duplicates: {names}")
    return names, times_arr


def predict(adata: AnnData, key: str, source: Any, targets: Any, *, n_cells: int | None = None,
            substeps: int | None = None, random_state: int = 0, holdout: Any = None, seed: Any = None,
            chunk_size: int | None = ROLLOUT_CHUNK_SIZE) -> Prediction:
    """Compute a rollout of the cells labelled ``source`` (reads only; shared by :func:`rollout` and ``pl``).

    ``substeps=None`` uses the model's ``config.eval_substeps``; ``chunk_size`` and ``random_state``
    are passed to :meth:`~scwlm.Mechanics.rollout` (``random_state`` also seeds the ``n_cells`` subset).
    """
    check_anndata(adata)
    record = read_record(adata, key)
    p = record.params
    s = p.axis.index(source, "source")
    t0 = float(p.times[s])
    names, ttimes = _targets(record, targets, t0)
    codes = cell_labels(adata, p.time_key, p.labels, p.times)
    rows = np.flatnonzero(codes == s)
    if rows.size == 0:
        raise ValueError(f"no cells with {p.time_key} == {p.labels[s]!r} in adata")
    if n_cells is not None:
        if isinstance(n_cells, bool) or not isinstance(n_cells, (int, np.integer)) or n_cells < 1:
            raise ValueError(f"n_cells must be a positive integer or None, got {n_cells!r}")
        if n_cells < rows.size:
            rng = np.random.default_rng(random_state)
            rows = np.sort(rng.choice(rows, size=int(n_cells), replace=False))
    if substeps is not None and (isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer))
                                 or substeps < 1):
        raise ValueError(f"substeps must be a positive integer or None (the model's eval_substeps), got {substeps!r}")
    chunk_size = _chunk_size(chunk_size)
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state must be a non-negative integer, got {random_state!r}")
    x0, v0 = model_space(adata, record, rows)
    mech = load_model(record, key, holdout=holdout, seed=seed)
    steps = int(mech.config.eval_substeps if substeps is None else substeps)
    order = np.argsort(ttimes, kind="stable")
    sim = mech.rollout(x0, v0, t0=t0, times=ttimes[order], substeps=steps, chunk_size=chunk_size,
                       random_state=int(random_state))
    model = np.empty_like(sim)
    model[order] = sim
    return Prediction(p.labels[s], t0, rows, names, ttimes, model, to_original(model, record), steps, record,
                      chunk_size)


def _time_categories(record: Record, extra: list[tuple[str, float]] = ()) -> list[str]:
    pairs = {lab: float(t) for lab, t in zip(record.params.labels, record.params.times)}
    for lab, t in extra:
        pairs.setdefault(lab, float(t))
    return [lab for lab, _ in sorted(pairs.items(), key=lambda kv: kv[1])]


def _recorded_targets(record: Record) -> list[tuple[str, float]]:
    out = []
    for rec in record.rollouts.values():
        out.extend(zip(rec.targets, rec.target_times.tolist()))
    return out


@_doc_params(doc_n_cells=doc_n_cells, doc_substeps=doc_substeps)
def rollout(
    adata: AnnData,
    key: str = "wlm",
    *,
    source: Any,
    targets: Any,
    n_cells: int | None = None,
    substeps: int | None = None,
    key_added: str | None = None,
    random_state: int = 0,
    chunk_size: int | None = ROLLOUT_CHUNK_SIZE,
) -> AnnData:
    """Simulate the cells of one time point forward with a fitted model.

    The cells labelled ``source`` (all, or a random subset of ``n_cells``) start from their
    standardised coordinates and velocities (the fit's own mean/std and velocity source) and are
    integrated to every target; predictions are mapped back to the basis' units
    (``x * std + mean``, first ``n_dims`` coordinates).

    The model's potential is a population energy, so which cells are simulated together matters:
    a rollout of a subset (``n_cells``) is the rollout of that subset as a population, and more
    than ``chunk_size`` cells are rolled out in random chunks of at most ``chunk_size`` cells,
    each as its own population (:meth:`scwlm.Mechanics.rollout`; chunks of ~``chunk_size``
    cells are statistically like the training minibatches of ``particles_per_batch`` cells).
    Memory is then bounded by one chunk's attention, whatever the number of cells.

    Parameters
    ----------
    adata
        Annotated data matrix with a fit in ``adata.uns[key]`` (:func:`fit_mechanics`).
    key
        The fit's ``key_added`` (for a :func:`leave_one_out` result, its first stored model is used).
    source
        Time label whose cells are simulated (a label string, or its numeric time).
    targets
        Labels and/or numeric times ``>=`` the source time (a single value or a list).
    {doc_n_cells}
    {doc_substeps}
    key_added
        Prefix of the written keys (default ``f"{key}_rollout"``). A rollout recorded earlier
        under the same prefix is replaced, and its ``obsm`` entries that are not rewritten are
        removed.
    random_state
        Seed of the choice of the ``n_cells`` subset and of the random partition into chunks.
    chunk_size
        Largest number of cells rolled out as one population (default
        :data:`scwlm.mechanics.ROLLOUT_CHUNK_SIZE`, 5,000; ``None``: all at once).

    Returns
    -------
    AnnData
        The predicted cells (``n_cells * len(targets)`` observations, no variables):
        ``obs_names`` ``f"{source_cell}->{target}"``; ``obs[time_key]`` the target label (ordered
        categorical of label strings), ``obs["time"]`` its numeric time, ``obs["origin"] =
        "predicted"``, ``obs["source_cell"]``; ``obsm[basis]`` the predicted coordinates (``n_dims``
        columns, original units); ``uns["scwlm_rollout"]`` the provenance.

        ``adata`` itself gets, per target, ``adata.obsm[f"{key_added}_{target}"]`` (``(n_obs,
        n_dims)``: the predicted coordinates in the row of each simulated source cell, NaN
        elsewhere) and ``adata.uns[key]["rollouts"][key_added]`` (source, targets, times,
        n_cells, substeps, random_state, chunk_size, the simulated cells and the obsm keys;
        :class:`scwlm.tl._store.RolloutRecord`).

    Notes
    -----
    To plot predictions next to the data, stack them with the observed cells in the same layout::

        pred = scwlm.tl.rollout(adata, "wlm", source="12", targets=["35"])
        obs = scwlm.tl.observed_cells(adata, "wlm")
        both = anndata.concat([obs, pred], join="outer")   # obs["origin"]: observed / predicted
        sc.pl.embedding(both, basis="X_pca", color=["origin", "age(days)"])

    Raises
    ------
    KeyError
        ``adata.uns[key]`` or the basis is missing.
    ValueError
        Unknown source, targets before the source, a bad ``n_cells``, ``substeps``,
        ``chunk_size`` or ``random_state``, duplicate
        ``adata.obs_names`` (the output names cells after them); ``adata`` is then unchanged.

    Examples
    --------
    >>> pred = scwlm.tl.rollout(adata, "wlm", source=0, targets=[1, 2])  # doctest: +SKIP
    >>> pred.obs["origin"].unique().tolist()  # doctest: +SKIP
    ['predicted']
    """
    from anndata import AnnData

    key_added = check_key_added(f"{key}_rollout" if key_added is None else key_added)
    check_anndata(adata)
    check_unique_obs_names(adata, "scwlm.tl.rollout")
    pred = predict(adata, key, source, targets, n_cells=n_cells, substeps=substeps, random_state=random_state,
                   chunk_size=chunk_size)
    record = pred.record
    p = record.params
    obsm_keys = [f"{key_added}_{name}".replace("/", "_") for name in pred.targets]

    src_names = np.asarray(adata.obs_names[pred.rows]).astype(str)
    n = src_names.size
    cats = _time_categories(record, _recorded_targets(record) + list(zip(pred.targets, pred.target_times.tolist())))
    obs = pd.DataFrame({
        p.time_key: pd.Categorical(np.repeat(pred.targets, n), categories=cats, ordered=True),
        "time": np.repeat(pred.target_times, n),
        "origin": pd.Categorical(["predicted"] * (n * len(pred.targets)), categories=["observed", "predicted"]),
        "source_cell": np.tile(src_names, len(pred.targets)),
    }, index=pd.Index([f"{c}->{t}" for t in pred.targets for c in src_names], dtype=str))
    rec = RolloutRecord(
        source=pred.source, source_time=pred.source_time, targets=pred.targets, target_times=pred.target_times,
        n_cells=int(n), substeps=pred.substeps, random_state=int(random_state), source_cells=list(src_names),
        obsm_keys=obsm_keys, basis=p.basis, n_dims=p.n_dims, chunk_size=pred.chunk_size,
    )
    predicted = AnnData(obs=obs, obsm={p.basis: pred.basis.reshape(-1, p.n_dims)},
                        uns={"scwlm_rollout": {**rec.to_uns(), "key": key, "key_added": key_added}})

    # write at the end: everything above can fail without touching adata
    for k, coords in zip(obsm_keys, pred.basis):
        full = np.full((adata.n_obs, p.n_dims), np.nan)
        full[pred.rows] = coords
        adata.obsm[k] = full
    add_rollout(adata, key, key_added, rec)
    return predicted


def observed_cells(
    adata: AnnData,
    key: str | None = "wlm",
    *,
    basis: str | None = None,
    n_dims: int | None = None,
    time_key: str | None = None,
) -> AnnData:
    """The observed cells in the layout of :func:`rollout`'s output, for plotting them together.

    Parameters
    ----------
    adata
        Annotated data matrix.
    key
        A fit in ``adata.uns`` that supplies ``basis``, ``n_dims``, ``time_key`` and the label ->
        time mapping (``None``: give those three explicitly; times are then derived from the column
        as in :func:`fit_mechanics`).
    basis, n_dims, time_key
        Override the fit's values.

    Returns
    -------
    AnnData
        One observation per cell (same ``obs_names``), no variables; ``obs[time_key]`` (ordered
        categorical of label strings, with the same categories as :func:`rollout` uses),
        ``obs["time"]``, ``obs["origin"] = "observed"``, ``obs["source_cell"] = ""``;
        ``obsm[basis]`` the first ``n_dims`` coordinates. ``anndata.concat([observed,
        predicted], join="outer")`` then stacks cleanly (see :func:`rollout`).

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd, scwlm
    >>> adata = ad.AnnData(np.zeros((4, 1)), obs=pd.DataFrame({"day": [0, 0, 1, 1]}, index=list("abcd")))
    >>> adata.obsm["X_pca"] = np.arange(12.0).reshape(4, 3)
    >>> obs = scwlm.tl.observed_cells(adata, None, basis="X_pca", n_dims=2, time_key="day")
    >>> obs.obsm["X_pca"].shape, obs.obs["origin"].tolist()
    ((4, 2), ['observed', 'observed', 'observed', 'observed'])
    """
    from anndata import AnnData

    check_anndata(adata)
    if key is not None:
        record = read_record(adata, key)
        p = record.params
        basis = p.basis if basis is None else basis
        n_dims = p.n_dims if n_dims is None else n_dims
        time_key = p.time_key if time_key is None else time_key
        cats = _time_categories(record, _recorded_targets(record))
        codes = cell_labels(adata, time_key, p.labels, p.times)
        lab_arr = np.asarray(p.labels, dtype=object)
        labels = np.where(codes >= 0, lab_arr[np.clip(codes, 0, None)], None)
        tmap = dict(zip(p.labels, p.times.tolist()))
        times = np.asarray([tmap.get(lab, np.nan) if lab is not None else np.nan for lab in labels])
        unknown = codes < 0
        if unknown.any():  # labels the fit never saw: keep them, with their own string
            raw = adata.obs[time_key].astype(object).to_numpy()
            labels[unknown] = [label_str(v) for v in raw[unknown]]
            cats = cats + sorted({str(v) for v in labels[unknown]} - set(cats))
    else:
        if basis is None or time_key is None:
            raise ValueError("without a fit key, give basis and time_key")
        ax = time_axis(adata, time_key)
        cats = list(ax.labels)
        labels = np.asarray(ax.labels, dtype=object)[ax.codes]
        times = ax.times[ax.codes]
    X = obsm_array(adata, basis)
    if n_dims is None:
        n_dims = X.shape[1]
    if not isinstance(n_dims, (int, np.integer)) or not 1 <= n_dims <= X.shape[1]:
        raise ValueError(f"n_dims must lie in 1..{X.shape[1]}, got {n_dims!r}")
    obs = pd.DataFrame({
        time_key: pd.Categorical(labels.astype(str), categories=cats, ordered=True),
        "time": np.asarray(times, dtype=np.float64),
        "origin": pd.Categorical(["observed"] * adata.n_obs, categories=["observed", "predicted"]),
        "source_cell": np.full(adata.n_obs, "", dtype=object),
    }, index=pd.Index(np.asarray(adata.obs_names).astype(str), dtype=str))
    return AnnData(obs=obs, obsm={basis: X[:, : int(n_dims)]})

