"""Fit WLM to the time points of an AnnData and keep the model in ``.uns``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._docs import (
    _doc_params,
    doc_adata_fit,
    doc_basis,
    doc_copy,
    doc_engine_config,
    doc_friction,
    doc_key_added,
    doc_n_dims,
    doc_time_key,
    doc_velocity_key,
)
from ..core.baselines import interpolation_baselines
from ..core.config import WLMConfig
from ..core.metrics import mean_se
from ..mechanics import ROLLOUT_CHUNK_SIZE
from ._prepare import check_key_added, prepare, resolve_holdouts
from ._store import FitRecord, Params, evaluation_metrics, write_record

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["fit_mechanics"]


@_doc_params(doc_adata=doc_adata_fit, doc_time_key=doc_time_key, doc_basis=doc_basis, doc_n_dims=doc_n_dims,
             doc_velocity_key=doc_velocity_key, doc_friction=doc_friction, doc_key_added=doc_key_added,
             doc_copy=doc_copy, doc_engine_config=doc_engine_config)
def fit_mechanics(
    adata: AnnData,
    time_key: str = "day",
    *,
    basis: str = "X_pca",
    n_dims: int = 5,
    velocity_key: str | None = "velocity_pca",
    holdout: Any = None,
    friction: str | float = "learnable",
    n_iter: int = 2000,
    device: str = "auto",
    random_state: int = 0,
    key_added: str = "wlm",
    copy: bool = False,
    **engine_config: Any,
) -> AnnData | None:
    r"""Learn the population mechanics of cells observed at several time points.

    Each time point is one snapshot: the first ``n_dims`` coordinates of ``adata.obsm[basis]``,
    standardised with the global mean and standard deviation over all cells
    (:func:`scwlm.pp.standardize`), cells in ``obs`` order. Velocities come from
    :func:`scwlm.pp.embedding_velocities` (divided by the same std). The model is trained with
    :func:`scwlm.fit` on the snapshots that are not held out, starting from the first one with
    its velocities.

    **Large data sets.** Only ``adata.obsm`` is read (never ``adata.X``), and nothing here grows
    faster than the number of cells: the training cost per iteration is set by the engine's
    ``particles_per_batch`` (a random minibatch of every snapshot; the :class:`~scwlm.WLMConfig`
    default unless you pass it — this function never replaces it by "all cells"), held-out
    snapshots are predicted with chunked rollouts (:data:`scwlm.mechanics.ROLLOUT_CHUNK_SIZE`
    cells per population, :meth:`scwlm.Mechanics.rollout`), and every :math:`W_1` is exact on
    all cells up to 5,000 per snapshot and otherwise estimated on seeded subsamples of 5,000
    (``metrics`` records which).

    **Several processes.** Started by ``torchrun`` (:func:`scwlm.distributed.launched`), training goes
    through :func:`scwlm.distributed.fit` (``mode="ensemble"``; without a launcher it is
    :func:`scwlm.fit` in this process). Ensemble mode splits the members of an ensemble across
    ranks, but this function fits one model (one seed), which cannot be split: with more than one
    rank it raises
    :class:`~scwlm.distributed.DistributedSetupError` before training. Use :func:`leave_one_out`
    (several holdouts and seeds across ranks) or :func:`scwlm.distributed.fit` with
    ``mode="data"`` for one model on several processes. Nothing is written to disk here.

    Time labels (``adata.obs[time_key]``): numbers (int/float column) are the times. Labels that all
    parse as numbers (categories or strings such as ``"12"``, ``"35"``) use those numbers; an ordered
    categorical must then list them in increasing order. Other ordered categoricals use the
    category positions ``0..K-1`` (unit spacing). Unordered non-numeric labels are rejected (their
    order is unknown). The mapping label -> time is stored in ``params``.

    Parameters
    ----------
    {doc_adata}
    {doc_time_key}
    {doc_basis}
    {doc_n_dims}
    {doc_velocity_key}
    holdout
        A label or list of labels left out of training (interior times only). When given, the
        held-out cells are predicted from the previous observed time (with its velocities) and
        compared by :math:`W_1` (standardised units), together with McCann's displacement
        interpolation between the neighbouring observed times and the previous snapshot itself
        (all three exact on all cells for snapshots of at most 5,000 cells, else the mean over 5
        seeded draws of subsamples of 5,000: :mod:`scwlm.core.protocols`,
        :func:`scwlm.core.baselines.interpolation_baselines`).
    {doc_friction}
    n_iter, device, random_state
        As in :func:`scwlm.fit` (``random_state`` an integer).
    {doc_key_added}
    {doc_copy}
    {doc_engine_config}

    Returns
    -------
    AnnData or None
        The modified copy with ``copy=True``, else ``None``. ``adata.uns[key_added]`` holds
        (:class:`scwlm.tl._store.FitRecord`):

        ``kind``, ``format_version``
            ``"fit"`` and the version of the layout (:data:`scwlm.tl._store.FORMAT_VERSION`).
        ``params``
            ``time_key``, ``basis``, ``n_dims``, ``velocity_key`` (``""`` for ``None``),
            ``velocity_source``, ``holdouts`` (labels), ``friction`` (the argument), ``n_iter``,
            ``random_state``, ``device``, ``engine_config`` (:meth:`~scwlm.WLMConfig.to_dict`, ``None``
            written as ``"None"``), ``time_labels`` / ``times`` (the mapping, sorted by time),
            ``time_kind``, ``n_cells`` per label, ``train_labels``.
        ``standardization``
            ``mean`` and ``std`` (``(n_dims,)``) mapping model space to the basis:
            ``x_basis = x * std + mean``.
        ``friction``, ``friction_history``, ``loss_history``
            Learned :math:`\gamma` and the training curves.
        ``model``
            :meth:`~scwlm.Mechanics.to_state`: ``meta`` (JSON string: architecture, exact config,
            friction, dt, info), ``weights`` (parameter name -> array) and ``history``.
        ``metrics`` (only with ``holdout``)
            Arrays aligned with ``holdout``: ``w1`` (WLM), ``w1_mccann``, ``w1_previous``,
            ``start`` (the label simulated from); and ``w1_mean``, ``w1_se`` (mean and standard
            error of ``w1`` over the held-out labels), ``w1_mccann_mean``, ``w1_previous_mean``.
            How each :math:`W_1` was computed, aligned with ``holdout``: ``w1_method``,
            ``w1_mccann_method``, ``w1_previous_method`` (``"exact"`` or ``"subsampled"``),
            ``w1_draw_se``, ``w1_mccann_draw_se``, ``w1_previous_draw_se`` (standard error over
            the subsample draws, 0 when exact); ``w1_settings`` (``max_points``, ``subsample``,
            ``n_draws``, ``seed``) and ``rollout_chunk_size``.

    Notes
    -----
    **How the model is stored.** The network is kept as its parameter arrays plus a JSON string
    (:meth:`~scwlm.Mechanics.to_state`) inside ``adata.uns``, not as a pickled object or a path to a
    separate file: arrays and strings are native HDF5/Zarr types, so ``adata.write_h5ad`` /
    ``anndata.read_h5ad`` (and ``write_zarr``) round-trip them bit for bit (float32 weights stay
    float32), the file stays self-contained and safe to open (no pickle, no code execution), it
    is inspectable with ``h5py``, and subsetting or copying the AnnData carries the model along.
    The networks are small (kilobytes to a few megabytes). :func:`get_mechanics` rebuilds the
    :class:`~scwlm.Mechanics`; its rollouts are identical to those of the fitted object.

    Raises
    ------
    KeyError
        ``time_key`` not in ``adata.obs`` or ``basis`` not in ``adata.obsm`` (the message lists what
        is available).
    ValueError
        Fewer than two (training) time points, unordered/unknown labels, a bad ``holdout`` (unknown,
        first or last time), NaN in the embedding, velocities of the wrong shape, bad engine
        settings, duplicate ``adata.obs_names`` (rollouts refer to cells by name). ``adata`` is left
        unchanged whenever an error is raised: everything is validated and computed before anything
        is written.

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd, scwlm
    >>> rng = np.random.default_rng(0)
    >>> obs = pd.DataFrame({"day": np.repeat([0, 1, 2], 20)}, index=[f"c{i}" for i in range(60)])
    >>> adata = ad.AnnData(np.zeros((60, 1)), obs=obs)
    >>> adata.obsm["X_pca"] = rng.normal(size=(60, 3)) + adata.obs["day"].to_numpy()[:, None]
    >>> adata.obsm["velocity_pca"] = np.ones((60, 3))
    >>> scwlm.tl.fit_mechanics(adata, "day", n_dims=2, n_iter=2, hidden=8, heads=1, blocks=1, ffn=8,
    ...                        progress=False, device="cpu")
    >>> adata.uns["wlm"]["params"]["time_labels"].tolist(), adata.uns["wlm"]["loss_history"].shape
    (['0', '1', '2'], (2,))
    >>> scwlm.tl.get_mechanics(adata).dim
    2
    """
    fit = _fit_function("fit")

    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be an integer, got {random_state!r} (use leave_one_out for several seeds)")
    check_key_added(key_added)
    cfg = WLMConfig.from_kwargs(**engine_config)
    prep = prepare(adata, time_key, basis, n_dims, velocity_key, what="scwlm.tl.fit_mechanics")
    axis = prep.axis
    held = resolve_holdouts(axis, holdout)
    train = [i for i in range(len(axis.labels)) if i not in held]
    if len(train) < 2:
        raise ValueError(f"only {len(train)} time point(s) remain for training after holding out "
                         f"{[axis.labels[i] for i in held]}")
    snaps, vels, times = prep.snapshots, prep.velocities, axis.times
    mech = fit([snaps[i] for i in train], times[train], [vels[i] for i in train], friction=friction,
               n_iter=n_iter, device=device, random_state=int(random_state), **engine_config)

    metrics = None
    if held:
        ev = mech.evaluate(snaps, times, vels, protocol="interpolate", holdout=held, chunk_size=ROLLOUT_CHUNK_SIZE)
        progress = None if cfg.progress and _is_main_rank() else False
        base = [interpolation_baselines(snaps, times, h, held, progress=progress) for h in held]
        w1 = np.asarray(ev["w1"], dtype=np.float64)
        mc = np.asarray([b["w1_mccann"] for b in base])
        prev = np.asarray([b["w1_previous"] for b in base])
        m, se = mean_se(w1)
        metrics = {
            "holdout": np.asarray([axis.labels[i] for i in ev["holdout"]], dtype=str),
            "start": np.asarray([axis.labels[i] for i in ev["start"]], dtype=str),
            "w1": w1, "w1_mccann": mc, "w1_previous": prev, "w1_mean": m, "w1_se": se,
            "w1_mccann_mean": float(mc.mean()), "w1_previous_mean": float(prev.mean()),
            "units": "standardised basis coordinates",
            **evaluation_metrics(ev["w1_method"], ev["w1_se"], ev["w1_settings"], base, ROLLOUT_CHUNK_SIZE),
        }
    record = FitRecord(
        params=Params.of_fit(
            prep, time_key=time_key, basis=basis, velocity_key=velocity_key, held=held,
            friction=friction, n_iter=n_iter, device=device, config=cfg,
        ),
        mean=prep.mean.copy(), std=prep.std.copy(), model=mech.to_state(), friction=float(mech.friction),
        friction_history=np.asarray(mech.history.get("friction", []), dtype=np.float64),
        loss_history=np.asarray(mech.history.get("loss", []), dtype=np.float64),
        random_state=int(random_state), train_labels=[axis.labels[i] for i in train], metrics=metrics,
    )

    out = adata.copy() if copy else adata
    write_record(out, key_added, record)
    return out if copy else None


def _fit_function(name: str):
    """``scwlm.api.<name>`` in one process; ``scwlm.distributed.<name>`` (``mode="ensemble"``) under torchrun.

    Looked up at call time. Without a launcher the distributed functions are the plain ones too;
    calling those directly keeps the single-process path exactly as it was.
    """
    import functools

    from .. import api, distributed

    if distributed.launched():
        return functools.partial(getattr(distributed, name), mode="ensemble")
    return getattr(api, name)


def _is_main_rank() -> bool:
    """Whether this process is rank 0 of a ``torch.distributed`` job, or not in one (it shows progress)."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
