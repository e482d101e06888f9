"""Array API: :func:`fit` and :func:`fit_many` turn snapshots into :class:`~scwlm.Mechanics`."""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from typing import Any, Sequence

import numpy as np
import torch

from .core.config import WLMConfig
from .core.snapshots import Snapshots, as_snapshots, check_dtype_range
from .core.trainer import Task, TrainingDivergedError, TrainResult, train
from .core.velocities import ot_velocities
from .mechanics import Mechanics, MechanicsEnsemble, _resolve_device

__all__ = ["fit", "fit_many"]

#: PyTorch's CPU threads when scwlm was imported (before scanpy's numba could lower them)
_TORCH_THREADS_AT_IMPORT = torch.get_num_threads()


def _check_cpu_threads() -> None:
    """Warn when numba's OpenMP layer has silently lowered PyTorch's CPU threads.

    numba (scanpy's neighbours and UMAP, scVelo) shares the OpenMP runtime with PyTorch; with
    ``NUMBA_NUM_THREADS`` below the core count its first parallel call sets PyTorch's thread count
    too, so a fit that follows trains on fewer cores.
    Deliberate settings (``OMP_NUM_THREADS`` in the environment) are left alone.
    """
    numba = sys.modules.get("numba")
    now = torch.get_num_threads()
    if numba is None or os.environ.get("OMP_NUM_THREADS") or now >= _TORCH_THREADS_AT_IMPORT:
        return
    if getattr(getattr(numba, "config", None), "NUMBA_NUM_THREADS", None) != now:
        return
    warnings.warn(
        f"PyTorch trains on {now} CPU thread(s), fewer than the {_TORCH_THREADS_AT_IMPORT} it had when scwlm was "
        f"imported: numba (used by scanpy's neighbours/UMAP and scVelo) with NUMBA_NUM_THREADS={now} has set the "
        f"OpenMP thread count both share. Unset NUMBA_NUM_THREADS, or call torch.set_num_threads("
        f"{_TORCH_THREADS_AT_IMPORT}) before fitting; set OMP_NUM_THREADS to keep fewer threads on purpose.",
        UserWarning, stacklevel=_caller_stacklevel(),
    )


def _caller_stacklevel() -> int:
    """``stacklevel`` that makes a warning issued by the calling function point at the first caller outside scwlm."""
    package = os.path.dirname(os.path.abspath(__file__))
    level, frame = 1, sys._getframe(1)  # the function that warns (stacklevel 1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        level, frame = level + 1, frame.f_back
    return level


def _parse_friction(friction: Any) -> float | None:
    if isinstance(friction, str):
        if friction == "learnable":
            return None
        raise ValueError(f"friction must be 'learnable' or a number >= 0, got {friction!r}")
    if isinstance(friction, bool) or not isinstance(friction, numbers.Real) or not math.isfinite(friction) or friction < 0:
        raise ValueError(f"friction must be 'learnable' or a finite number >= 0, got {friction!r}")
    return float(friction)


#: seeds are integers in [0, MAX_SEED): torch's CPU generator keeps 32 bits of a seed, so larger
#: seeds would silently give the same model as ``seed % 2**32``
MAX_SEED = 2**32


def _parse_seed(seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**31))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise ValueError(f"random_state must be an integer (or a list of integers), got {seed!r}")
    if not 0 <= int(seed) < MAX_SEED:
        raise ValueError(f"random_state must be an integer in [0, 2**32), got {int(seed)} "
                         "(larger seeds would repeat smaller ones: the generator keeps 32 bits)")
    return int(seed)


def _broadcast(value: Any, n: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} entries but {n} models are trained")
        return list(value)
    return [value] * n


def _snapshots(snapshots: Any, times: Any, velocities: Any) -> tuple[Snapshots, str]:
    """Validated snapshots and where their velocities come from (``"ot"``, ``"given"``, ``"none"``).

    ``velocities="ot"`` gives every snapshot but the last the optimal-transport velocities toward
    the next one (:func:`scwlm.core.velocities.ot_velocities`).
    """
    if isinstance(velocities, str):
        if velocities != "ot":
            raise ValueError(f"velocities must be None, 'ot', an (n_0, d) array or a list of arrays, got {velocities!r}")
        plain = as_snapshots(snapshots, times)
        vels = ot_velocities([p.numpy() for p in plain.points], plain.times.numpy())
        return as_snapshots(plain.points, plain.times, vels), "ot"
    snaps = as_snapshots(snapshots, times, velocities)
    return snaps, "none" if all(v is None for v in snaps.velocities) else "given"


def _run(tasks: list[Task], snaps_list: list[Snapshots], cfg: WLMConfig, n_iter: int, device, resume, single: bool,
         sources: Sequence[str]):
    dev = _resolve_device(device)
    if dev.type == "cpu":
        _check_cpu_threads()
    if resume is not None and not isinstance(resume, (str, os.PathLike)):
        raise ValueError(f"resume must be the path of a checkpoint file (or None), got {resume!r}")

    def wrap(result: TrainResult):
        mechs = [
            Mechanics.from_train_result(
                result, i, cfg,
                extra_info={"train_times": s.times.tolist(), "friction_mode": "learnable" if t.friction is None else "fixed",
                            "velocities": src},
            )
            for i, (t, s, src) in enumerate(zip(tasks, snaps_list, sources))
        ]
        return mechs[0] if single else MechanicsEnsemble(mechs)

    try:
        result = train(tasks, cfg, n_iter=n_iter, device=dev, resume=resume)
    except TrainingDivergedError as err:
        err.mechanics = wrap(err.result)
        raise
    return wrap(result)


def fit(
    snapshots: Any,
    times: Any,
    velocities: Any = None,
    *,
    friction: str | float | Sequence[Any] = "learnable",
    n_iter: int = 2000,
    device: str = "auto",
    random_state: int | Sequence[int] | None = 0,
    resume: str | None = None,
    **config: Any,
) -> Mechanics | MechanicsEnsemble:
    r"""Learn population mechanics (potential :math:`\Psi_\theta` and friction :math:`\gamma`) from snapshots.

    Particles obey :math:`\dot x = v,\ \dot v = -\nabla\Psi_\theta - \gamma v`; the potential is a
    set-attention network trained by rolling the first snapshot forward and matching the later
    snapshots with Sinkhorn divergences (Algorithm 1 of Guan, Atanackovic & Neklyudov, 2026).

    Parameters
    ----------
    snapshots
        Sequence of ``(n_i, d)`` arrays (NumPy or torch), one per time; sizes may differ and
        no particle identity across times is assumed.
    times
        Strictly increasing times of the snapshots (not necessarily evenly spaced).
    velocities
        Optional velocities: an ``(n_0, d)`` array for the first snapshot, a sequence aligned
        with ``snapshots`` whose entries are ``None`` or ``(n_i, d)`` arrays, or ``"ot"``: every
        snapshot but the last moves toward the next one along the optimal transport plan
        (:func:`scwlm.core.velocities.ot_velocities`; with zero forces and no friction the model
        then starts at McCann's interpolation) — for data without measured velocities, or whose
        measured velocities are on another scale than the displacement between time points. Training starts from
        the first snapshot with its velocities (zero if absent).
    friction
        ``"learnable"`` (:math:`\gamma = e^\theta`, initialised at ``friction_init``) or a fixed
        value :math:`\ge 0`. With a list of seeds, a list gives one setting per model.
    n_iter
        Number of training iterations (optimizer steps).
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``; a device
        that is not available raises ``ValueError``.
    random_state
        Seed, an integer in ``[0, 2**32)``; the same seed gives the same result on the same machine.
        A list of seeds trains an ensemble in one vectorised run and returns a
        :class:`~scwlm.MechanicsEnsemble`.
    resume
        Path of a checkpoint (written with ``checkpoint_every``/``checkpoint_path``) to continue from.
    **config
        Any field of :class:`~scwlm.WLMConfig` (:meth:`~scwlm.WLMConfig.paper` gives the paper's), e.g. ``hidden``, ``p``,
        ``particles_per_batch``, ``time_features``, ``ema``. Unknown keys raise ``ValueError``.

    Returns
    -------
    Mechanics or MechanicsEnsemble

    Raises
    ------
    ValueError
        Invalid data (NaN/inf, fewer than two snapshots, unsorted or duplicate times, dimension
        mismatch, empty snapshots, velocities of the wrong shape, values whose squares overflow
        float32 when ``dtype="float32"``), unknown config keys, a seed outside ``[0, 2**32)``, an
        unavailable ``device``, or times that would need too many integrator steps.
    TrainingDivergedError
        A non-finite loss; ``err.mechanics`` holds the model with the last good weights.

    Examples
    --------
    >>> import numpy as np, scwlm
    >>> rng = np.random.default_rng(0)
    >>> snaps = [rng.normal(size=(50, 2)) * (1 + 0.1 * t) for t in range(4)]
    >>> mech = scwlm.fit(snaps, [0, 1, 2, 3], n_iter=5, hidden=16, heads=2, blocks=1, ffn=16, progress=False)
    >>> mech.friction > 0
    True
    """
    cfg = WLMConfig.from_kwargs(**config)
    snaps, source = _snapshots(snapshots, times, velocities)
    check_dtype_range(snaps, cfg.dtype)
    single = not isinstance(random_state, (list, tuple, np.ndarray))
    seeds = [_parse_seed(random_state)] if single else [_parse_seed(s) for s in random_state]
    if not seeds:
        raise ValueError("random_state is an empty list")
    frictions = [_parse_friction(f) for f in _broadcast(friction, len(seeds), "friction")]
    tasks = [Task(snaps, seed, fr) for seed, fr in zip(seeds, frictions)]
    return _run(tasks, [snaps] * len(tasks), cfg, n_iter, device, resume, single, [source] * len(tasks))


def _datasets(datasets: Any, dtype: str) -> tuple[list[Snapshots], list[str]]:
    """Validated snapshots of every data set of :func:`fit_many`, and where their velocities come from."""
    if isinstance(datasets, (str, bytes)) or not isinstance(datasets, Sequence) or not datasets:
        raise ValueError("datasets must be a non-empty sequence of (snapshots, times[, velocities])")
    snaps_list, sources = [], []
    for i, ds in enumerate(datasets):
        if hasattr(ds, "astuple"):  # a scwlm.datasets.Dataset
            args = tuple(ds.astuple())
        elif isinstance(ds, dict):
            args = (ds.get("snapshots"), ds.get("times"), ds.get("velocities"))
        elif isinstance(ds, (tuple, list)) and len(ds) in (2, 3):
            args = tuple(ds) + ((None,) if len(ds) == 2 else ())
        else:
            raise ValueError(f"datasets[{i}] must be (snapshots, times[, velocities]) or a dict with those keys")
        try:
            snaps, source = _snapshots(*args)
            check_dtype_range(snaps, dtype)
            snaps_list.append(snaps)
            sources.append(source)
        except ValueError as exc:
            raise ValueError(f"datasets[{i}]: {exc}") from None
    return snaps_list, sources


def fit_many(
    datasets: Sequence[Any],
    *,
    random_state: int | Sequence[int] = 0,
    friction: str | float | Sequence[Any] = "learnable",
    n_iter: int = 2000,
    device: str = "auto",
    resume: str | None = None,
    **config: Any,
) -> MechanicsEnsemble:
    """Train one model per data set in a single vectorised run (e.g. one per leave-one-out holdout).

    Parameters
    ----------
    datasets
        Sequence of ``(snapshots, times)`` or ``(snapshots, times, velocities)`` tuples, dicts
        with those keys, or :class:`scwlm.datasets.Dataset` objects, all of the same dimension.
    random_state, friction
        One value for all models or one per data set.
    n_iter, device, resume, **config
        As in :func:`fit` (shared by all models).

    Returns
    -------
    MechanicsEnsemble
        Model ``i`` was trained on ``datasets[i]``; it equals ``fit(*datasets[i], ...)`` with the
        same seed whenever the data sets agree on the number of particles per iteration.

    Examples
    --------
    >>> ens = scwlm.fit_many([(snaps[:2], [0, 1]), (snaps, [0, 1, 2])], n_iter=2, hidden=8,
    ...                      heads=1, blocks=1, ffn=8, progress=False)
    >>> [m.info["train_times"] for m in ens]
    [[0.0, 1.0], [0.0, 1.0, 2.0]]
    """
    cfg = WLMConfig.from_kwargs(**config)
    snaps_list, sources = _datasets(datasets, cfg.dtype)
    n = len(snaps_list)
    seeds = [_parse_seed(s) for s in _broadcast(random_state, n, "random_state")]
    frictions = [_parse_friction(f) for f in _broadcast(friction, n, "friction")]
    tasks = [Task(s, seed, fr) for s, seed, fr in zip(snaps_list, seeds, frictions)]
    return _run(tasks, snaps_list, cfg, n_iter, device, resume, single=False, sources=sources)
