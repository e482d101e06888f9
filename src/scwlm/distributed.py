r"""Multi-process training on :mod:`torch.distributed`: ensembles across ranks, data parallelism.

Two ways to use several processes (CPU cores, GPUs, nodes), both on the existing engine
(:func:`scwlm.core.trainer.train`) and launched with ``torchrun``:

``mode="ensemble"``
    The members of an ensemble (the seeds of :func:`fit`, the data sets of :func:`fit_many`,
    e.g. one per leave-one-out holdout) are split into contiguous, equal blocks, one per rank
    (rank ``r`` of ``N`` trains members ``r*E/N .. (r+1)*E/N - 1``); the number of members must be
    a multiple of the number of ranks. Each rank trains its block in one vectorised run; the fitted
    models are gathered (:func:`torch.distributed.all_gather_object` of
    :meth:`~scwlm.Mechanics.to_state`) into one :class:`~scwlm.MechanicsEnsemble` on every rank.
    **Relation to one process:** it equals ``scwlm.fit(..., random_state=seeds)`` (same weights,
    up to float round-off) whenever an ensemble member equals the model fitted alone with its seed,
    i.e. when the members agree on the number of particles per iteration: all snapshots have the
    same size, or ``particles_per_batch`` is at most the smallest snapshot (the engine draws one
    minibatch size per iteration for all the members it trains together).
``mode="data"``
    Every rank trains the same model(s) with the same initialisation, horizons and dropout masks
    but draws its own particle minibatch (``particles_per_batch`` particles of every snapshot);
    after every backward pass the gradients of the network and of :math:`\log\gamma` are summed
    over the ranks and divided by ``N`` (:class:`GradientAllReduce`), before clipping, AdamW and
    EMA, so the weights stay identical on all ranks. **Relation to one process:** ``N`` ranks with
    minibatches of ``n`` particles take exactly the steps of one process that minimises the mean
    :math:`\frac1N\sum_r L_r` of the ``N`` Algorithm-1 losses of those minibatches (same horizon,
    same masks), up to float round-off (tested). It is *not* the same as one process with a single
    batch of ``N n`` particles: the potential is a population energy (particles of one minibatch
    interact through attention only with each other) and a Sinkhorn divergence of a union batch is
    not the mean of the divergences of its parts; both are estimators of the same population loss,
    the union batch with less minibatch bias. The recorded loss history is the mean over ranks.

Launch
    ``torchrun --nproc-per-node N script.py`` (or ``torchrun --nproc-per-node N -m scwlm fit ...
    --parallel ensemble|data``, see :mod:`scwlm.cli`) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
    ``MASTER_ADDR`` and ``MASTER_PORT``. Without them (a plain ``python`` run) :func:`fit` and
    :func:`fit_many` are the single-process :func:`scwlm.fit` / :func:`scwlm.fit_many`. The backend
    is gloo on CPU and nccl on CUDA, with one GPU per rank (``cuda:LOCAL_RANK``).
Files and output
    Only rank 0 shows progress bars and writes ``out`` (:meth:`~scwlm.Mechanics.save` or
    :meth:`~scwlm.MechanicsEnsemble.save`, read back with :func:`scwlm.load`), into a temporary
    folder next to it that is renamed into place once every rank has succeeded. A rank that fails makes every rank raise
    :class:`DistributedTrainingError` naming it, and nothing is written.
Timeouts
    ``init_timeout`` (default 60 s, env ``SCWLM_DIST_INIT_TIMEOUT``) bounds the rendezvous;
    ``timeout`` (default 30 min, env ``SCWLM_DIST_TIMEOUT``) bounds every wait at a collective, e.g.
    for the slowest rank at the end of an ensemble: make it longer than the difference between the
    ranks' training times.

Examples
--------
A script ``train.py`` run with ``torchrun --nproc-per-node 2 train.py`` (or ``python train.py``,
which trains both seeds in one process)::

    import numpy as np, scwlm.distributed as sd

    rng = np.random.default_rng(0)
    snaps = [rng.normal(size=(500, 2)) + t for t in range(4)]
    ens = sd.fit(snaps, [0, 1, 2, 3], random_state=[0, 1], mode="ensemble", n_iter=500,
                 particles_per_batch=128, out="model")  # rank 0 writes the ensemble to model/

Without a launcher this is one process:

>>> import numpy as np, scwlm.distributed as sd
>>> rng = np.random.default_rng(0)
>>> snaps = [rng.normal(size=(30, 2)) + t for t in range(3)]
>>> ens = sd.fit(snaps, [0.0, 1.0, 2.0], random_state=[0, 1], n_iter=2, hidden=8, heads=1, blocks=1,
...              ffn=8, progress=False)
>>> len(ens), sd.launched()
(2, False)
"""

from __future__ import annotations

import atexit
import datetime
import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist

from . import api as _api
from .core import trainer as _trainer
from .core.config import WLMConfig
from .core.snapshots import Snapshots, check_dtype_range
from .core.trainer import Task, TrainResult
from .mechanics import Mechanics, MechanicsEnsemble, _resolve_device

__all__ = [
    "RankInfo", "DistributedSetupError", "DistributedTrainingError", "GradientAllReduce",
    "launched", "init_process_group", "shutdown", "split_members", "fit", "fit_many",
    "DEFAULT_INIT_TIMEOUT", "DEFAULT_TIMEOUT",
]

#: bound on the rendezvous (all ranks joining), unless ``SCWLM_DIST_INIT_TIMEOUT`` (seconds) says otherwise
DEFAULT_INIT_TIMEOUT = datetime.timedelta(seconds=60)
#: bound on every wait at a collective, unless ``SCWLM_DIST_TIMEOUT`` (seconds) says otherwise
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)

_RENDEZVOUS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_MODES = ("ensemble", "data")


class DistributedSetupError(ValueError):
    """The launch environment or the inputs do not allow the distributed run (raised before training)."""


class DistributedTrainingError(RuntimeError):
    """Training failed on at least one rank; raised on every rank, nothing was written.

    Attributes
    ----------
    failures
        ``{rank: "ErrorType: message"}`` of the ranks that failed.
    """

    def __init__(self, message: str, failures: dict[int, str]) -> None:
        super().__init__(message)
        self.failures = failures


@dataclass(frozen=True)
class RankInfo:
    """Where this process stands in the job.

    Attributes
    ----------
    rank, world_size
        Global rank and number of ranks.
    local_rank, local_world_size
        Rank and number of ranks on this node.
    device
        This rank's device (``cuda:LOCAL_RANK`` or ``cpu``).
    backend
        ``"nccl"`` or ``"gloo"`` (``None`` when not distributed).
    """

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes files and shows progress)."""
        return self.rank == 0


# ---------------------------------------------------------------------------- environment
def _env_int(name: str, env: dict) -> int:
    value = env.get(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DistributedSetupError(f"environment variable {name}={value!r} is not an integer") from None


def launched(env: dict | None = None) -> bool:
    """Whether this process is one rank of a multi-process job.

    True when a process group is initialised with more than one rank, or when ``WORLD_SIZE`` (as
    set by ``torchrun`` / ``srun``) is larger than 1. ``RANK`` without ``WORLD_SIZE`` is an error.

    Examples
    --------
    >>> launched({}), launched({"WORLD_SIZE": "1", "RANK": "0"})
    (False, False)
    >>> launched({"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    True
    """
    if env is None:
        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size() > 1
        env = dict(os.environ)
    if "WORLD_SIZE" not in env:
        if "RANK" in env:
            raise DistributedSetupError("environment variable RANK is set but WORLD_SIZE is not; launch with torchrun "
                                        "(it sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT) or unset RANK")
        return False
    return _env_int("WORLD_SIZE", env) > 1


def _rank_env(env: dict) -> tuple[int, int, int | None, int | None]:
    """``(rank, world_size, local_rank, local_world_size)`` from the environment, validated."""
    missing = [v for v in _RENDEZVOUS if not env.get(v)]
    if missing:
        raise DistributedSetupError(
            f"multi-process run (WORLD_SIZE={env.get('WORLD_SIZE')!r}) but the rendezvous variable(s) "
            f"{', '.join(missing)} are not set; launch with torchrun (which sets {', '.join(_RENDEZVOUS)}) "
            "or set them by hand"
        )
    rank, world = _env_int("RANK", env), _env_int("WORLD_SIZE", env)
    if not 0 <= rank < world:
        raise DistributedSetupError(f"RANK={rank} must lie in 0..WORLD_SIZE-1 (WORLD_SIZE={world})")
    port = _env_int("MASTER_PORT", env)
    if not 0 < port < 2**16:
        raise DistributedSetupError(f"MASTER_PORT={port} is not a valid port")
    local = _env_int("LOCAL_RANK", env) if env.get("LOCAL_RANK") else None
    local_world = _env_int("LOCAL_WORLD_SIZE", env) if env.get("LOCAL_WORLD_SIZE") else None
    return rank, world, local, local_world


def _rank_device(device: str | torch.device, world: int, local: int | None, local_world: int | None) -> torch.device:
    """This rank's device: CPU, or one GPU per rank (``cuda:LOCAL_RANK``)."""
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise DistributedSetupError(f"device={str(device)!r}: distributed training supports 'cpu' (gloo) and 'cuda' (nccl)")
    if dev.index is not None:
        raise DistributedSetupError(
            f"device={str(device)!r}: with several ranks every rank uses one GPU, cuda:LOCAL_RANK; pass device='cuda'"
        )
    if local is None:
        raise DistributedSetupError("device='cuda' needs LOCAL_RANK (this rank's GPU on its node); torchrun sets it")
    n_gpu = torch.cuda.device_count()
    on_node = local_world if local_world is not None else world
    if on_node > n_gpu or local >= n_gpu:
        what = f"LOCAL_WORLD_SIZE={local_world}" if local_world is not None else f"WORLD_SIZE={world}"
        raise DistributedSetupError(
            f"{what} ranks on this node but only {n_gpu} GPU(s) are visible (one GPU per rank): launch at most "
            f"{n_gpu} process(es) per node (torchrun --nproc-per-node {max(n_gpu, 1)}) or use device='cpu'"
        )
    return torch.device("cuda", local)


def _seconds(value: Any, env_name: str, default: datetime.timedelta, name: str) -> datetime.timedelta:
    if value is None:
        value = os.environ.get(env_name)
        if value is None:
            return default
        name = env_name
    if isinstance(value, datetime.timedelta):
        return value
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise DistributedSetupError(f"{name} must be a number of seconds or a timedelta, got {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise DistributedSetupError(f"{name} must be a positive number of seconds, got {value!r}")
    return datetime.timedelta(seconds=seconds)


def _current() -> RankInfo:
    """The RankInfo of an already initialised process group."""
    env = os.environ
    local = int(env["LOCAL_RANK"]) if env.get("LOCAL_RANK") else dist.get_rank()
    local_world = int(env["LOCAL_WORLD_SIZE"]) if env.get("LOCAL_WORLD_SIZE") else dist.get_world_size()
    backend = str(dist.get_backend())
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    return RankInfo(dist.get_rank(), dist.get_world_size(), local, local_world, device, backend)


def init_process_group(
    device: str | torch.device = "auto",
    *,
    init_timeout: float | datetime.timedelta | None = None,
    timeout: float | datetime.timedelta | None = None,
) -> RankInfo:
    """Join the job described by the environment (``torchrun``) and return this rank's place in it.

    Reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` (and ``LOCAL_RANK``,
    ``LOCAL_WORLD_SIZE``), picks gloo for CPU and nccl for CUDA (one GPU per rank,
    ``cuda:LOCAL_RANK``), and initialises the default process group. If one is already
    initialised it is used as it is.

    Parameters
    ----------
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    init_timeout
        Longest wait for all ranks to join (seconds or a timedelta; default 60 s or
        ``$SCWLM_DIST_INIT_TIMEOUT``).
    timeout
        Longest wait at any later collective (default 30 min or ``$SCWLM_DIST_TIMEOUT``).

    Returns
    -------
    RankInfo

    Raises
    ------
    DistributedSetupError
        A rendezvous variable is missing or invalid, more ranks than GPUs on a node, an unsupported
        device, or the other ranks did not join within ``init_timeout``.

    Examples
    --------
    In a script started by ``torchrun --nproc-per-node 2``::

        info = scwlm.distributed.init_process_group("cpu")
        info.rank, info.world_size, info.backend   # (0, 2, 'gloo') on the first process
    """
    if not dist.is_available():
        raise DistributedSetupError("this PyTorch build has no torch.distributed support")
    if dist.is_initialized():
        return _current()
    rank, world, local, local_world = _rank_env(dict(os.environ))
    dev = _rank_device(device, world, local, local_world)
    init_td = _seconds(init_timeout, "SCWLM_DIST_INIT_TIMEOUT", DEFAULT_INIT_TIMEOUT, "init_timeout")
    td = _seconds(timeout, "SCWLM_DIST_TIMEOUT", DEFAULT_TIMEOUT, "timeout")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    try:
        # the rendezvous with its own (short) timeout, the process group with the long one
        store, rank, world = next(dist.rendezvous("env://", timeout=init_td))
        store.set_timeout(init_td)
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=td, **kwargs)
        store.set_timeout(td)
    except (RuntimeError, ValueError, OSError) as exc:  # DistStoreError is a RuntimeError
        raise DistributedSetupError(
            f"rank {rank}: could not join the {world}-rank job at MASTER_ADDR:MASTER_PORT={where} within "
            f"{init_td.total_seconds():g} s (init_timeout): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
            "Check that all ranks were started with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE."
        ) from None
    atexit.register(_destroy)
    return RankInfo(rank, world, local if local is not None else rank,
                    local_world if local_world is not None else world, dev, backend)


def shutdown(timeout: float = 30.0) -> None:
    """Wait for every rank, then destroy the process group (a no-op when none is initialised).

    Call it on every rank once communication is over, before the process exits. A rank that tears
    its gloo group down while a peer still uses the connection can abort at interpreter exit
    ("terminate called without an active exception"); the barrier makes all ranks leave together.
    ``scwlm fit`` calls it; the handler that :func:`init_process_group` registers with
    :mod:`atexit` calls it too, so scripts that forget it still shut down in order.

    Parameters
    ----------
    timeout
        Longest wait for the other ranks (seconds) with gloo; after it the group is destroyed anyway.
        NCCL's barrier takes no timeout: it waits up to the process group's ``timeout``.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=timeout))
        else:
            dist.barrier()
    except Exception:  # a peer already gone: nothing to wait for
        pass
    try:
        dist.destroy_process_group()
    except Exception:  # pragma: no cover - best effort
        pass


def _destroy() -> None:
    """atexit: the bounded gloo barrier (10 s), then destroy; with NCCL, whose barrier takes no
    timeout, destroy without waiting, so that exit never hangs on a peer that died."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() != "gloo":
        try:
            dist.destroy_process_group()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass
        return
    shutdown(timeout=10.0)


def split_members(n_members: int, world_size: int, *, what: str = "ensemble members") -> list[range]:
    """Contiguous equal blocks of members, one per rank.

    Parameters
    ----------
    n_members
        Number of models to train.
    world_size
        Number of ranks.
    what
        How the error message calls the members.

    Returns
    -------
    list of range
        ``blocks[r]`` are the members rank ``r`` trains.

    Raises
    ------
    DistributedSetupError
        ``n_members`` is not a multiple of ``world_size``.

    Examples
    --------
    >>> split_members(4, 2)
    [range(0, 2), range(2, 4)]
    """
    if world_size < 1:
        raise DistributedSetupError(f"world_size must be >= 1, got {world_size}")
    if n_members % world_size:
        divisors = [k for k in range(1, n_members + 1) if n_members % k == 0]
        up = -(-n_members // world_size) * world_size
        raise DistributedSetupError(
            f"{n_members} {what} cannot be split evenly across WORLD_SIZE={world_size} ranks (mode='ensemble'): "
            f"train a multiple of {world_size} members (e.g. {up}) or launch {' or '.join(map(str, divisors))} "
            "process(es)"
        )
    k = n_members // world_size
    return [range(r * k, (r + 1) * k) for r in range(world_size)]


# ---------------------------------------------------------------------------- data parallelism
class _PeerFailed(RuntimeError):
    pass


class GradientAllReduce:
    """``reduce_gradients`` hook of :func:`scwlm.core.trainer.train`: average gradients over ranks.

    After every backward pass, the gradients of ``state.network.parameters()`` and of
    ``state.friction.log_gamma`` are flattened into one buffer, summed over the ranks with one
    all-reduce and divided by the number of ranks (before clipping, AdamW and EMA, so all ranks
    take the same step). Before that, a one-element all-reduce carries a failure flag: a rank that
    failed sends ``1`` once (:meth:`signal_failure`) and every other rank's hook then raises, so
    that no rank waits for a gradient that never comes.

    Parameters
    ----------
    device
        Device of the communication buffers (the rank's device: ``cuda:LOCAL_RANK`` with nccl).
    group
        Process group (default: the default group).

    Examples
    --------
    Under ``torchrun``::

        hook = GradientAllReduce(info.device)
        result = scwlm.core.trainer.train(tasks, cfg, n_iter=100, data_rank=info.rank,
                                          reduce_gradients=hook)
    """

    def __init__(self, device: torch.device | str = "cpu", group: Any = None) -> None:
        self.device, self.group = torch.device(device), group
        self.world = dist.get_world_size(group)
        self.calls = 0
        self._done = False

    def _status(self, failed: bool) -> int:
        flag = torch.tensor([1.0 if failed else 0.0], device=self.device)
        dist.all_reduce(flag, group=self.group)
        return int(flag.item())

    def __call__(self, state: Any) -> None:
        if self._status(False):
            self._done = True
            raise _PeerFailed("another rank failed")
        params = list(state.network.parameters()) + [state.friction.log_gamma]
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, group=self.group)
        flat.div_(self.world)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n
        self.calls += 1

    def finish(self, failed: bool) -> bool:
        """The rank's last status message (``failed`` or done); whether any rank failed.

        Every rank calls it exactly once unless its hook already learnt of a failure, so the
        status all-reduces of all ranks stay paired.
        """
        if self._done:
            return True
        self._done = True
        return bool(self._status(failed))

    signal_failure = finish


# ---------------------------------------------------------------------------- training
def _wrap(result: TrainResult, tasks: Sequence[Task], snaps_list: Sequence[Snapshots], cfg: WLMConfig,
          sources: Sequence[str]) -> list[Mechanics]:
    """The models of a training run, as :func:`scwlm.fit` builds them (the same ``info``)."""
    return [
        Mechanics.from_train_result(
            result, i, cfg,
            extra_info={"train_times": s.times.tolist(), "friction_mode": "learnable" if t.friction is None else "fixed",
                        "velocities": src},
        )
        for i, (t, s, src) in enumerate(zip(tasks, snaps_list, sources))
    ]


def _rank_path(path: str | None, rank: int) -> str | None:
    if path is None:
        return None
    p = Path(path)
    return str(p.with_name(f"{p.stem}.rank{rank}{p.suffix}"))


def _is_saved_model(path: Path) -> bool:
    entries = set(os.listdir(path))
    return {"config.json", "state.pt"} <= entries or "ensemble.json" in entries


def _check_out(out: str | os.PathLike | None) -> Path | None:
    """``out`` may be new, an empty folder or a saved scwlm model (replaced); anything else is refused."""
    if out is None:
        return None
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not _is_saved_model(out))):
        raise DistributedSetupError(
            f"out={str(out)!r} exists and is neither an empty folder nor a saved scwlm model; choose a new path"
        )
    return out


def _save(models: Mechanics | MechanicsEnsemble, out: Path) -> Path:
    """Write to a temporary folder next to ``out``, then rename it into place (no partial files).

    A model already at ``out`` is replaced only once the new one is complete.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    old = None
    try:
        models.save(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            if not out.exists() and (old / out.name).exists():  # put the old model back
                os.replace(old / out.name, out)
            shutil.rmtree(old, ignore_errors=True)
    return out


def _failure(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


def _raise_failures(failures: dict[int, str], world: int) -> None:
    if failures:
        lines = "; ".join(f"rank {r}: {msg}" for r, msg in sorted(failures.items()))
        raise DistributedTrainingError(
            f"training failed on {len(failures)} of {world} rank(s) ({lines}); the job stopped and no model files were written",
            failures,
        )


def _from_states(states: Sequence[dict], cfg: WLMConfig, device: torch.device) -> list[Mechanics]:
    mechs = []
    for s in states:
        m = Mechanics.from_state(s, device=device)
        m.config = cfg  # the runtime settings of this fit (to_state keeps only the others)
        mechs.append(m)
    return mechs


def _run(
    tasks: list[Task],
    snaps_list: list[Snapshots],
    cfg: WLMConfig,
    *,
    n_iter: int,
    device: Any,
    mode: str,
    single: bool,
    out: Any,
    resume: Any,
    init_timeout: Any,
    timeout: Any,
    info: dict | None = None,
    sources: Sequence[str] | None = None,
) -> Mechanics | MechanicsEnsemble:
    if mode not in _MODES:
        raise DistributedSetupError(f"mode must be one of {_MODES}, got {mode!r}")
    out = _check_out(out)
    sources = list(sources) if sources is not None else ["given"] * len(tasks)  # where the velocities come from
    if not launched():  # one process: exactly scwlm.fit / scwlm.fit_many
        dev = _resolve_device(device)
        try:
            result = _trainer.train(tasks, cfg, n_iter=n_iter, device=dev, resume=resume)
        except _trainer.TrainingDivergedError as err:
            mechs = _wrap(err.result, tasks, snaps_list, cfg, sources)
            err.mechanics = mechs[0] if single else MechanicsEnsemble(mechs)
            raise
        mechs = _wrap(result, tasks, snaps_list, cfg, sources)
        for m in mechs:
            m.info.update(info or {})
        models = mechs[0] if single else MechanicsEnsemble(mechs)
        if out is not None:
            _save(models, out)
        return models

    # --- every check before the rendezvous: a bad launch fails at once on every rank
    if dist.is_initialized():
        world = dist.get_world_size()
    else:
        _, world, local, local_world = _rank_env(dict(os.environ))
        _rank_device(device, world, local, local_world)
    ppb = _trainer.training_batch(cfg, _trainer.step_indices(tasks, cfg), device)
    sizes = {int(p.shape[0]) for s in snaps_list for p in s.points}
    if mode == "ensemble":
        blocks = split_members(len(tasks), world)
        if (ppb is None and len(sizes) > 1) or (ppb is not None and ppb > min(sizes)):
            warnings.warn(
                f"snapshot sizes {min(sizes)}..{max(sizes)} with particles_per_batch={ppb}: the members of one rank may "
                "draw another number of particles per iteration than in one process, so the result can differ from "
                "the single-process ensemble; set particles_per_batch <= the smallest snapshot for equal results",
                stacklevel=3,
            )
    else:
        blocks = None
        smallest = min(sizes)
        if ppb is None or ppb >= smallest:
            warnings.warn(
                f"mode='data' with particles_per_batch={ppb} and {smallest} points in the smallest snapshot: every rank "
                "trains on the same particles (no gain from more ranks); set particles_per_batch below the snapshot sizes",
                stacklevel=3,
            )
    rinfo = init_process_group(device, init_timeout=init_timeout, timeout=timeout)
    rank, world, dev = rinfo.rank, rinfo.world_size, rinfo.device
    run_cfg = cfg.replace(progress=bool(cfg.progress and rinfo.is_main))

    failure: str | None = None
    payload: Any = None
    if mode == "ensemble":
        mine = list(blocks[rank])
        my_tasks = [tasks[i] for i in mine]
        if cfg.checkpoint_path is not None:
            run_cfg = run_cfg.replace(checkpoint_path=_rank_path(cfg.checkpoint_path, rank))
        if cfg.particles_per_batch == "auto":  # sized for the whole ensemble, as in one process
            run_cfg = run_cfg.replace(particles_per_batch=ppb)
        try:
            result = _trainer.train(my_tasks, run_cfg, n_iter=n_iter, device=dev, resume=_rank_path(resume, rank))
            payload = [m.to_state() for m in _wrap(result, my_tasks, [snaps_list[i] for i in mine], cfg,
                                                     [sources[i] for i in mine])]
        except Exception as exc:  # reported to every rank below
            failure = _failure(exc)
        gathered: list = [None] * world
        dist.all_gather_object(gathered, (failure, payload))
        _raise_failures({r: f for r, (f, _) in enumerate(gathered) if f is not None}, world)
        states = [s for _, p in gathered for s in p]
    else:
        if not rinfo.is_main and cfg.checkpoint_every:  # rank 0 alone writes the (identical) weights
            run_cfg = run_cfg.replace(checkpoint_every=None, checkpoint_path=None)
        hook = GradientAllReduce(dev)
        try:
            result = _trainer.train(tasks, run_cfg, n_iter=n_iter, device=dev, resume=resume,
                                    data_rank=rank, reduce_gradients=hook)
            payload = ([m.to_state() for m in _wrap(result, tasks, snaps_list, cfg, sources)] if rinfo.is_main else None,
                       result.history["loss"])
        except _PeerFailed:
            pass
        except Exception as exc:
            failure = _failure(exc)
        hook.finish(failure is not None)
        gathered = [None] * world
        dist.all_gather_object(gathered, (failure, payload))
        failures = {r: f for r, (f, _) in enumerate(gathered) if f is not None}
        if not failures and any(p is None for _, p in gathered):  # pragma: no cover - defensive
            failures = {r: "stopped without a result" for r, (_, p) in enumerate(gathered) if p is None}
        _raise_failures(failures, world)
        states = gathered[0][1][0]
        mean_loss = np.mean([p[1] for _, p in gathered], axis=0)  # (n_iter, E): the loss minimised
        for e, s in enumerate(states):
            s["history"] = dict(s["history"], loss=mean_loss[:, e].copy())
            meta = json.loads(s["meta"])
            meta["info"]["data_parallel"] = {"world_size": world, "particles_per_rank": ppb}
            s["meta"] = json.dumps(meta)

    mechs = _from_states(states, cfg, dev)
    for m in mechs:
        m.info.update(info or {})
    models = mechs[0] if single else MechanicsEnsemble(mechs)
    if out is not None:
        status = [None]
        if rinfo.is_main:
            try:
                _save(models, out)
            except Exception as exc:
                status = [f"writing out={str(out)!r} failed: {_failure(exc)}"]
        dist.broadcast_object_list(status, src=0)
        if status[0] is not None:
            raise DistributedTrainingError(status[0], {0: status[0]})
    return models


def _seeds(random_state: Any, n: int | None, name: str = "random_state") -> tuple[list[int], bool]:
    single = not isinstance(random_state, (list, tuple, np.ndarray))
    values = [random_state] if single else list(random_state)
    if n is not None and not single and len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries but {n} models are trained")
    if any(v is None for v in values) and launched():
        raise DistributedSetupError("random_state=None would give every rank other seeds: pass integer seeds")
    seeds = [_api._parse_seed(v) for v in values]
    if not seeds:
        raise ValueError("random_state is an empty list")
    return seeds, single


def fit(
    snapshots: Any,
    times: Any,
    velocities: Any = None,
    *,
    mode: str = "ensemble",
    random_state: int | Sequence[int] = 0,
    friction: str | float | Sequence[Any] = "learnable",
    n_iter: int = 2000,
    device: str = "auto",
    out: str | os.PathLike | None = None,
    resume: str | None = None,
    init_timeout: float | datetime.timedelta | None = None,
    timeout: float | datetime.timedelta | None = None,
    info: dict | None = None,
    **config: Any,
) -> Mechanics | MechanicsEnsemble:
    """:func:`scwlm.fit` on all ranks of a ``torchrun`` job (one process when not launched).

    Parameters
    ----------
    snapshots, times, velocities, friction, n_iter, **config
        As in :func:`scwlm.fit`.
    mode
        ``"ensemble"``: the seeds of ``random_state`` are split across the ranks (their number must
        be a multiple of ``WORLD_SIZE``). ``"data"``: every rank trains all the models on its own
        particle minibatches (``particles_per_batch``) and gradients are averaged (module docstring).
    random_state
        A seed or a list of seeds (an ensemble), as in :func:`scwlm.fit`; ``None`` is refused in a
        multi-process run (every rank would draw another seed).
    device
        ``"auto"``, ``"cpu"`` (gloo) or ``"cuda"`` (nccl; rank uses ``cuda:LOCAL_RANK``).
    out
        Optional folder: rank 0 saves the model there (:meth:`~scwlm.Mechanics.save` or
        :meth:`~scwlm.MechanicsEnsemble.save`; read back with :func:`scwlm.load`) once every rank has
        succeeded. It must be new, an empty folder or a saved model (replaced once the new one is
        written).
    resume
        A checkpoint to continue from (``checkpoint_every`` / ``checkpoint_path``). In ensemble mode
        rank ``r`` reads and writes ``<stem>.rank<r><suffix>`` of the given path; in data mode rank 0
        alone writes it and all ranks read it.
    init_timeout, timeout
        Seconds (or timedeltas) for the rendezvous and for any later collective
        (:func:`init_process_group`).
    info
        Extra entries for every model's ``info`` (e.g. where the data came from), set before saving.

    Returns
    -------
    Mechanics or MechanicsEnsemble
        The same on every rank, on the rank's device.

    Raises
    ------
    DistributedSetupError
        Before training, on every rank: missing rendezvous variables, more ranks than GPUs, a
        number of seeds that ``WORLD_SIZE`` does not divide, an existing ``out``.
    DistributedTrainingError
        On every rank when training failed on one of them (nothing is written).

    Examples
    --------
    >>> ens = fit(snaps, [0.0, 1.0, 2.0], random_state=[0, 1], n_iter=2, hidden=8, heads=1, blocks=1,
    ...           ffn=8, progress=False)
    >>> [m.info["seed"] for m in ens]
    [0, 1]
    """
    cfg = WLMConfig.from_kwargs(**config)
    snaps, source = _api._snapshots(snapshots, times, velocities)
    check_dtype_range(snaps, cfg.dtype)
    seeds, single = _seeds(random_state, None)
    frictions = [_api._parse_friction(f) for f in _api._broadcast(friction, len(seeds), "friction")]
    tasks = [Task(snaps, seed, fr) for seed, fr in zip(seeds, frictions)]
    return _run(tasks, [snaps] * len(tasks), cfg, n_iter=n_iter, device=device, mode=mode, single=single, out=out,
                resume=resume, init_timeout=init_timeout, timeout=timeout, info=info,
                sources=[source] * len(tasks))


def fit_many(
    datasets: Sequence[Any],
    *,
    mode: str = "ensemble",
    random_state: int | Sequence[int] = 0,
    friction: str | float | Sequence[Any] = "learnable",
    n_iter: int = 2000,
    device: str = "auto",
    out: str | os.PathLike | None = None,
    resume: str | None = None,
    init_timeout: float | datetime.timedelta | None = None,
    timeout: float | datetime.timedelta | None = None,
    info: dict | None = None,
    **config: Any,
) -> MechanicsEnsemble:
    """:func:`scwlm.fit_many` on all ranks: in ensemble mode, the data sets are split across ranks.

    One model per data set (e.g. one per leave-one-out holdout); the other arguments are those of
    :func:`fit`. Model ``i`` equals ``scwlm.fit_many(datasets, ...)[i]`` under the condition stated
    in the module docstring (the data sets agree on the number of particles per iteration).

    Examples
    --------
    >>> ens = fit_many([(snaps[:2], [0, 1]), (snaps, [0, 1, 2])], n_iter=2, hidden=8, heads=1, blocks=1,
    ...                ffn=8, progress=False)
    >>> [m.info["train_times"] for m in ens]
    [[0.0, 1.0], [0.0, 1.0, 2.0]]
    """
    cfg = WLMConfig.from_kwargs(**config)
    snaps_list, sources = _api._datasets(datasets, cfg.dtype)
    n = len(snaps_list)
    seeds, _ = _seeds(_api._broadcast(random_state, n, "random_state"), n)
    frictions = [_api._parse_friction(f) for f in _api._broadcast(friction, n, "friction")]
    tasks = [Task(s, seed, fr) for s, seed, fr in zip(snaps_list, seeds, frictions)]
    return _run(tasks, snaps_list, cfg, n_iter=n_iter, device=device, mode=mode, single=False, out=out,
                resume=resume, init_timeout=init_timeout, timeout=timeout, info=info, sources=sources)
