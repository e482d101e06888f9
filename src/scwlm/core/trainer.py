r"""The training loop of WLM (Algorithm 1 of the paper), for one model or a batched ensemble.

Each iteration, for every model :math:`e` of the ensemble:

1. draw a horizon :math:`K_e \sim \mathcal U\{1, \dots, K_{\max}\}` (optionally ramped up);
2. take the first snapshot (a random subset of ``particles_per_batch`` points, with the matching
   velocity rows) and roll the mechanics out to :math:`t_{K_e}` with the damped leapfrog;
3. loss :math:`= \frac1{K_e}\sum_{k \le K_e} S_\varepsilon(\hat X_k, X_k)` (targets subsampled to the
   same size);
4. backpropagate through the discretised rollout; AdamW on the network (and, when learnable, on
   :math:`\log\gamma` with its own learning rate);
5. update the EMA of the network weights.

The pieces: :class:`TrainingData` (device copies of the snapshots and each model's integration
schedule), :class:`RolloutLoss` (lines 1-3), :class:`TrainingState` (networks, friction,
optimiser, EMA, generators, history: lines 4-5, and save/load of a resumable checkpoint) and
:class:`Monitor` (progress, deferred host reads of the loss, divergence detection). :func:`train`
wires them together.

All models share one rollout (the largest horizon) and one batched Sinkhorn call; their losses
are summed, so each model receives exactly the gradient it would receive alone. Every model has
its own time step (inferred from its own training times) and every source of randomness of model
:math:`e` (initialisation, horizons, subsets, dropout) comes from generators seeded with that
model's seed, so an ensemble member equals the model fitted alone with the same seed whenever the
ensemble's members agree on the number of particles per iteration.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import types
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from .attention import WeightsPool
from .compile import compiled_forces
from .config import WLMConfig
from .divergence import SinkhornDivergence, blur_heuristic, point_cloud_diameter
from .friction import Friction
from .integrate import leapfrog
from .potential import DropoutMasks, SetPotential, quadratic_forces
from .snapshots import Snapshots

__all__ = [
    "Task", "TrainResult", "TrainingDivergedError", "train", "integration_schedule", "infer_dt", "grid_step",
    "TrainingData", "RolloutLoss", "TrainingState", "Monitor", "MAX_TRAINING_STEPS", "compiles_training_force",
    "mean_rollout_steps", "step_indices", "training_batch",
]

_CHECKPOINT_FORMAT = 1

#: the most integrator steps one training rollout may take (every step stays in the autograd graph)
MAX_TRAINING_STEPS = 2000


class TrainingDivergedError(FloatingPointError):
    """Training met a non-finite loss or gradient.

    Attributes
    ----------
    iteration
        The iteration at which the non-finite value appeared.
    result
        The :class:`~scwlm.core.trainer.TrainResult` holding the last good weights (before that
        iteration).
    mechanics
        Set by :func:`scwlm.fit` / :func:`scwlm.fit_many`: the model(s) with those last good weights.
    """

    def __init__(self, message: str, iteration: int, result: "TrainResult") -> None:
        super().__init__(message)
        self.iteration = iteration
        self.result = result


@dataclass
class Task:
    """One model to train: its training snapshots, seed and friction (``None`` = learnable)."""

    snapshots: Snapshots
    seed: int = 0
    friction: float | None = None


@dataclass
class TrainResult:
    """What :func:`train` returns: networks, friction, history and the integration settings.

    ``info["dt"]`` and ``info["step"]`` hold one value per model (each model's time grid).
    """

    network: SetPotential
    ema: dict[str, Tensor] | None
    friction: Friction
    history: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def evaluation_network(self) -> SetPotential:
        """The network with EMA weights when EMA is on (what evaluation uses), else the live one."""
        if self.ema is None:
            return self.network
        net = copy.deepcopy(self.network)
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(self.ema[name])
        return net


# ---------------------------------------------------------------------------- time grid
def infer_dt(times_list: Sequence[Tensor]) -> float:
    """Default time-grid step: the smallest gap between consecutive training times."""
    gaps = [float(g) for t in times_list for g in torch.diff(t)]
    return min(gaps)


def grid_step(task: "Task", cfg: WLMConfig) -> float:
    """The time-grid step ``dt`` of one task: ``config.dt``, else its smallest gap between training times."""
    return float(cfg.dt) if cfg.dt is not None else infer_dt([task.snapshots.times])


def integration_schedule(times: Tensor, h: float) -> tuple[list[float], list[int]]:
    """Step sizes and the step index of every snapshot for nominal step ``h``.

    Each gap ``g`` between consecutive times is split into ``n = round(g / h)`` equal steps when
    ``g`` is a whole multiple of ``h`` and ``ceil(g / h)`` otherwise, so every observed time is hit
    exactly.

    Examples
    --------
    >>> import torch
    >>> integration_schedule(torch.tensor([0.0, 1.0, 3.0]), 1.0)
    ([1.0, 1.0, 1.0], [0, 1, 3])
    """
    steps: list[float] = []
    index = [0]
    for g in torch.diff(times.to(torch.float64)).tolist():
        r = g / h
        n = int(round(r)) if abs(r - round(r)) <= 1e-6 * max(1.0, r) else int(math.ceil(r))
        n = max(n, 1)
        steps.extend([g / n] * n)
        index.append(index[-1] + n)
    return steps, index


def _count_steps(times: Tensor, h: float) -> int:
    """Number of integrator steps :func:`integration_schedule` would make (without building it)."""
    gaps = torch.diff(times.to(torch.float64)) / h
    return int(torch.clamp(torch.ceil(gaps - 1e-6 * torch.clamp(gaps, min=1.0)), min=1).sum())


def mean_rollout_steps(index: Sequence[int], cfg: WLMConfig) -> float:
    """Mean integrator steps of a training rollout from the first snapshot, over the horizons it draws.

    ``index`` is the step index of every training snapshot (:func:`integration_schedule`). The
    horizon is uniform on 1..K_max (K_max capped by ``horizon``), or K_max with ``fixed_horizon``;
    a horizon ramp only shortens the first rollouts and is not counted. This sizes
    ``particles_per_batch="auto"`` (:meth:`WLMConfig.batch_size`).

    Examples
    --------
    >>> from scwlm import WLMConfig
    >>> mean_rollout_steps([0, 1, 2, 3], WLMConfig()), mean_rollout_steps([0, 2, 4], WLMConfig(fixed_horizon=True))
    (2.0, 4.0)
    """
    kmax = len(index) - 1
    if cfg.horizon is not None:
        kmax = min(kmax, cfg.horizon)
    if kmax < 1:
        return 0.0
    if cfg.fixed_horizon:
        return float(index[kmax] - index[0])
    return float(np.mean([index[k] - index[0] for k in range(1, kmax + 1)]))


def step_indices(tasks: Sequence["Task"], cfg: WLMConfig) -> list[list[int]]:
    """The step index of every training snapshot of every task (``TrainingData.index``, without the data)."""
    return [integration_schedule(t.snapshots.times, grid_step(t, cfg) / cfg.substeps)[1] for t in tasks]


def training_batch(cfg: WLMConfig, indices: Sequence[Sequence[int]], device: torch.device | str) -> int | None:
    """Particles per snapshot and iteration of :func:`train` (one number for all models).

    :meth:`WLMConfig.batch_size` for the longest mean training rollout (:func:`mean_rollout_steps`)
    of the models whose snapshots' step indices are ``indices`` (``TrainingData.index`` or
    :func:`step_indices`), so that every member of an ensemble draws the same number.
    """
    return cfg.batch_size(device, max(mean_rollout_steps(i, cfg) for i in indices))


class TrainingData:
    """Device copies of every task's training snapshots and velocities, and its integration schedule.

    Model ``e`` integrates with nominal step ``h[e] = dt[e] / substeps``, where ``dt[e]`` is
    ``config.dt`` or, by default, the smallest gap between the training times of task ``e``.
    """

    def __init__(self, tasks: Sequence[Task], cfg: WLMConfig, device: torch.device, dtype: torch.dtype) -> None:
        self.dt = [grid_step(t, cfg) for t in tasks]
        self.h = [dt / cfg.substeps for dt in self.dt]
        for e, (t, h) in enumerate(zip(tasks, self.h)):
            n = _count_steps(t.snapshots.times, h)
            if n > MAX_TRAINING_STEPS:
                times = t.snapshots.times
                raise ValueError(
                    f"training times {float(times[0]):g}..{float(times[-1]):g} with dt={self.dt[e]:g} and "
                    f"substeps={cfg.substeps} imply {n} integrator steps per rollout (at most {MAX_TRAINING_STEPS}; "
                    "every step stays in the autograd graph): pass a larger dt (by default it is the smallest "
                    "gap between training times), fewer substeps, or rescale the times"
                )
        self.points = [[p.to(device, dtype) for p in t.snapshots.points] for t in tasks]
        self.velocities = [[None if v is None else v.to(device, dtype) for v in t.snapshots.velocities] for t in tasks]
        self.times = [[float(x) for x in t.snapshots.times] for t in tasks]
        # where training rollouts may start: the first snapshot, and with anchor="observed" every
        # other training snapshot with velocities (not the last: nothing follows it)
        self.starts = [
            [0] + ([j for j in range(1, len(t.snapshots) - 1) if t.snapshots.velocities[j] is not None]
                   if cfg.anchor == "observed" else [])
            for t in tasks
        ]
        sched = [integration_schedule(t.snapshots.times, h) for t, h in zip(tasks, self.h)]
        self.steps = [s for s, _ in sched]
        self.index = [i for _, i in sched]
        self.n_intervals = [len(t.snapshots) - 1 for t in tasks]


def _fingerprint(tasks: Sequence[Task]) -> str:
    h = hashlib.sha256()
    for task in tasks:
        s = task.snapshots
        h.update(np.asarray(s.times, dtype=np.float64).tobytes())
        for p, v in zip(s.points, s.velocities):
            h.update(p.numpy().tobytes())
            if v is not None:
                h.update(v.numpy().tobytes())
        h.update(repr((task.seed, task.friction)).encode())
    return h.hexdigest()


def _device_generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((int(seed) * 2654435761 + 97) % (2**63))
    return g


def saved_tensor_bytes(fn: Callable[[], Tensor], exclude: Sequence[Tensor] = ()) -> tuple[Tensor, int]:
    """``fn()`` and the bytes autograd saved for its backward pass (distinct storages, measured).

    Every tensor the graph of ``fn()`` keeps for the backward pass goes through a
    :func:`torch.autograd.graph.saved_tensors_hooks` pack hook; the sizes of their distinct
    storages are summed, except the storages of ``exclude`` (the parameters, which live anyway).

    Examples
    --------
    >>> w = torch.ones(3, requires_grad=True)
    >>> x = torch.ones(1000)
    >>> out, n = saved_tensor_bytes(lambda: (x[:, None] * w).exp().sum(), exclude=[w])
    >>> n  # x (4 kB) for the product's gradient and exp's output (12 kB)
    16000
    """
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    return out, sum(b for ptr, b in seen.items() if ptr not in skip)


class LinearForces(torch.nn.Module):
    r"""Linear one-body forces :math:`a(x) = -(A x + b)`, :math:`A` symmetric, one per model.

    The force of the warm start (``warm_start`` iterations): the best damped linear mechanics is
    fitted first, then handed to the network's quadratic term and to the friction. It has the
    interface :class:`RolloutLoss` needs of a potential (``forces``, ``dropout``).
    """

    dropout = 0.0

    def __init__(self, n_models: int, dim: int, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.quad_w = torch.nn.Parameter(torch.zeros(n_models, dim, dim, dtype=dtype, device=device))
        self.quad_b = torch.nn.Parameter(torch.zeros(n_models, dim, dtype=dtype, device=device))

    def forces(self, x: Tensor, t: Tensor | None = None, *, masks=None, create_graph: bool = True, impl: str = "autograd",
               precision: str = "float32", keep_weights: bool | WeightsPool = False) -> Tensor:
        return quadratic_forces(x, self.quad_w, self.quad_b)


class _LinearFit(NamedTuple):
    """One fit of the warm start: the linear model, the friction, the losses, the generator states."""

    quad_w: Tensor
    quad_b: Tensor
    log_gamma: Tensor
    free_flight: Tensor
    loss: Tensor
    rng_begin: tuple[list[list[torch.Generator]], list[list[Tensor]]]
    rng_end: tuple[list[list[torch.Generator]], list[list[Tensor]]]


def _set_rng_states(saved: tuple[list[list[torch.Generator]], list[list[Tensor]]], model: int | None = None) -> None:
    """Put generators back into saved states: all models' (``model=None``) or one model's."""
    for gens, states in zip(*saved):
        for e, (g, st) in enumerate(zip(gens, states)):
            if model is None or e == model:
                g.set_state(st)


#: learning rate of the warm start's linear model and friction (few parameters; cosine-decayed)
WARM_START_LR = 0.2
#: a model starts from its warm start when the linear fit's loss is below this fraction of free
#: flight's (measured ratios: harmonic well 1.5e-5, damped oscillator 1e-6 -- linear systems; big
#: vortex 0.033, EB 0.52, small vortex 0.65, where starting from the linear fit made W1 worse)
WARM_START_ACCEPT = 0.01
#: after WARM_START_PROBE_AT iterations (or a quarter of them) the warm start stops, and is
#: discarded, when the mean of its last 10 losses is above WARM_START_PROBE of free flight's for
#: every model (measured at 50: damped oscillator 0.016, Boids above 1), so data that linear
#: mechanics cannot explain pay for 50 iterations, not 600
WARM_START_PROBE, WARM_START_PROBE_AT = 0.1, 50
#: loss draws averaged for the warm start's acceptance test
WARM_START_EVAL_CALLS = 8
_PAST_RAMP = 2**62


# ---------------------------------------------------------------------------- Algorithm 1, lines 1-3
class RolloutLoss:
    """The loss of one iteration of Algorithm 1 for every model: lines 1-3.

    ``loss(it)`` samples each model's horizon and particle subset, rolls the first snapshot out
    with the current network and friction, and returns the ``(E,)`` mean Sinkhorn divergences
    to the observed snapshots (one batched call for all models and times).
    """

    def __init__(
        self,
        cfg: WLMConfig,
        network: SetPotential,
        friction: Friction,
        data: TrainingData,
        divergence: SinkhornDivergence,
        *,
        generators: Sequence[torch.Generator],
        device_generators: Sequence[torch.Generator],
        blurs: Sequence[float],
        diameters: Sequence[float],
        subset_generators: Sequence[torch.Generator] | None = None,
        compile_force: bool = False,
        ramps: Sequence[int] | None = None,
    ) -> None:
        self.cfg, self.net, self.friction, self.data, self.divergence = cfg, network, friction, data, divergence
        #: iterations over which each model's largest horizon grows (``horizon_ramp``; "auto" is
        #: resolved by ``train`` for the main fit, per model, and means no ramp elsewhere)
        fixed = cfg.horizon_ramp if cfg.horizon_ramp != "auto" else 0
        self.ramps = list(ramps) if ramps is not None else [fixed] * len(generators)
        #: the compiled analytic training force (:mod:`scwlm.core.compile`), or None: eager
        self.compiled = compiled_forces(network, "analytic", precision=cfg.precision) if compile_force else None
        self.gens, self.dev_gens = list(generators), list(device_generators)
        self.subset_gens = None if subset_generators is None else list(subset_generators)
        self.batch = training_batch(cfg, data.index, next(network.parameters()).device)
        self.E = len(self.gens)
        self.blurs, self.diameters = list(blurs), list(diameters)
        p0 = next(network.parameters())
        self.device, self.dtype = p0.device, p0.dtype
        #: bytes autograd keeps per force evaluation (all models), measured once per particle count
        self.step_bytes: dict[int, int] = {}
        #: the same with the attention weights kept (``keep_attention_weights``), measured likewise
        self.kept_step_bytes: dict[int, int] = {}
        #: buffers of the kept attention weights, reused from one iteration to the next (eager force)
        self.weights_pool = WeightsPool()
        self.memory_budget = cfg.memory_budget(self.device)

    def horizon_cap(self, it: int, e: int, start: int = 0) -> int:
        """Largest horizon model ``e`` may draw at iteration ``it`` from snapshot ``start``."""
        kmax = self.data.n_intervals[e] - start
        if self.cfg.horizon is not None:
            kmax = min(kmax, self.cfg.horizon)
        if self.ramps[e]:
            kmax = max(1, int(math.ceil(kmax * min(1.0, (it + 1) / self.ramps[e]))))
        return kmax

    def __call__(self, it: int) -> Tensor:
        cfg, data, E = self.cfg, self.data, self.E
        # the anchor of every model's rollout: the first snapshot (Algorithm 1) or, with
        # anchor="observed", a random training snapshot with velocities
        J = [
            0 if len(data.starts[e]) == 1
            else data.starts[e][int(torch.randint(len(data.starts[e]), (1,), generator=self.gens[e]))]
            for e in range(E)
        ]
        # line 1: a horizon per model
        if cfg.fixed_horizon:
            K = [self.horizon_cap(it, e, J[e]) for e in range(E)]
        else:
            K = [int(torch.randint(1, self.horizon_cap(it, e, J[e]) + 1, (1,), generator=self.gens[e])) for e in range(E)]
        # line 2: the start (a minibatch of the anchor snapshot) and the targets of the same size
        n = int(min(
            min([self.batch or math.inf] + [data.points[e][J[e] + k].shape[0] for k in range(K[e] + 1)])
            for e in range(E)
        ))
        x0, v0, targets = [], [], []
        for e in range(E):
            pts0 = data.points[e][J[e]]
            idx = self._subset(e, pts0.shape[0], n)
            x0.append(pts0 if idx is None else pts0[idx])
            v = data.velocities[e][J[e]]
            v0.append(torch.zeros_like(x0[-1]) if v is None else (v if idx is None else v[idx]))
            for k in range(1, K[e] + 1):
                y = data.points[e][J[e] + k]
                idx = self._subset(e, y.shape[0], n)
                targets.append(y if idx is None else y[idx])
        # ... rolled out to t_K with each model's own steps (models past their horizon keep
        # stepping with their last step size; those positions are not used)
        first = [data.index[e][J[e]] for e in range(E)]  # step count of the anchor
        n_steps = [data.index[e][J[e] + K[e]] - first[e] for e in range(E)]
        S = max(n_steps)
        steps = torch.tensor(
            [[data.steps[e][min(first[e] + s, len(data.steps[e]) - 1)] for e in range(E)] for s in range(S)],
            dtype=self.dtype, device=self.device,
        )
        at_k = [[data.index[e][J[e] + k] - first[e] for k in range(1, K[e] + 1)] for e in range(E)]
        record = sorted({s for e in range(E) for s in at_k[e]})
        t0 = torch.tensor([data.times[e][J[e]] for e in range(E)], dtype=self.dtype, device=self.device)
        positions = leapfrog(
            self.force_fn(n, n_steps, S), torch.stack(x0), torch.stack(v0), steps=steps, gamma=self.friction(), t0=t0,
            scheme=cfg.integrator, record=record,
        ).positions
        # line 3: mean over k <= K_e of the Sinkhorn divergences, all in one batched call
        at = dict(zip(record, positions))
        preds = torch.stack([at[s][e] for e in range(E) for s in at_k[e]])
        owners = [e for e in range(E) for _ in range(K[e])]
        div = self.divergence(
            preds, torch.stack(targets), blur=[self.blurs[e] for e in owners], diameter=[self.diameters[e] for e in owners]
        )
        owner = torch.tensor(owners, device=self.device)
        sums = torch.zeros(E, dtype=div.dtype, device=self.device).index_add(0, owner, div)
        return sums / torch.tensor(K, dtype=div.dtype, device=self.device)

    def _subset(self, e: int, size: int, n: int) -> Tensor | None:
        """Rows of a random subset of ``n`` of ``size`` points for model ``e`` (``None``: all of them).

        With ``subset_generators`` (data-parallel ranks other than the first) the model's own
        generator still advances exactly as without them, so every rank draws the same horizons,
        while the rows come from the rank's own stream.
        """
        if n >= size:
            return None
        idx = torch.randperm(size, generator=self.gens[e])[:n]
        if self.subset_gens is not None:
            idx = torch.randperm(size, generator=self.subset_gens[e])[:n]
        return idx.to(self.device)

    def checkpointed(self, n: int, S: int) -> bool:
        """Whether the force evaluations of a rollout of ``S`` evaluations of ``n`` particles per model are checkpointed.

        ``checkpoint_steps="auto"``: when the graphs of all ``S`` evaluations, at the bytes
        measured for this ``n`` (:attr:`step_bytes`), fit in ``memory_budget_gb``, none is
        checkpointed; otherwise every one is recomputed in the backward pass. All or nothing:
        storing only some of them buys time in proportion to the share stored, while the resident
        memory grows by two to three times their graphs on a CPU (measured on Boids k = 49: 12 of 49
        stored, 52 s/iter and 9.7 GB; none stored, 48 s/iter and 3.8 GB). ``True`` / ``False``:
        every / no evaluation.
        """
        mode = self.cfg.checkpoint_steps
        if mode != "auto":
            return bool(mode)
        return S * self.step_bytes[n] > self.memory_budget

    def keeps_weights(self, n: int, S: int) -> bool:
        """Whether the force evaluations of such a rollout keep their attention weights for the backward pass.

        ``keep_attention_weights="auto"``: in checkpointed evaluations (the backward pass holds
        one evaluation's graph at a time), and elsewhere when the graphs of all ``S`` evaluations
        with the weights, at the bytes measured for this ``n`` (:attr:`kept_step_bytes`), fit in
        ``memory_budget_gb``. Either way the force is the same to the bit (see
        :mod:`scwlm.core.attention`). ``True`` / ``False``: always / never. A compiled force
        (``compile_force``, small sets) always recomputes them: kept, they made no difference there
        (``python -m benchmarks.kept_weights --compiled``, 102 and 111 particles: 0.123 against 0.123
        s and 0.201 against 0.204 s per rollout; eagerly, at 1,000 particles, 3.671 against 4.180 s).
        """
        if self.compiled is not None and not self.checkpointed(n, S):
            return False  # the compiled graph (checkpointed evaluations run eagerly)
        mode = self.cfg.keep_attention_weights
        if mode != "auto":
            return bool(mode)
        return self.checkpointed(n, S) or S * self.kept_step_bytes[n] <= self.memory_budget

    def force_fn(self, n: int, n_steps: list[int], S: int) -> Callable[[Tensor, Tensor], Tensor]:
        """The force of the rollout: dropout masks per model, detaching, step checkpointing."""
        cfg, net = self.cfg, self.net
        dropout = net.dropout > 0
        counter = [0]

        def masks_now() -> DropoutMasks | None:
            s = counter[0]
            counter[0] += 1
            if not dropout:
                return None
            # model e draws its masks from its own generator, and only within its own horizon
            # (beyond it, its positions are unused): an ensemble member sees the masks it would
            # see when fitted alone
            return net.sample_masks(n, self.dev_gens, self.device, self.dtype, active=[s < k for k in n_steps])

        def eager(x, t, masks, keep=False):
            impl = "analytic" if self.compiled is not None else cfg.force_impl  # the same formula as compiled
            return net.forces(x, t, masks=masks, create_graph=True, impl=impl, precision=cfg.precision, keep_weights=keep)

        def raw(x, t, masks, keep):
            if self.compiled is not None:  # the compiled graph recomputes the weights (no faster when kept)
                return self.compiled(x, t, masks=masks, create_graph=True)
            return eager(x, t, masks, self.weights_pool if keep else False)

        def measured(xin, t, masks, keep):
            return saved_tensor_bytes(lambda: eager(xin, t, masks, keep), exclude=list(net.parameters()))[1]

        def force(x: Tensor, t: Tensor) -> Tensor:
            masks = masks_now()
            xin = x.detach() if cfg.rollout_grad == "detached" else x
            if not torch.is_grad_enabled():  # nothing is kept for a backward pass (eager: no second compilation)
                return eager(xin, t, masks)
            if n not in self.step_bytes and "auto" in (cfg.checkpoint_steps, cfg.keep_attention_weights):
                # measured once per size, on evaluations whose graphs are dropped at once (the
                # same inputs and masks: nothing else changes; eagerly, as the saved-tensor hooks
                # that count the bytes are not traced by torch.compile)
                self.step_bytes[n] = measured(xin, t, masks, False)
                if cfg.keep_attention_weights == "auto" and self.compiled is None:  # (a compiled force never reads it)
                    self.kept_step_bytes[n] = measured(xin, t, masks, True)
            keep = self.keeps_weights(n, S)
            if self.checkpointed(n, S):
                from torch.utils.checkpoint import checkpoint

                # eagerly: the recomputation stops early by raising inside the function, which a
                # compiled graph cannot do
                return checkpoint(eager, xin, t, masks, self.weights_pool if keep else False, use_reentrant=False)
            return raw(xin, t, masks, keep)

        return force


def compiles_training_force(cfg: WLMConfig, tasks: Sequence[Task], n_iter: int, device: torch.device | str) -> bool:
    """Whether :func:`train` of ``tasks`` for ``n_iter`` iterations compiles its force (:meth:`WLMConfig.compiles`).

    The sets a training force sees are minibatches, or whole snapshots where they are smaller:
    the rule is applied to the largest of them.
    """
    largest = max(int(pts.shape[0]) for t in tasks for pts in t.snapshots.points)
    batch = training_batch(cfg, step_indices(tasks, cfg), device)
    return cfg.compiles(min(largest, batch or largest), len(tasks), n_iter, device)


# ---------------------------------------------------------------------------- Algorithm 1, lines 4-5
def lr_factor(cfg: WLMConfig, it: int, n_iter: int) -> float:
    """Multiplier of the learning rates at iteration ``it``: linear warm-up, then constant or cosine.

    Examples
    --------
    >>> cfg = WLMConfig(lr_schedule="cosine", lr_warmup=10)
    >>> [round(lr_factor(cfg, i, 110), 3) for i in (0, 9, 10, 109)]
    [0.1, 1.0, 1.0, 0.05]
    """
    if it < cfg.lr_warmup:
        return (it + 1) / cfg.lr_warmup
    if cfg.lr_schedule == "constant":
        return 1.0
    span = max(1, n_iter - cfg.lr_warmup - 1)
    return _cosine_factor(min(1.0, (it - cfg.lr_warmup) / span))


def _cosine_factor(progress: float) -> float:
    """Cosine decay from 1 at ``progress`` 0 to 5 % at ``progress`` 1."""
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


class TrainingState:
    """Everything a training run updates: network, friction, AdamW, EMA, generators, history.

    It takes the optimiser step of line 4 and the EMA update of line 5, keeps a copy of the last
    good weights for divergence recovery, and saves / loads itself as a resumable checkpoint.
    """

    def __init__(self, tasks: Sequence[Task], cfg: WLMConfig, d: int, device: torch.device, dtype: torch.dtype,
                 n_iter: int) -> None:
        self.cfg, self.E = cfg, len(tasks)
        self.generators = [torch.Generator().manual_seed(int(t.seed)) for t in tasks]
        self.device_generators = [_device_generator(device, t.seed) for t in tasks]
        with torch.random.fork_rng(devices=[]):
            prev = torch.get_default_dtype()
            torch.set_default_dtype(dtype)
            try:
                self.network = SetPotential(
                    d, hidden=cfg.hidden, heads=cfg.heads, blocks=cfg.blocks, ffn=cfg.ffn, dropout=cfg.dropout,
                    time_features=cfg.time_features, quadratic=cfg.quadratic, n_models=self.E, generators=self.generators,
                ).to(device)
                steps = [grid_step(t, cfg) for t in tasks]
                self.friction = Friction(
                    [cfg.initial_friction(h) if t.friction is None else t.friction for t, h in zip(tasks, steps)],
                    [t.friction is None for t in tasks],
                ).to(device)
                #: the learnable frictions the warm start is fitted from, per model (a fixed friction: ``None``)
                self.friction_starts = [cfg.friction_starts(h) if t.friction is None else None
                                        for t, h in zip(tasks, steps)]
            finally:
                torch.set_default_dtype(prev)
        if cfg.zero_init_head:  # no force before training: damped free flight
            with torch.no_grad():
                self.network.head_w.zero_()
        groups: list[dict[str, Any]] = [
            {"params": list(self.network.parameters()), "lr": cfg.lr, "weight_decay": cfg.weight_decay}
        ]
        if self.friction.any_learnable:
            groups.append({"params": [self.friction.log_gamma], "lr": cfg.friction_lr, "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(groups)
        self.base_lrs = [g["lr"] for g in groups]
        self.n_iter = n_iter
        self.ema = {k: p.detach().clone() for k, p in self.network.named_parameters()} if cfg.ema else None
        self.history: dict[str, list] = {"loss": [], "friction": []}
        self.iteration = 0
        self._good = self._copy()

    def warm_start(self, make_loss: Callable[[Any], "RolloutLoss"], n_iter: int,
                   reduce_gradients: Callable[[Any], None] | None = None) -> dict[str, list]:
        r"""Fit damped linear mechanics for ``n_iter`` iterations; start each model there if it explains the data.

        The linear model's :math:`A, b` become the network's quadratic term (when it has one; the
        output layer is then zeroed, so the network starts exactly as the linear fit) and its
        friction the initial friction -- for each model whose linear fit brings the training
        loss below :data:`WARM_START_ACCEPT` (1 %) of the loss of the model it would replace (damped
        free flight at the initial friction). A model the linear mechanics do not explain (a
        vortex's differential rotation: the best linear fit there is to stop the particles with a
        large friction) starts as configured. The network's attention part is untouched; the
        optimiser state of the main fit starts fresh. ``reduce_gradients`` (data parallelism)
        averages the linear model's gradients and the acceptance losses over the ranks, so every
        rank takes the same decision.

        The fit is not convex in a learnable friction: on the harmonic well (``dt`` 0.4) it ends at
        :math:`\gamma` 0.025 (loss 4e-3) from :math:`\gamma_0 = 1/dt = 2.5` and at 0.29 (2.6e-5)
        from 1. So with ``friction_init="auto"`` it runs from :math:`1/dt` and from 1, on the same
        random draws. Each model keeps, of the starts whose fit is accepted, the one with the lower
        loss; a model with no accepted fit starts from the larger of the two frictions, the more
        damped start (the learned friction moves slowly from where it starts; measured on the
        dentate gyrus, :math:`dt = 2.3`, and the gradient-flow SDEs, :math:`dt = 0.01`, the larger
        start is the better one). Either way it keeps the state of its generators after that
        start's fit: a model continues exactly as if it had been fitted from that start alone.
        Where :math:`1/dt = 1` there is one start.

        Returns
        -------
        dict
            ``free_flight_loss``, ``linear_loss``, ``accepted`` and ``friction_start`` (the
            initial friction of the fit each model kept), one entry per model.
        """
        theta0 = self.friction.log_gamma.detach().clone()  # where a model without an accepted fit starts
        learnable = self.friction.learnable.to(theta0.device)
        per_model = [st or (1.0,) for st in self.friction_starts]  # a fixed friction: a placeholder, never used
        starts = []  # the k-th start of every model (its last one where it has fewer)
        for k in range(max(map(len, per_model))):
            log_k = [math.log(st[min(k, len(st) - 1)]) for st in per_model]
            starts.append(torch.where(learnable, torch.tensor(log_k, dtype=theta0.dtype, device=theta0.device), theta0))
        fits: list[_LinearFit] = []
        for k, theta in enumerate(starts):
            with torch.no_grad():
                self.friction.log_gamma.copy_(theta)
            fits.append(self._fit_linear(make_loss, n_iter, reduce_gradients, restore=fits[0].rng_begin[1] if k else None))
        rows = torch.arange(self.E)
        losses = torch.stack([f.loss for f in fits])  # (starts, E)
        free = torch.stack([f.free_flight for f in fits])  # the loss of what a rejected model starts as
        ok = torch.isfinite(losses) & (losses < WARM_START_ACCEPT * free)
        accept = ok.any(dim=0)
        lowest = torch.argmin(torch.where(ok, losses, math.inf), dim=0)  # ties: the first start
        # a model without an accepted fit keeps the start it was configured at (WLMConfig.initial_friction: for
        # "auto" the more damped one), with that start's generator state
        configured = torch.argmax((torch.stack(starts) == theta0).to(torch.int8).cpu(), dim=0)  # ties: the first
        best = torch.where(accept, lowest, configured)
        fitted, free_flight = losses[best, rows], free[best, rows]
        for e, k in enumerate(best.tolist()):
            _set_rng_states(fits[k].rng_end, e)
        dev = theta0.device
        start = torch.stack(starts)[best.to(dev), rows.to(dev)]
        with torch.no_grad():
            keep = accept.to(dev)
            fit_gamma = torch.stack([f.log_gamma for f in fits])[best.to(dev), rows.to(dev)]
            self.friction.log_gamma.copy_(torch.where(keep, fit_gamma, start))
            if getattr(self.network, "quadratic", False):  # the accepted models start *as* the linear fit:
                quad_w = torch.stack([f.quad_w for f in fits])[best.to(dev), rows.to(dev)]  # its one-body term,
                quad_b = torch.stack([f.quad_b for f in fits])[best.to(dev), rows.to(dev)]  # no attention force yet
                self.network.quad_w.copy_(torch.where(keep[:, None, None], quad_w, self.network.quad_w))
                self.network.quad_b.copy_(torch.where(keep[:, None], quad_b, self.network.quad_b))
                self.network.head_w.masked_fill_(keep[:, None, None], 0.0)
            self.friction.log_gamma.grad = None
        self.ema = {k: p.detach().clone() for k, p in self.network.named_parameters()} if self.cfg.ema else None
        self.mark_good()
        first = torch.where(self.friction.learnable.to(dev), start.exp(), self.friction.fixed.to(dev))
        return {"free_flight_loss": free_flight.tolist(), "linear_loss": fitted.tolist(), "accepted": accept.tolist(),
                "friction_start": first.tolist()}

    def _fit_linear(self, make_loss: Callable[[Any], "RolloutLoss"], n_iter: int,
                    reduce_gradients: Callable[[Any], None] | None,
                    restore: list[list[Any]] | None = None) -> "_LinearFit":
        """One fit of the warm start from the current friction; ``restore``: generator states to begin from."""
        E, d = self.E, self.network.dim
        p0 = next(self.network.parameters())
        linear = LinearForces(E, d, p0.dtype, p0.device)
        params = [linear.quad_w, linear.quad_b] + ([self.friction.log_gamma] if self.friction.any_learnable else [])
        opt = torch.optim.Adam(params, lr=WARM_START_LR)
        loss = make_loss(linear)
        rngs = [loss.gens, loss.dev_gens] + ([loss.subset_gens] if loss.subset_gens is not None else [])
        if restore is not None:  # the same draws as the first start's fit
            _set_rng_states((rngs, restore))
            loss.divergence.reset_warm_start()
        begin = [[g.get_state() for g in gens] for gens in rngs]
        # zero force: what the network starts as (computed for every start, as a fit from that start alone
        # would: its draws keep the random streams identical)
        free_flight = self._mean_loss(loss, reduce_gradients)
        recent: list[Tensor] = []
        for it in range(n_iter):
            if it == min(n_iter // 4, WARM_START_PROBE_AT) and it >= 10:  # far from explaining the data by now:
                probe = self._rank_mean(torch.stack(recent[-10:]).mean(0), reduce_gradients)  # give up
                if bool((probe > WARM_START_PROBE * free_flight).all()):
                    break
            for g in opt.param_groups:  # cosine decay to 5 %: the few parameters settle instead of jittering
                g["lr"] = WARM_START_LR * _cosine_factor(it / max(1, n_iter - 1))
            opt.zero_grad(set_to_none=True)
            losses = loss(it)
            losses.sum().backward()
            if reduce_gradients is not None:
                reduce_gradients(types.SimpleNamespace(network=linear, friction=self.friction))
            recent.append(losses.detach())
            ok = torch.isfinite(losses).all() & all(torch.isfinite(q.grad).all() for q in params if q.grad is not None)
            if not bool(ok):  # keep what was reached
                break
            opt.step()
        fitted = self._mean_loss(loss, reduce_gradients)
        return _LinearFit(linear.quad_w.detach(), linear.quad_b.detach(), self.friction.log_gamma.detach().clone(),
                          free_flight, fitted, (rngs, begin), (rngs, [[g.get_state() for g in gens] for gens in rngs]))

    @staticmethod
    def _mean_loss(loss: "RolloutLoss", reduce_gradients: Callable[[Any], None] | None,
                   n_calls: int = WARM_START_EVAL_CALLS) -> Tensor:
        """Mean of ``n_calls`` loss draws per model, without gradients (averaged over ranks when reduced)."""
        with torch.no_grad():  # an iteration past any horizon ramp: horizons up to all training snapshots
            mean = torch.stack([loss(_PAST_RAMP) for _ in range(n_calls)]).mean(0)
        return TrainingState._rank_mean(mean, reduce_gradients)

    @staticmethod
    def _rank_mean(values: Tensor, reduce_gradients: Callable[[Any], None] | None) -> Tensor:
        """``values`` averaged over the ranks of a data-parallel fit (as they are otherwise), on the CPU."""
        values = values.detach()
        if reduce_gradients is not None:  # the hook averages .grad of the parameters it is given
            holder = torch.nn.Parameter(torch.zeros_like(values))
            holder.grad = values.clone()
            reduce_gradients(types.SimpleNamespace(network=torch.nn.ParameterList([holder]),
                                                   friction=types.SimpleNamespace(log_gamma=torch.zeros(0))))
            values = holder.grad
        return values.cpu()

    # -- line 4
    def step(self, losses: Tensor, reduce_gradients: Callable[["TrainingState"], None] | None = None) -> Tensor:
        """Backpropagate ``losses.sum()`` and clip; return whether losses and gradients are finite.

        ``reduce_gradients(self)``, when given, runs between the backward pass and the clipping.
        The flag is a 0-dim bool tensor, left on the device (reading it is a host sync).
        """
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        if reduce_gradients is not None:
            reduce_gradients(self)
        if self.cfg.grad_clip is not None:
            _clip_per_model(self.network, self.friction, self.E, self.cfg.grad_clip)
        ok = torch.isfinite(losses).all()
        for p in self.network.parameters():
            if p.grad is not None:
                ok = ok & torch.isfinite(p.grad).all()
        if self.friction.log_gamma.grad is not None:
            ok = ok & torch.isfinite(self.friction.log_gamma.grad).all()
        return ok

    def apply(self, it: int) -> None:
        """The optimiser step (line 4) and the EMA update (line 5) of iteration ``it``."""
        if self.cfg.lr_warmup or self.cfg.lr_schedule != "constant":  # else the lr never changes
            factor = lr_factor(self.cfg, it, self.n_iter)
            for g, base in zip(self.optimizer.param_groups, self.base_lrs):
                g["lr"] = base * factor
        self.optimizer.step()
        if self.ema is not None:
            decay = self.cfg.ema_decay(it)
            with torch.no_grad():
                for k, p in self.network.named_parameters():
                    self.ema[k].mul_(decay).add_(p.detach(), alpha=1.0 - decay)
        self.iteration = it + 1

    # -- last good weights
    def _copy(self):
        return (
            {k: v.detach().clone() for k, v in self.network.state_dict().items()},
            {k: v.detach().clone() for k, v in self.friction.state_dict().items()},
            None if self.ema is None else {k: v.clone() for k, v in self.ema.items()},
        )

    def mark_good(self) -> None:
        """Remember the current weights as the last good ones."""
        self._good = self._copy()

    def restore_good(self) -> None:
        """Go back to the weights remembered by :meth:`mark_good`."""
        net, fr, ema = self._good
        self.network.load_state_dict(net)
        self.friction.load_state_dict(fr)
        if self.ema is not None and ema is not None:
            for k in self.ema:
                self.ema[k].copy_(ema[k])

    def result(self, info: dict[str, Any]) -> TrainResult:
        E = self.E
        return TrainResult(
            self.network, None if self.ema is None else {k: v.clone() for k, v in self.ema.items()}, self.friction,
            {"loss": np.asarray(self.history["loss"], dtype=np.float64).reshape(-1, E),
             "friction": np.asarray(self.history["friction"], dtype=np.float64).reshape(-1, E)},
            dict(info),
        )

    # -- checkpoints
    def save(self, path: str | os.PathLike, fingerprint: str) -> None:
        """Write a resumable checkpoint to ``path`` (atomically: a temporary file, then a rename)."""
        state = {
            "format": _CHECKPOINT_FORMAT,
            "iteration": int(self.iteration),
            "network": self.network.state_dict(),
            "friction": self.friction.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema if self.ema is not None else {},
            "generators": [g.get_state() for g in self.generators],
            "device_generators": [g.get_state() for g in self.device_generators],
            "history_loss": torch.tensor(self.history["loss"], dtype=torch.float64),
            "history_friction": torch.tensor(self.history["friction"], dtype=torch.float64),
            "fingerprint": fingerprint,
            "config": json.dumps(self.cfg.to_dict()),
        }
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + ".tmp"
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def load(self, path: str | os.PathLike, fingerprint: str) -> None:
        """Continue from the checkpoint at ``path`` (written by :meth:`save` for the same inputs)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            raise ValueError(f"resume={path!r} is a directory; pass the checkpoint file (checkpoint_path of the earlier fit)")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"resume={path!r}: no such checkpoint file")
        device = next(self.network.parameters()).device
        try:
            state = torch.load(path, map_location=device, weights_only=True)
        except Exception as exc:  # truncated, garbage or a pickled object: say which file
            raise ValueError(f"resume={path!r} is not a readable scwlm training checkpoint ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        if not isinstance(state, dict) or int(state.get("format", -1)) != _CHECKPOINT_FORMAT:
            raise ValueError(f"resume={path!r} is not a scwlm training checkpoint (or an incompatible format)")
        if state["fingerprint"] != fingerprint:
            raise ValueError(f"the checkpoint {path!r} was written for other data, seeds or frictions; resume with the same inputs")
        saved = json.loads(state["config"])
        now = self.cfg.to_dict()  # the runtime group is neither saved nor compared
        diff = sorted(k for k in now if saved.get(k) != now[k])
        if diff:
            raise ValueError(f"the checkpoint {path!r} was written with other settings for: {', '.join(diff)}")
        try:
            self.network.load_state_dict(state["network"])
            self.friction.load_state_dict(state["friction"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ValueError(f"the checkpoint {path!r} does not match this model: {str(exc).splitlines()[0]}") from None
        if self.ema is not None:
            self.ema = {k: v.to(device) for k, v in state["ema"].items()}
        for g, s in zip(self.generators, state["generators"]):
            g.set_state(s)
        for g, s in zip(self.device_generators, state["device_generators"]):
            g.set_state(s)
        self.history = {
            "loss": [list(r) for r in state["history_loss"].tolist()],
            "friction": [list(r) for r in state["history_friction"].tolist()],
        }
        self.iteration = int(state["iteration"])
        self.mark_good()


# ---------------------------------------------------------------------------- bookkeeping
class Monitor:
    """Progress bar, history and divergence detection, with host reads every ``sync_every`` iterations.

    On accelerators the loss is read back only at sync points (a host read stalls the device), so
    :meth:`record` keeps the losses and finiteness flags of the iterations in between; :meth:`flush`
    moves them into the history and raises :class:`TrainingDivergedError` (after restoring the last
    good weights) if any iteration since the last sync was not finite.
    """

    def __init__(self, state: TrainingState, n_iter: int, *, progress: bool, sync_every: int,
                 result: Callable[[], TrainResult]) -> None:
        self.state, self.n_iter, self.sync_every, self.result = state, n_iter, sync_every, result
        self.pending: list[tuple[int, Tensor, Tensor, Tensor]] = []
        self.bar = _progress_bar(progress, n_iter, state.iteration)

    def record(self, it: int, losses: Tensor, ok: Tensor) -> None:
        self.pending.append((it, losses.detach(), self.state.friction().detach(), ok))

    def due(self, it: int) -> bool:
        return (it + 1) % self.sync_every == 0 or it + 1 == self.n_iter

    def flush(self) -> None:
        """Read the pending iterations on the host; stop at the first non-finite one."""
        if not self.pending:
            return
        hist = self.state.history
        for it, lv, fv, ok in self.pending:
            if not bool(ok):
                self.pending.clear()
                self.state.restore_good()
                raise TrainingDivergedError(_diverged_message(it, lv), it, self.result())
        for _, lv, fv, _ in self.pending:
            hist["loss"].append(lv.cpu().tolist())
            hist["friction"].append(fv.cpu().tolist())
        self.pending.clear()
        self.state.mark_good()
        self.bar.set_postfix(
            loss=f"{float(np.mean(hist['loss'][-1])):.4g}", gamma=f"{float(np.mean(hist['friction'][-1])):.4g}",
            refresh=False,
        )

    def close(self) -> None:
        self.bar.close()


class _NoBar:
    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="WLM", dynamic_ncols=True)


def _diverged_message(it: int, losses: Tensor) -> str:
    vals = ", ".join(f"{float(v):.4g}" for v in losses.detach().cpu())
    return (
        f"non-finite loss or gradient at iteration {it} (losses: {vals}); training stopped and the last good "
        "weights were kept (see .result). Try a smaller lr or dt, grad_clip, or a shorter horizon / horizon_ramp."
    )


def _clip_per_model(net: SetPotential, friction: Friction, E: int, max_norm: float) -> None:
    params = [p for p in net.parameters() if p.grad is not None]
    sq = torch.zeros(E, dtype=params[0].dtype, device=params[0].device)
    for p in params:
        sq = sq + p.grad.detach().pow(2).reshape(E, -1).sum(1)
    g = friction.log_gamma.grad
    if g is not None:
        sq = sq + g.detach().pow(2)
    factor = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(factor.view(E, *([1] * (p.ndim - 1))))
    if g is not None:
        g.mul_(factor)


# ---------------------------------------------------------------------------- the loop
def _sync_interval(device: torch.device, cfg: WLMConfig) -> int:
    """Iterations between host reads of the loss: every one on CPU (a read is free there)."""
    return 1 if device.type == "cpu" else cfg.sync_every


def train(
    tasks: Sequence[Task],
    config: WLMConfig,
    *,
    n_iter: int,
    device: torch.device | str = "cpu",
    resume: str | os.PathLike | None = None,
    callback: Any = None,
    data_rank: int = 0,
    reduce_gradients: Callable[[TrainingState], None] | None = None,
) -> TrainResult:
    """Train one WLM model per task, all in one vectorised run.

    Parameters
    ----------
    tasks
        The models to train (their data, seeds and frictions).
    config
        Shared settings (architecture, optimiser, loss, integrator).
    n_iter
        Total number of iterations (optimizer steps).
    device
        Torch device.
    resume
        Path of a checkpoint written by an earlier call with ``checkpoint_every``; training
        continues from it up to ``n_iter`` and gives the same result as an uninterrupted run.
    callback
        Optional ``callback(iteration, current)`` called after every optimizer step (e.g. for
        timing); ``current()`` returns the :class:`TrainResult` of the weights so far (e.g. to
        evaluate a model during training; it copies the weights, so call it only when needed).
    data_rank
        For data parallelism (:mod:`scwlm.distributed`): rank ``r > 0`` draws its particle
        minibatches from its own stream (seeded by the model's seed and ``r``) and everything else
        (initialisation, horizons, dropout) as rank 0 does.
    reduce_gradients
        Optional ``reduce_gradients(state)`` called after every backward pass, before clipping
        (e.g. an all-reduce that averages the gradients over data-parallel ranks).

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> import torch
    >>> from scwlm.core.snapshots import as_snapshots
    >>> snaps = as_snapshots([torch.randn(20, 2), torch.randn(20, 2) + 1.0], [0.0, 1.0])
    >>> cfg = WLMConfig(hidden=8, heads=1, blocks=1, ffn=8, progress=False)
    >>> res = train([Task(snaps, seed=0)], cfg, n_iter=2)
    >>> res.history["loss"].shape
    (2, 1)
    """
    if not tasks:
        raise ValueError("need at least one task")
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    dims = {t.snapshots.dim for t in tasks}
    if len(dims) != 1:
        raise ValueError(f"all tasks must have the same dimension, got {sorted(dims)}")
    cfg, device = config, torch.device(device)
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    data = TrainingData(tasks, cfg, device, dtype)

    # the loss scale of every model from its own data (a fixed generator: identical data give an
    # identical blur, so an ensemble member matches its separate fit)
    blurs = [
        float(cfg.blur) if cfg.blur is not None
        else blur_heuristic(t.snapshots.points, scale=cfg.blur_scale, generator=torch.Generator().manual_seed(0))
        for t in tasks
    ]
    diameters = [point_cloud_diameter(t.snapshots.points) for t in tasks]
    divergence = SinkhornDivergence(
        p=cfg.p, blur=blurs[0], scaling=cfg.scaling, diameter=diameters[0], backend=cfg.sinkhorn_backend,
        warm_start=cfg.sinkhorn_warm_start,
    )
    state = TrainingState(tasks, cfg, dims.pop(), device, dtype, n_iter)
    fingerprint = _fingerprint(tasks)
    if resume is not None:
        state.load(resume, fingerprint)
        if state.iteration > n_iter:
            raise ValueError(f"the checkpoint is at iteration {state.iteration}, beyond n_iter={n_iter}")
    info = dict(dt=data.dt, step=data.h, blur=blurs, diameter=diameters, n_iter=n_iter,
                seeds=[int(t.seed) for t in tasks], dim=state.network.dim)
    subset_generators = None if not data_rank else [
        torch.Generator().manual_seed(int(t.seed) * 1_000_003 + int(data_rank)) for t in tasks
    ]

    def make_loss(potential, compile_force: bool = False, ramps: Sequence[int] | None = None) -> RolloutLoss:
        return RolloutLoss(
            cfg, potential, state.friction, data, divergence, generators=state.generators,
            device_generators=state.device_generators, blurs=blurs, diameters=diameters,
            subset_generators=subset_generators, compile_force=compile_force, ramps=ramps,
        )

    n_warm = cfg.warm_start_iterations(n_iter)
    if n_warm and state.iteration == 0:  # damped linear mechanics first
        info["warm_start"] = state.warm_start(make_loss, n_warm, reduce_gradients)
    compile_force = compiles_training_force(cfg, tasks, n_iter, device)
    # each model's horizon ramp from its own time course (an ensemble member ramps as when fitted alone)
    info["horizon_ramp"] = [cfg.ramp_iterations(n_iter, k) for k in data.n_intervals]
    loss = make_loss(state.network, compile_force, info["horizon_ramp"])
    info["particles_per_batch"] = loss.batch  # particles_per_batch="auto" resolved for these tasks and device
    sync_every = _sync_interval(device, cfg)
    def current() -> TrainResult:
        return state.result(info)

    monitor = Monitor(state, n_iter, progress=cfg.progress, sync_every=sync_every, result=current)
    if compile_force:  # the first iteration compiles (15-30 s on 2 CPU cores): say so on the bar
        monitor.bar.set_postfix(compiling="the force, once")
    try:
        for it in range(state.iteration, n_iter):
            losses = loss(it)                      # lines 1-3
            ok = state.step(losses, reduce_gradients)  # line 4: backward, (all-reduce), clipping
            if sync_every == 1 and not bool(ok):   # on CPU, stop before a non-finite step is taken
                monitor.record(it, losses, ok)
                monitor.flush()
            state.apply(it)                        # line 4: AdamW; line 5: EMA
            monitor.record(it, losses, ok)
            checkpoint = cfg.checkpoint_every and (it + 1) % cfg.checkpoint_every == 0
            if monitor.due(it) or checkpoint:
                monitor.flush()                    # raises if any iteration since the last flush diverged
            monitor.bar.update(1)
            if callback is not None:
                callback(it, current)
            if checkpoint:
                state.save(cfg.checkpoint_path, fingerprint)
    finally:
        monitor.close()
    if loss.compiled is not None:
        info["compile"] = loss.compiled.note or "torch.compile of the analytic force: not called"
        info["compile_seconds"] = loss.compiled.compile_seconds
    return state.result(info)
