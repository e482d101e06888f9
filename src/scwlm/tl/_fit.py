"""Fit WLM to the time points of an AnnData and keep the model in ``.uns``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.config import WLMConfig
from ..core.metrics import mean_se
from ._utils import baselines, config_dict, get_model, h5ad_safe, prepare, resolve_holdouts

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

    from ..mechanics import Mechanics

__all__ = ["fit_mechanics", "get_mechanics"]


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

    Time labels (``adata.obs[time_key]``): numbers (int/float column) are the times. Labels that all
    parse as numbers (categories or strings such as ``"12"``, ``"35"``) use those numbers; an ordered
    categorical must then list them in increasing order. Other ordered categoricals use the
    category positions ``0..K-1`` (unit spacing). Unordered non-numeric labels are rejected (their
    order is unknown). The mapping label -> time is stored in ``params``.

    Parameters
    ----------
    adata
        Annotated data matrix with a time label in ``.obs`` and an embedding in ``.obsm``.
    time_key
        Column of ``adata.obs`` with the time labels.
    basis
        Embedding in ``adata.obsm``; its first ``n_dims`` columns are modelled.
    n_dims
        Number of leading coordinates (the paper uses 5 PCs).
    velocity_key
        Embedding velocities in ``adata.obsm`` (see :func:`scwlm.pp.embedding_velocities`).
    holdout
        A label or list of labels left out of training (interior times only). When given, the
        held-out cells are predicted from the previous observed time (with its velocities) and
        compared by exact :math:`W_1` (standardised units), together with McCann's displacement
        interpolation between the neighbouring observed times and the previous snapshot itself.
    friction
        ``"learnable"`` or a fixed value :math:`\gamma \ge 0`.
    n_iter, device, random_state
        As in :func:`scwlm.fit` (``random_state`` an integer).
    key_added
        Key in ``adata.uns`` for the results.
    copy
        Return a modified copy instead of writing in place.
    **engine_config
        Any :class:`~scwlm.WLMConfig` setting, e.g. ``hidden``, ``ffn``, ``p``, ``blur``,
        ``particles_per_batch``, ``ema``, ``progress``.

    Returns
    -------
    AnnData or None
        The modified copy with ``copy=True``, else ``None``. ``adata.uns[key_added]`` holds:

        ``params``
            ``time_key``, ``basis``, ``n_dims``, ``velocity_key`` (``""`` for ``None``),
            ``velocity_source``, ``holdout`` (labels), ``friction`` (the argument), ``n_iter``,
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
            ``start`` (the label simulated from); and ``w1_mean``, ``w1_se``,
            ``w1_mccann_mean``, ``w1_previous_mean``.

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
        settings. ``adata`` is left unchanged whenever an error is raised: everything is validated
        and computed before anything is written.

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
    from ..api import fit

    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be an integer, got {random_state!r} (use leave_one_out for several seeds)")
    if not isinstance(key_added, str) or not key_added or "/" in key_added:
        raise ValueError(f"key_added must be a non-empty string without '/', got {key_added!r}")
    cfg = WLMConfig.from_kwargs(**engine_config)
    prep = prepare(adata, time_key, basis, n_dims, velocity_key)
    axis = prep.axis
    held = resolve_holdouts(axis, holdout)
    train = [i for i in range(len(axis.labels)) if i not in held]
    if len(train) < 2:
        raise ValueError(f"only {len(train)} time point(s) remain for training after holding out "
                         f"{[axis.labels[i] for i in held]}")
    snaps, vels, times = prep.snapshots, prep.velocities, axis.times
    mech = fit([snaps[i] for i in train], times[train], [vels[i] for i in train], friction=friction,
               n_iter=n_iter, device=device, random_state=int(random_state), **engine_config)

    result: dict[str, Any] = {
        "params": {
            "time_key": time_key, "basis": basis, "n_dims": int(prep.n_dims), "velocity_key": velocity_key or "",
            "velocity_source": prep.velocity_source, "holdout": np.asarray([axis.labels[i] for i in held], dtype=str),
            "friction": friction if isinstance(friction, str) else float(friction), "n_iter": int(n_iter),
            "random_state": int(random_state), "device": str(device), "engine_config": config_dict(cfg),
            "time_labels": np.asarray(axis.labels, dtype=str), "times": np.asarray(times, dtype=np.float64),
            "time_kind": axis.kind, "n_cells": np.asarray([s.shape[0] for s in snaps], dtype=np.int64),
            "train_labels": np.asarray([axis.labels[i] for i in train], dtype=str),
        },
        "standardization": {"mean": prep.mean.copy(), "std": prep.std.copy()},
        "friction": float(mech.friction),
        "friction_history": np.asarray(mech.history.get("friction", []), dtype=np.float64),
        "loss_history": np.asarray(mech.history.get("loss", []), dtype=np.float64),
        "model": mech.to_state(),
    }
    if held:
        ev = mech.evaluate(snaps, times, vels, protocol="interpolate", holdout=held)
        base = [baselines(prep, h, held) for h in held]
        w1 = np.asarray(ev["w1"], dtype=np.float64)
        mc = np.asarray([b["w1_mccann"] for b in base])
        prev = np.asarray([b["w1_previous"] for b in base])
        m, se = mean_se(w1)
        result["metrics"] = {
            "holdout": np.asarray([axis.labels[i] for i in ev["holdout"]], dtype=str),
            "start": np.asarray([axis.labels[i] for i in ev["start"]], dtype=str),
            "w1": w1, "w1_mccann": mc, "w1_previous": prev, "w1_mean": m, "w1_se": se,
            "w1_mccann_mean": float(mc.mean()), "w1_previous_mean": float(prev.mean()),
            "units": "standardised basis coordinates",
        }
    result = h5ad_safe(result)

    out = adata.copy() if copy else adata
    out.uns[key_added] = result
    return out if copy else None


def get_mechanics(adata: AnnData, key: str = "wlm", *, holdout: Any = None, seed: int | None = None,
                  device: str = "cpu") -> Mechanics:
    """Rebuild the :class:`~scwlm.Mechanics` stored by :func:`fit_mechanics` (or :func:`leave_one_out`).

    Works on a fresh AnnData as well as after ``write_h5ad`` / ``read_h5ad`` (which may turn the
    JSON string into ``numpy.str_`` and lists into arrays); rollouts of the rebuilt model are
    bit-identical to the original's on the same device.

    Parameters
    ----------
    adata
        Annotated data matrix with ``adata.uns[key]``.
    key
        The ``key_added`` of the fit.
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

    Examples
    --------
    >>> mech = scwlm.tl.get_mechanics(adata, "wlm")  # doctest: +SKIP
    >>> mech.friction  # doctest: +SKIP
    1.02
    """
    return get_model(adata, key, holdout=holdout, seed=seed, device=device)
