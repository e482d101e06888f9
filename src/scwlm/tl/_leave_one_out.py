"""The paper's leave-one-out interpolation benchmark on an AnnData, in one vectorised run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from .._docs import _doc_params, doc_copy, doc_engine_config, doc_key_added
from ..core.baselines import interpolation_baselines
from ..core.config import WLMConfig
from ..mechanics import ROLLOUT_CHUNK_SIZE
from ._prepare import check_key_added, prepare, resolve_holdouts
from ._store import LOO_COLUMNS, LeaveOneOutRecord, Params, evaluation_metrics, write_record

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["leave_one_out"]

COLUMNS = LOO_COLUMNS


@_doc_params(doc_key_added=doc_key_added, doc_copy=doc_copy, doc_engine_config=doc_engine_config)
def leave_one_out(
    adata: AnnData,
    time_key: str = "day",
    *,
    holdouts: Any = None,
    basis: str = "X_pca",
    n_dims: int = 5,
    velocity_key: str | None = "velocity_pca",
    random_state: int | Sequence[int] = 0,
    n_iter: int = 2000,
    friction: str | float = "learnable",
    device: str = "auto",
    key_added: str = "wlm_loo",
    copy: bool = False,
    **engine_config: Any,
) -> pd.DataFrame | tuple[AnnData, pd.DataFrame]:
    r"""Leave-one-out interpolation: one model per held-out interior time point and per seed.

    The paper's embryoid-body protocol (Table 3): for every holdout ``h`` the snapshot ``h`` is
    removed, a model is trained on the others, and the held-out cells are predicted by simulating
    the previous observed time point (with its velocities) to ``t_h``; the prediction is scored by
    :math:`W_1` (standardised units) against the held-out cells, next to McCann's
    displacement interpolation between the neighbouring snapshots and the previous snapshot itself
    (seed-independent baselines). Every :math:`W_1` is exact on all cells when the snapshots have
    at most 5,000 cells, and otherwise the mean over 5 seeded draws of exact :math:`W_1` on
    subsamples of 5,000 (``metrics`` records which); rollouts of more than
    :data:`scwlm.mechanics.ROLLOUT_CHUNK_SIZE` cells are chunked (:meth:`scwlm.Mechanics.rollout`),
    and the training cost per iteration is set by ``particles_per_batch`` (the engine's default
    unless given), so memory does not grow with the square of the number of cells. All ``len(holdouts) * len(seeds)`` models are trained in one
    vectorised run (:func:`scwlm.fit_many`). Data preparation is that of :func:`fit_mechanics`.

    **Several processes.** Started by ``torchrun --nproc-per-node N`` (:func:`scwlm.distributed.launched`),
    training goes through :func:`scwlm.distributed.fit_many` (``mode="ensemble"``): the ``len(holdouts) * len(seeds)`` models (a multiple of
    ``N``) are split into equal blocks, one per rank, and gathered on every rank, so every rank
    evaluates all of them and writes the same ``adata.uns[key_added]`` into its own in-memory AnnData
    (equal to the single-process entry when ``particles_per_batch`` is at most the smallest snapshot);
    only rank 0 shows progress bars. Nothing is written to disk here: write the AnnData on rank 0 alone
    (``docs/scaling.md``). Without a launcher it is :func:`scwlm.fit_many` in this process, as before.

    Parameters
    ----------
    adata
        Annotated data matrix (see :func:`fit_mechanics`).
    time_key, basis, n_dims, velocity_key, friction, n_iter, device
        As in :func:`fit_mechanics`.
    holdouts
        Labels to hold out, one at a time (default: every interior label).
    random_state
        A seed or a list of seeds (one model per holdout and seed).
    {doc_key_added}
    {doc_copy}
    {doc_engine_config}
        The settings are shared by all models.

    Returns
    -------
    pandas.DataFrame or (AnnData, pandas.DataFrame)
        A tidy table with one row per holdout and seed and the columns ``holdout`` (label),
        ``seed``, ``w1``, ``w1_mccann``, ``w1_previous``, ``friction``. The table is always returned;
        with ``copy=True`` the pair ``(adata_copy, table)`` is (``adata`` stays untouched).
        ``adata.uns[key_added]`` (:class:`scwlm.tl._store.LeaveOneOutRecord`) holds ``kind =
        "leave_one_out"``, ``format_version``, ``results`` (the table as a dict of column arrays;
        rebuild it with ``pd.DataFrame(r["results"])[list(r["columns"])]``, ``r =
        adata.uns[key_added]``; h5ad sorts the keys), ``columns``, ``params`` (as in
        :func:`fit_mechanics`, with ``holdouts``, ``seeds`` and ``start_labels``),
        ``standardization``, ``metrics`` (how each row's :math:`W_1` were computed, arrays in
        table order: ``w1_method``, ``w1_mccann_method``, ``w1_previous_method`` (``"exact"`` or
        ``"subsampled"``), ``w1_draw_se``, ``w1_mccann_draw_se``, ``w1_previous_draw_se``
        (standard error over the subsample draws, 0 when exact), ``w1_settings``,
        ``rollout_chunk_size``), ``models`` (one :meth:`~scwlm.Mechanics.to_state` per row, named
        ``f"holdout_{label}_seed_{seed}"`` with ``"/"`` replaced by ``"_"``), ``model_keys`` (the
        name of each row's model; see :func:`get_mechanics` with ``holdout=``/``seed=``) and
        ``loss_history`` / ``friction_history`` (``(n_models, n_iter)``, rows in table order).

    Raises
    ------
    KeyError, ValueError
        As :func:`fit_mechanics`; also when there are fewer than three time points (no interior
        one) or ``adata.obs_names`` has duplicates. ``adata`` is unchanged whenever an error is raised.

    Examples
    --------
    >>> df = scwlm.tl.leave_one_out(adata, "day", random_state=[0, 1], n_iter=10_000, p=1, blur=1.25,
    ...                             ffn=256, dropout=0.1, weight_decay=1e-3,
    ...                             particles_per_batch=1024)  # doctest: +SKIP
    >>> df.groupby("holdout")[["w1", "w1_mccann"]].mean()  # doctest: +SKIP
    """
    from ._fit import _fit_function, _is_main_rank

    fit_many = _fit_function("fit_many")

    check_key_added(key_added)
    seeds = list(np.asarray(random_state).reshape(-1)) if isinstance(random_state, (list, tuple, np.ndarray)) else [random_state]
    if not seeds:
        raise ValueError("random_state is an empty list")
    for s in seeds:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise ValueError(f"random_state must be an integer or a list of integers, got {random_state!r}")
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"random_state contains duplicate seeds: {seeds}")
    cfg = WLMConfig.from_kwargs(**engine_config)
    prep = prepare(adata, time_key, basis, n_dims, velocity_key, min_times=3, what="scwlm.tl.leave_one_out")
    axis = prep.axis
    K = len(axis.labels)
    held = list(range(1, K - 1)) if holdouts is None else resolve_holdouts(axis, holdouts, "holdouts")
    if not held:
        raise ValueError("holdouts is empty")
    snaps, vels, times = prep.snapshots, prep.velocities, axis.times

    datasets, rows = [], []
    for h in held:
        train = [i for i in range(K) if i != h]
        for s in seeds:
            datasets.append(([snaps[i] for i in train], times[train], [vels[i] for i in train]))
            rows.append((h, s))
    ens = fit_many(datasets, random_state=[s for _, s in rows], friction=friction, n_iter=n_iter,
                   device=device, **engine_config)  # one process unless launched by torchrun
    progress = None if cfg.progress and _is_main_rank() else False
    base = {h: interpolation_baselines(snaps, times, h, [h], progress=progress) for h in held}
    records, methods, draw_se, settings = [], [], [], {}
    for (h, s), mech in zip(rows, ens):
        ev = mech.evaluate(snaps, times, vels, protocol="interpolate", holdout=[h], chunk_size=ROLLOUT_CHUNK_SIZE)
        methods.append(ev["w1_method"][0])
        draw_se.append(ev["w1_se"][0])
        settings = ev["w1_settings"]
        records.append({"holdout": axis.labels[h], "seed": s, "w1": float(ev["w1"][0]),
                        "w1_mccann": base[h]["w1_mccann"], "w1_previous": base[h]["w1_previous"],
                        "friction": float(mech.friction)})
    df = pd.DataFrame.from_records(records, columns=COLUMNS)
    df["holdout"] = df["holdout"].astype(str)
    df["seed"] = df["seed"].astype(np.int64)

    hs, ss = [axis.labels[h] for h, _ in rows], [s for _, s in rows]
    names = LeaveOneOutRecord.key_names(hs, ss)
    record = LeaveOneOutRecord(
        params=Params.of_fit(
            prep, time_key=time_key, basis=basis, velocity_key=velocity_key, held=held,
            friction=friction, n_iter=n_iter, device=device, config=cfg,
        ),
        mean=prep.mean.copy(), std=prep.std.copy(), seeds=seeds,
        start_labels=[axis.labels[base[h]["start"]] for h in held], table=df,
        models={name: m.to_state() for name, m in zip(names, ens)}, model_keys=names,
        loss_history=np.stack([np.asarray(m.history.get("loss", []), dtype=np.float64) for m in ens]),
        friction_history=np.stack([np.asarray(m.history.get("friction", []), dtype=np.float64) for m in ens]),
        metrics=evaluation_metrics(methods, draw_se, settings, [base[h] for h, _ in rows], ROLLOUT_CHUNK_SIZE),
    )

    out = adata.copy() if copy else adata
    write_record(out, key_added, record)
    return (out, df) if copy else df
