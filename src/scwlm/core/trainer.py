r"""The training loop of WLM (Algorithm 1 of the paper), for one model or a batched ensemble.

Each iteration, for every model :math:`e` of the ensemble:

1. draw a horizon :math:`K_e \sim \mathcal U\{1, \dots, K_{\max}\}` (optionally ramped up);
2. take the first snapshot (a random subset of ``particles_per_batch`` points, with the matching
   velocity rows) and roll the mechanics out to :math:`t_{K_e}` with the damped leapfrog;
3. loss :math:`= \frac1{K_e}\sum_{k \le K_e} S_\varepsilon(\hat X_k, X_k)` (targets subsampled to the
   same size);
4. backpropagate through the discretised rollout; AdamW on the network (and, when learnable, on
   :math:`\log\gamma` with its own learning rate); update the EMA of the network weights.

All models share one rollout (the largest horizon) and one batched Sinkhorn call; their losses
are summed, so each model receives exactly the gradient it would receive alone. Every source of
randomness of model :math:`e` (initialisation, horizons, subsets, dropout) comes from generators
seeded with that model's seed, so an ensemble member equals the model fitted alone with the same
seed whenever the ensemble's members agree on the number of particles per iteration.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from .config import WLMConfig
from .divergence import SinkhornDivergence, blur_heuristic, point_cloud_diameter
from .friction import Friction
from .integrate import leapfrog
from .potential import DropoutMasks, SetPotential
from .snapshots import Snapshots

__all__ = ["Task", "TrainResult", "TrainingDivergedError", "train", "integration_schedule", "infer_dt"]

_CHECKPOINT_FORMAT = 1


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
    """What :func:`train` returns: networks, friction, history and the integration settings."""

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


def infer_dt(times_list: Sequence[Tensor]) -> float:
    """Default time-grid step: the smallest gap between consecutive training times."""
    gaps = [float(g) for t in times_list for g in torch.diff(t)]
    return min(gaps)


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


def _memory_per_step(cfg: WLMConfig, E: int, n: int, itemsize: int) -> float:
    """Rough bytes kept for the backward pass per integrator step (calibrated on CPU)."""
    per_block = 10 * cfg.heads * n * n + 14 * n * cfg.ffn + 40 * n * cfg.hidden
    return float(E * cfg.blocks * per_block * itemsize)


class _TrainingData:
    """Device copies of every task's training snapshots, velocities and integration schedule."""

    def __init__(self, tasks: Sequence[Task], h: float, device: torch.device, dtype: torch.dtype) -> None:
        self.points = [[p.to(device, dtype) for p in t.snapshots.points] for t in tasks]
        self.v0 = [
            (t.snapshots.velocities[0].to(device, dtype) if t.snapshots.velocities[0] is not None else None) for t in tasks
        ]
        self.t0 = [float(t.snapshots.times[0]) for t in tasks]
        sched = [integration_schedule(t.snapshots.times, h) for t in tasks]
        self.steps = [s for s, _ in sched]
        self.index = [i for _, i in sched]
        self.n_intervals = [len(t.snapshots) - 1 for t in tasks]


def train(
    tasks: Sequence[Task],
    config: WLMConfig,
    *,
    n_iter: int,
    device: torch.device | str = "cpu",
    resume: str | os.PathLike | None = None,
    callback: Any = None,
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
        Optional ``callback(iteration)`` called after every optimizer step (e.g. for timing).

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
    device = torch.device(device)
    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    dims = {t.snapshots.dim for t in tasks}
    if len(dims) != 1:
        raise ValueError(f"all tasks must have the same dimension, got {sorted(dims)}")
    d = dims.pop()
    E = len(tasks)
    cfg = config

    dt = float(cfg.dt) if cfg.dt is not None else infer_dt([t.snapshots.times for t in tasks])
    h = dt / cfg.substeps
    data = _TrainingData(tasks, h, device, dtype)

    # --- loss scale of every model, from its own data (a fixed generator: identical data give an
    # identical blur, so an ensemble member matches its separate fit)
    blurs = [
        float(cfg.blur) if cfg.blur is not None
        else blur_heuristic(t.snapshots.points, generator=torch.Generator().manual_seed(0))
        for t in tasks
    ]
    diameters = [point_cloud_diameter(t.snapshots.points) for t in tasks]
    loss_fn = SinkhornDivergence(p=cfg.p, blur=blurs[0], scaling=cfg.scaling, diameter=diameters[0], backend=cfg.sinkhorn_backend)

    # --- model, friction, optimiser, EMA, generators
    gens = [torch.Generator().manual_seed(int(t.seed)) for t in tasks]
    dev_gens = [_device_generator(device, t.seed) for t in tasks]
    with torch.random.fork_rng(devices=[]):
        prev = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            net = SetPotential(
                d, hidden=cfg.hidden, heads=cfg.heads, blocks=cfg.blocks, ffn=cfg.ffn, dropout=cfg.dropout,
                time_features=cfg.time_features, n_models=E, generators=gens,
            ).to(device)
            friction = Friction(
                [cfg.friction_init if t.friction is None else t.friction for t in tasks],
                [t.friction is None for t in tasks],
            ).to(device)
        finally:
            torch.set_default_dtype(prev)
    groups: list[dict[str, Any]] = [{"params": list(net.parameters()), "lr": cfg.lr, "weight_decay": cfg.weight_decay}]
    if friction.any_learnable:
        groups.append({"params": [friction.log_gamma], "lr": cfg.friction_lr, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups)
    ema = {k: p.detach().clone() for k, p in net.named_parameters()} if cfg.ema else None
    history: dict[str, list] = {"loss": [], "friction": []}
    start = 0
    fingerprint = _fingerprint(tasks)

    if resume is not None:
        state = torch.load(os.fspath(resume), map_location=device, weights_only=True)
        _check_resume(state, fingerprint, cfg)
        net.load_state_dict(state["network"])
        friction.load_state_dict(state["friction"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema = {k: v.to(device) for k, v in state["ema"].items()}
        for g, s in zip(gens, state["generators"]):
            g.set_state(s)
        for g, s in zip(dev_gens, state["device_generators"]):
            g.set_state(s)
        history = {"loss": [list(r) for r in state["history_loss"].tolist()], "friction": [list(r) for r in state["history_friction"].tolist()]}
        start = int(state["iteration"])
        if start > n_iter:
            raise ValueError(f"the checkpoint is at iteration {start}, beyond n_iter={n_iter}")

    info = dict(dt=dt, step=h, blur=blurs, diameter=diameters, n_iter=n_iter, seeds=[int(t.seed) for t in tasks], dim=d)

    def result() -> TrainResult:
        return TrainResult(
            net, None if ema is None else {k: v.clone() for k, v in ema.items()}, friction,
            {"loss": np.asarray(history["loss"], dtype=np.float64).reshape(-1, E),
             "friction": np.asarray(history["friction"], dtype=np.float64).reshape(-1, E)},
            dict(info),
        )

    step_ctx = _IterationContext(cfg, net, friction, data, loss_fn, gens, dev_gens, device, dtype, blurs, diameters)
    sync_every = 1 if device.type == "cpu" else cfg.sync_every
    good = _snapshot_state(net, friction, ema)
    pending: list[tuple[Tensor, Tensor]] = []

    bar = _progress_bar(cfg.progress, n_iter, start)
    try:
        for it in range(start, n_iter):
            optimizer.zero_grad(set_to_none=True)
            losses = step_ctx.loss(it)
            losses.sum().backward()
            if cfg.grad_clip is not None:
                _clip_per_model(net, friction, E, cfg.grad_clip)
            ok = torch.isfinite(losses).all()
            for p in net.parameters():
                if p.grad is not None:
                    ok = ok & torch.isfinite(p.grad).all()
            if friction.log_gamma.grad is not None:
                ok = ok & torch.isfinite(friction.log_gamma.grad).all()
            if sync_every == 1 and not bool(ok):
                _restore_state(net, friction, ema, good)
                raise TrainingDivergedError(_diverged_message(it, losses), it, result())
            optimizer.step()
            if ema is not None:
                decay = min(cfg.ema, (1.0 + it) / (10.0 + it)) if cfg.ema_warmup else cfg.ema
                with torch.no_grad():
                    for k, p in net.named_parameters():
                        ema[k].mul_(decay).add_(p.detach(), alpha=1.0 - decay)
            pending.append((losses.detach(), friction().detach()))
            if (it + 1) % sync_every == 0 or it + 1 == n_iter:
                if sync_every > 1 and not bool(ok):
                    _restore_state(net, friction, ema, good)
                    raise TrainingDivergedError(_diverged_message(it, losses), it, result())
                for lv, fv in pending:
                    history["loss"].append(lv.cpu().tolist())
                    history["friction"].append(fv.cpu().tolist())
                pending.clear()
                good = _snapshot_state(net, friction, ema)
                last = history["loss"][-1]
                bar.set_postfix(loss=f"{float(np.mean(last)):.4g}", gamma=f"{float(np.mean(history['friction'][-1])):.4g}", refresh=False)
            bar.update(1)
            if callback is not None:
                callback(it)
            if cfg.checkpoint_every and (it + 1) % cfg.checkpoint_every == 0:
                for lv, fv in pending:
                    history["loss"].append(lv.cpu().tolist())
                    history["friction"].append(fv.cpu().tolist())
                pending.clear()
                _save_checkpoint(
                    cfg.checkpoint_path, it + 1, net, friction, optimizer, ema, gens, dev_gens, history, fingerprint, cfg
                )
    finally:
        bar.close()
    return result()


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


class _IterationContext:
    """Builds the loss of one iteration: sampling, rollout, batched Sinkhorn divergences."""

    def __init__(self, cfg, net, friction, data, loss_fn, gens, dev_gens, device, dtype, blurs=None, diameters=None) -> None:
        self.cfg, self.net, self.friction, self.data, self.loss_fn = cfg, net, friction, data, loss_fn
        E = len(gens)
        self.blurs = list(blurs) if blurs is not None else [loss_fn.blur] * E
        self.diameters = list(diameters) if diameters is not None else [loss_fn.diameter] * E
        self.gens, self.dev_gens, self.device, self.dtype = gens, dev_gens, device, dtype
        self.E = len(gens)

    def _horizon_cap(self, it: int, e: int) -> int:
        kmax = self.data.n_intervals[e]
        if self.cfg.horizon is not None:
            kmax = min(kmax, self.cfg.horizon)
        if self.cfg.horizon_ramp:
            kmax = max(1, int(math.ceil(kmax * min(1.0, (it + 1) / self.cfg.horizon_ramp))))
        return kmax

    def loss(self, it: int) -> Tensor:
        cfg, data, E = self.cfg, self.data, self.E
        if cfg.fixed_horizon:
            K = [self._horizon_cap(it, e) for e in range(E)]
        else:
            K = [int(torch.randint(1, self._horizon_cap(it, e) + 1, (1,), generator=self.gens[e])) for e in range(E)]
        n = min(
            min([cfg.particles_per_batch or math.inf] + [data.points[e][k].shape[0] for k in range(K[e] + 1)])
            for e in range(E)
        )
        n = int(n)
        x0, v0, targets = [], [], []
        for e in range(E):
            pts0 = data.points[e][0]
            idx = torch.randperm(pts0.shape[0], generator=self.gens[e])[:n] if n < pts0.shape[0] else None
            x0.append(pts0 if idx is None else pts0[idx.to(self.device)])
            v = data.v0[e]
            v0.append(torch.zeros_like(x0[-1]) if v is None else (v if idx is None else v[idx.to(self.device)]))
            for k in range(1, K[e] + 1):
                y = data.points[e][k]
                if n < y.shape[0]:
                    y = y[torch.randperm(y.shape[0], generator=self.gens[e])[:n].to(self.device)]
                targets.append(y)
        x0_t, v0_t = torch.stack(x0), torch.stack(v0)

        n_steps = [data.index[e][K[e]] for e in range(E)]
        S = max(n_steps)
        steps = torch.tensor(
            [[data.steps[e][min(s, len(data.steps[e]) - 1)] for e in range(E)] for s in range(S)],
            dtype=self.dtype, device=self.device,
        )
        record = sorted({data.index[e][k] for e in range(E) for k in range(1, K[e] + 1)})
        t0 = torch.tensor(data.t0, dtype=self.dtype, device=self.device)
        force = self._force_fn(n, n_steps, S)
        positions, _, _ = leapfrog(
            force, x0_t, v0_t, steps=steps, gamma=self.friction(), t0=t0, scheme=cfg.integrator, record=record
        )
        at = dict(zip(record, positions))
        preds = torch.stack([at[data.index[e][k]][e] for e in range(E) for k in range(1, K[e] + 1)])
        owners = [e for e in range(E) for _ in range(K[e])]
        div = self.loss_fn(
            preds, torch.stack(targets), blur=[self.blurs[e] for e in owners], diameter=[self.diameters[e] for e in owners]
        )
        owner = torch.tensor(owners, device=self.device)
        sums = torch.zeros(E, dtype=div.dtype, device=self.device).index_add(0, owner, div)
        return sums / torch.tensor(K, dtype=div.dtype, device=self.device)

    def _force_fn(self, n: int, n_steps: list[int], S: int):
        cfg, net = self.cfg, self.net
        dropout = net.dropout > 0
        use_ckpt = cfg.checkpoint_steps is True or (
            cfg.checkpoint_steps == "auto"
            and S * _memory_per_step(cfg, self.E, n, torch.finfo(self.dtype).bits // 8) > cfg.memory_budget_gb * 2**30
        )
        counter = [0]

        def masks_now() -> DropoutMasks | None:
            s = counter[0]
            counter[0] += 1
            if not dropout:
                return None
            # model e draws its masks from its own generator, and only within its own horizon
            # (beyond it, its positions are unused): an ensemble member sees the masks it would
            # see when fitted alone
            drawn = [
                net.sample_masks(n, [self.dev_gens[e]], self.device, self.dtype) if s < n_steps[e] else None
                for e in range(self.E)
            ]
            ref = next(m for m in drawn if m is not None)

            def stack(kind: str, b: int) -> Tensor:
                parts = [getattr(m if m is not None else ref, kind)[b][0] for m in drawn]
                return torch.stack([p if m is not None else torch.ones_like(p) for p, m in zip(parts, drawn)])

            nb = net.n_blocks
            return DropoutMasks(
                attention=[stack("attention", b) for b in range(nb)],
                hidden=[stack("hidden", b) for b in range(nb)],
                output=[stack("output", b) for b in range(nb)],
            )

        def raw(x, t, masks):
            return net.forces(x, t, masks=masks, create_graph=True, impl=cfg.force_impl)

        def force(x: Tensor, t: Tensor) -> Tensor:
            masks = masks_now()
            xin = x.detach() if cfg.rollout_grad == "detached" else x
            if use_ckpt:
                from torch.utils.checkpoint import checkpoint

                return checkpoint(raw, xin, t, masks, use_reentrant=False)
            return raw(xin, t, masks)

        return force


def _diverged_message(it: int, losses: Tensor) -> str:
    vals = ", ".join(f"{float(v):.4g}" for v in losses.detach().cpu())
    return (
        f"non-finite loss or gradient at iteration {it} (losses: {vals}); training stopped and the last good "
        "weights were kept (see .result). Try a smaller lr or dt, grad_clip, or a shorter horizon / horizon_ramp."
    )


def _snapshot_state(net, friction, ema):
    return (
        {k: v.detach().clone() for k, v in net.state_dict().items()},
        {k: v.detach().clone() for k, v in friction.state_dict().items()},
        None if ema is None else {k: v.clone() for k, v in ema.items()},
    )


def _restore_state(net, friction, ema, good) -> None:
    net.load_state_dict(good[0])
    friction.load_state_dict(good[1])
    if ema is not None and good[2] is not None:
        for k in ema:
            ema[k].copy_(good[2][k])


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


_RESUME_IGNORED = {"progress", "checkpoint_every", "checkpoint_path", "sync_every"}


def _check_resume(state: dict, fingerprint: str, cfg: WLMConfig) -> None:
    if int(state.get("format", -1)) != _CHECKPOINT_FORMAT:
        raise ValueError("not a scwlm training checkpoint (or an incompatible format)")
    if state["fingerprint"] != fingerprint:
        raise ValueError("the checkpoint was written for other data, seeds or frictions; resume with the same inputs")
    import json

    saved = json.loads(state["config"])
    now = cfg.to_dict()
    diff = sorted(k for k in now if k not in _RESUME_IGNORED and saved.get(k) != now[k])
    if diff:
        raise ValueError(f"the checkpoint was written with other settings for: {', '.join(diff)}")


def _save_checkpoint(path, iteration, net, friction, optimizer, ema, gens, dev_gens, history, fingerprint, cfg) -> None:
    import json

    state = {
        "format": _CHECKPOINT_FORMAT,
        "iteration": int(iteration),
        "network": net.state_dict(),
        "friction": friction.state_dict(),
        "optimizer": optimizer.state_dict(),
        "ema": ema if ema is not None else {},
        "generators": [g.get_state() for g in gens],
        "device_generators": [g.get_state() for g in dev_gens],
        "history_loss": torch.tensor(history["loss"], dtype=torch.float64),
        "history_friction": torch.tensor(history["friction"], dtype=torch.float64),
        "fingerprint": fingerprint,
        "config": json.dumps(cfg.to_dict()),
    }
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
