"""Training configuration: one validated, frozen dataclass whose settings are grouped in code."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import warnings
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["WLMConfig", "GROUPS", "PAPER_SETTINGS"]

#: the groups of settings, in the order the documentation lists them. ``"runtime"`` settings
#: change how a fit runs (progress bars, checkpoint files, memory trade-offs) but never its result:
#: they are neither saved with a model nor compared when a checkpoint is resumed.
GROUPS = ("model", "physics", "loss", "optimiser", "runtime")


def _setting(default: Any, group: str) -> Any:
    assert group in GROUPS, group
    return field(default=default, metadata={"group": group})


@dataclass(frozen=True)
class WLMConfig:
    r"""Settings of a WLM fit, in five groups; the defaults are the paper's recipe with a particle minibatch and a linear warm start.

    The config is frozen: derive a changed copy with :meth:`replace`. :meth:`groups` lists the
    settings of every group.

    ``model`` — the potential network
        ``hidden`` (64), ``heads`` (4), ``blocks`` (4), ``ffn`` (512), ``dropout`` (0),
        ``time_features`` (0 = time-independent; the paper uses 16 when time-dependent),
        ``force_impl`` (``"auto"``: ``"analytic"`` for sets of 512 particles or more, where it
        keeps far less memory and is faster (1.4x at 512 particles, 1.2-2.5x at 1000),
        ``"autograd"`` below;
        ``"analytic"``: the gradient of the potential written out as a forward formula, whose
        attention layers run in row-blocked kernels with hand-written backward passes,
        :mod:`scwlm.core.attention`, keeping no ``N x N`` tensor for the backward pass;
        ``"autograd"``: reverse-mode autograd, which training differentiates again -- the same
        forces to rounding), ``dtype`` (``"float32"``),
        ``zero_init_head`` (start the output layer at zero, so the untrained model exerts no
        force: damped free flight, constant velocity at :math:`\gamma = 0`), ``quadratic`` (on by default: add a
        learnable one-body term :math:`\tfrac12 x^\top A x + b^\top x` per particle, from zero:
        linear restoring forces, which the attention network alone represents poorly),
        ``precision`` (``"float32"``; ``"bf16"``: bf16 autocast of the force's attention and
        feed-forward matrix products, everything else in float32 — an option, see the tests'
        error bounds), ``compile_force`` (``"auto"``: ``torch.compile`` of the analytic force in
        training, on a CPU, where models x particles per set are at most
        :data:`AUTO_COMPILE_ROWS` (512) and the fit runs :data:`AUTO_COMPILE_MIN_ITER` (1,000)
        iterations or more: there it evaluates a training force with its backward pass up to
        1.9x faster than eager execution, after a one-off compilation of 10-30 s (:meth:`compiles`); ``True``:
        always, ``False``: never. The same forces to rounding; without a working compiler it
        warns once and computes eagerly).
    ``physics`` — the mechanics and their discretisation
        ``friction_init`` (``"auto"``: the linear warm start of a learnable friction is fitted
        from ``1 / dt`` -- a free velocity damped by a factor :math:`e` per time-grid step,
        whatever the unit of the times -- and from 1, keeping the accepted fit with the lower
        loss; without an accepted fit the friction starts at the larger of the two, ``max(1, 1 /
        dt)``: 1.0 on a unit or coarser grid, 100 on the gradient-flow SDEs' grid of 0.01; a
        number: that initial friction),
        ``integrator`` (``"paper"`` damped
        leapfrog or ``"exponential"``), ``dt`` (time-grid step; ``None`` = smallest gap between
        training times), ``substeps`` (1 integrator step per ``dt`` in training),
        ``eval_substeps`` (5 at evaluation).
    ``loss`` — the Sinkhorn divergence
        ``p`` (2), ``blur`` (``None`` = ``blur_scale`` x the median pairwise distance within a
        snapshot, clamped to [1e-3, 10]), ``blur_scale`` (0.5, the paper code's factor; only used
        when ``blur`` is ``None``),
        ``scaling`` (0.9), ``sinkhorn_backend`` (``"auto"``, ``"tensorized"`` (our fused loop),
        ``"geomloss"`` (GeomLoss' own tensorized loop, the reference) or ``"online"`` (KeOps)),
        ``sinkhorn_warm_start`` (``False``; ``True`` or a number of :math:`\varepsilon`-steps: every
        loss call starts from the dual potentials of the previous call of the same shape and
        iterates over the last temperatures of the schedule only, instead of annealing from the
        diameter -- fewer Sinkhorn iterations, but not the paper's loss; ``"tensorized"`` backend).
    ``optimiser`` — Algorithm 1's sampling and the optimiser
        ``lr`` (1e-4, the peak when scheduled), ``lr_schedule`` (``"constant"`` or ``"cosine"``:
        decay to 5 % of ``lr`` over the run), ``lr_warmup`` (iterations of linear warm-up from
        0), ``weight_decay`` (1e-4), ``friction_lr`` (1e-2), ``horizon`` (largest rollout
        horizon K; ``None`` = all training snapshots), ``fixed_horizon`` (always roll out to the
        largest horizon instead of sampling it; used by the speed benchmark), ``horizon_ramp``
        (iterations over which the largest horizon grows linearly from 1; 0 = off; ``"auto"``:
        :data:`AUTO_RAMP_FRACTION` of the main fit's iterations where a model has more than
        :data:`AUTO_RAMP_MIN_INTERVALS` training intervals, else off -- long rollouts of an
        untrained network go astray, short ones first teach it the local dynamics; see
        :meth:`ramp_iterations`),
        ``particles_per_batch`` (``"auto"``: :data:`AUTO_BATCH` particles of every snapshot on a CPU,
        more on a GPU, so an iteration costs the same however many cells there are, and fewer where
        a training rollout takes more than :data:`AUTO_BATCH_STEPS` integrator steps on average,
        so that it also costs about the same however long the time course is; see
        :meth:`batch_size`; ``None`` = all points, as in the paper), ``ema`` (0.999; ``None`` disables),
        ``ema_warmup`` (the EMA's decay at iteration ``i`` is ``min(ema, (1+i)/(c+i))`` with
        ``c = ema_warmup``, see :meth:`ema_decay`; ``True``: ``c = 10``; ``False``: a constant
        ``ema``), ``grad_clip`` (per-model norm; ``None`` = off), ``rollout_grad``
        (``"detached"``: positions are detached before every force evaluation, as in the authors'
        code; ``"full"``: exact gradient of the discretised rollout), ``anchor`` (``"first"``:
        every training rollout starts at the first snapshot, as in Algorithm 1;
        ``"observed"``: it starts at a random training snapshot that has velocities — the first
        one always qualifies — as the interpolation protocol's restarts do), ``warm_start``
        (iterations of a first fit of damped *linear* mechanics, :math:`a = -(Ax + b)` and
        :math:`\gamma`; where it explains the data -- its loss below 1 % of free flight's
        -- it initialises the friction and, with ``quadratic``, the network's one-body term,
        with the output layer zeroed; elsewhere the model starts as configured. ``"auto"``: 3
        per main iteration, at most 600; 0 = off).
    ``runtime`` — how a fit runs, never what it computes (not saved with a model, not compared on resume)
        ``checkpoint_steps`` (activation checkpointing of integrator steps; ``"auto"``: the graph
        of one force evaluation is measured once per particle count -- the bytes autograd saves --
        and when a rollout's evaluations would take the kept graph past ``memory_budget_gb`` they
        are all recomputed in the backward pass instead of stored; ``True``/``False``: every / no step),
        ``keep_attention_weights`` (the analytic force's row-blocked attention kernels keep every
        layer's soft-max weights for the backward pass instead of recomputing them, the same
        results to the bit; ``"auto"``: where the rollout's graph with them, measured, stays within
        ``memory_budget_gb``, and in checkpointed steps, which hold one evaluation's graph at a time;
        a compiled force always recomputes them;
        ``True``/``False``: always / never),
        ``memory_budget_gb`` (``"auto"``: an eighth of the GPU's memory, or a twelfth of the
        machine's on a CPU),
        ``checkpoint_every`` / ``checkpoint_path`` (save a resumable checkpoint every N
        iterations), ``progress`` (tqdm bar), ``sync_every`` (iterations between host reads of the
        loss on accelerators; every iteration on CPU).

    Examples
    --------
    >>> cfg = WLMConfig.from_kwargs(hidden=32, p=1)
    >>> cfg.hidden, cfg.p, cfg.heads
    (32, 1, 4)
    >>> cfg.replace(heads=2).heads
    2
    """

    # --- model
    hidden: int = _setting(64, "model")
    heads: int = _setting(4, "model")
    blocks: int = _setting(4, "model")
    ffn: int = _setting(512, "model")
    dropout: float = _setting(0.0, "model")
    time_features: int = _setting(0, "model")
    force_impl: str = _setting("auto", "model")
    dtype: str = _setting("float32", "model")
    zero_init_head: bool = _setting(False, "model")
    quadratic: bool = _setting(True, "model")
    precision: str = _setting("float32", "model")
    compile_force: bool | str = _setting("auto", "model")
    # --- physics
    friction_init: float | str = _setting("auto", "physics")
    integrator: str = _setting("paper", "physics")
    dt: float | None = _setting(None, "physics")
    substeps: int = _setting(1, "physics")
    eval_substeps: int = _setting(5, "physics")
    # --- loss
    p: int = _setting(2, "loss")
    blur: float | None = _setting(None, "loss")
    blur_scale: float = _setting(0.5, "loss")
    scaling: float = _setting(0.9, "loss")
    sinkhorn_backend: str = _setting("auto", "loss")
    sinkhorn_warm_start: bool | int = _setting(False, "loss")
    # --- optimiser
    lr: float = _setting(1e-4, "optimiser")
    lr_schedule: str = _setting("constant", "optimiser")
    lr_warmup: int = _setting(0, "optimiser")
    weight_decay: float = _setting(1e-4, "optimiser")
    friction_lr: float = _setting(1e-2, "optimiser")
    horizon: int | None = _setting(None, "optimiser")
    fixed_horizon: bool = _setting(False, "optimiser")
    horizon_ramp: int | str = _setting("auto", "optimiser")
    particles_per_batch: int | str | None = _setting("auto", "optimiser")
    ema: float | None = _setting(0.999, "optimiser")
    ema_warmup: bool | float = _setting(True, "optimiser")
    grad_clip: float | None = _setting(None, "optimiser")
    rollout_grad: str = _setting("detached", "optimiser")
    anchor: str = _setting("first", "optimiser")
    warm_start: int | str = _setting("auto", "optimiser")
    # --- runtime
    checkpoint_steps: Any = _setting("auto", "runtime")
    keep_attention_weights: bool | str = _setting("auto", "runtime")
    memory_budget_gb: float | str = _setting("auto", "runtime")
    checkpoint_every: int | None = _setting(None, "runtime")
    checkpoint_path: str | None = _setting(None, "runtime")
    progress: bool = _setting(True, "runtime")
    sync_every: int = _setting(10, "runtime")

    def __post_init__(self) -> None:
        def positive_int(name: str, allow_none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        for name in ("hidden", "heads", "blocks", "ffn", "substeps", "eval_substeps", "sync_every"):
            positive_int(name)
        for name in ("horizon", "checkpoint_every"):
            positive_int(name, allow_none=True)
        if self.particles_per_batch != "auto":
            positive_int("particles_per_batch", allow_none=True)
        if isinstance(self.time_features, bool):
            object.__setattr__(self, "time_features", 16 if self.time_features else 0)
        if not isinstance(self.time_features, int) or self.time_features < 0:
            raise ValueError(f"time_features must be an integer >= 0 (or a bool), got {self.time_features!r}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} must be divisible by heads={self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.p not in (1, 2):
            raise ValueError(f"p must be 1 or 2, got {self.p!r}")
        for name in ("lr", "friction_lr", "friction_init", "scaling"):
            v = getattr(self, name)
            if name == "friction_init" and v == "auto":
                continue
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                extra = " or 'auto'" if name == "friction_init" else ""
                raise ValueError(f"{name} must be a positive number{extra}, got {v!r}")
        if not 0 < self.scaling < 1:
            raise ValueError(f"scaling must lie in (0, 1), got {self.scaling}")
        if not (isinstance(self.blur_scale, (int, float)) and not isinstance(self.blur_scale, bool)
                and math.isfinite(self.blur_scale) and self.blur_scale > 0):
            raise ValueError(f"blur_scale must be a finite number > 0, got {self.blur_scale!r}")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        for name in ("dt", "blur", "grad_clip"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number or None, got {v!r}")
        if self.ema in (0, 0.0, False):
            object.__setattr__(self, "ema", None)
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ValueError(f"ema must lie in (0, 1) or be None, got {self.ema!r}")
        for name in ("lr_warmup", "warm_start"):
            v = getattr(self, name)
            if name == "warm_start" and v == "auto":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                extra = " or 'auto'" if name == "warm_start" else ""
                raise ValueError(f"{name} must be an integer >= 0{extra}, got {v!r}")
        ew = self.ema_warmup
        if not (isinstance(ew, bool) or (isinstance(ew, (int, float)) and math.isfinite(ew) and ew > 1)):
            raise ValueError(f"ema_warmup must be True, False or a number > 1, got {ew!r}")
        sw = self.sinkhorn_warm_start
        if not (isinstance(sw, bool) or (isinstance(sw, int) and sw >= 0)):
            raise ValueError(f"sinkhorn_warm_start must be True, False or a number of eps-steps >= 0, got {sw!r}")
        for name in ("zero_init_head", "quadratic"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.horizon_ramp != "auto" and (
            isinstance(self.horizon_ramp, bool) or not isinstance(self.horizon_ramp, int) or self.horizon_ramp < 0
        ):
            raise ValueError(f"horizon_ramp must be an integer >= 0 or 'auto', got {self.horizon_ramp!r}")
        choices = {
            "integrator": ("paper", "exponential"),
            "sinkhorn_backend": ("auto", "tensorized", "geomloss", "online"),
            "rollout_grad": ("detached", "full"),
            "lr_schedule": ("constant", "cosine"),
            "anchor": ("first", "observed"),
            "precision": ("float32", "bf16"),
            "force_impl": ("auto", "autograd", "analytic"),
            "dtype": ("float32", "float64"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.compile_force not in ("auto", True, False):
            raise ValueError(f"compile_force must be 'auto', True or False, got {self.compile_force!r}")
        if self.compile_force is True and self.force_impl == "autograd":
            raise ValueError("compile_force=True needs the analytic force (torch.compile does not support the double "
                             "backward of force_impl='autograd'); use force_impl='auto' or 'analytic'")
        if self.checkpoint_steps not in ("auto", True, False):
            raise ValueError(f"checkpoint_steps must be 'auto', True or False, got {self.checkpoint_steps!r}")
        if self.keep_attention_weights not in ("auto", True, False):
            raise ValueError(f"keep_attention_weights must be 'auto', True or False, got {self.keep_attention_weights!r}")
        if self.checkpoint_every is not None and not self.checkpoint_path:
            raise ValueError("checkpoint_every needs checkpoint_path (where to write the checkpoint)")
        if self.checkpoint_path is not None and os.path.isdir(os.fspath(self.checkpoint_path)):
            raise ValueError(f"checkpoint_path {self.checkpoint_path!r} is a directory; give the path of a file to write")
        m = self.memory_budget_gb
        if m != "auto" and not (isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0):
            raise ValueError(f"memory_budget_gb must be 'auto' or a positive number, got {m!r}")

    def initial_friction(self, dt: float) -> float:
        """The initial learnable friction of a model whose time-grid step is ``dt``.

        What a model starts from when no linear warm start is accepted (or none is run).
        ``friction_init="auto"`` gives ``max(1, 1 / dt)``, the more damped of the two
        :meth:`friction_starts`; a number is used as given.

        Examples
        --------
        >>> auto = WLMConfig(friction_init="auto")
        >>> auto.initial_friction(0.01), auto.initial_friction(1.0), auto.initial_friction(2.5)
        (100.0, 1.0, 1.0)
        >>> WLMConfig(friction_init=1.0).initial_friction(0.01)
        1.0
        """
        return max(self.friction_starts(dt))

    def friction_starts(self, dt: float) -> tuple[float, ...]:
        """The initial frictions the linear warm start is fitted from, for time-grid step ``dt``.

        ``friction_init="auto"`` gives ``1 / dt`` (friction is a rate: one e-folding of a free
        velocity per grid step, whatever unit the times are in) and 1 (the paper's start), one of
        them where they are equal; a number gives itself.

        Examples
        --------
        >>> auto = WLMConfig(friction_init="auto")
        >>> auto.friction_starts(0.4), auto.friction_starts(1.0), WLMConfig(friction_init=0.3).friction_starts(0.4)
        ((2.5, 1.0), (1.0,), (0.3,))
        """
        if self.friction_init == "auto":
            inv = 1.0 / float(dt)
            return (inv,) if inv == 1.0 else (inv, 1.0)
        return (float(self.friction_init),)

    def ema_decay(self, it: int) -> float:
        r"""The decay of the weights' EMA at iteration ``it`` (line 5 of Algorithm 1).

        With a warm-up constant :math:`c` (``ema_warmup``; ``True`` is :math:`c = 10`) it is
        :math:`\min(\beta, (1 + i) / (c + i))` for ``ema`` :math:`\beta`: after :math:`n`
        iterations (as long as the cap :math:`\beta` is not reached) the EMA weighs the weights of
        iteration :math:`i` about as :math:`(i / n)^{c - 1}`, an average over the last
        :math:`\approx 1/c` of the fit, whatever its length. A smaller :math:`c` averages over more
        of it. ``ema_warmup=False`` is a constant :math:`\beta`, as in the paper (at small budgets its
        EMA is still mostly the initialisation).

        Examples
        --------
        >>> cfg = WLMConfig(ema=0.999, ema_warmup=5)
        >>> round(cfg.ema_decay(0), 3), round(cfg.ema_decay(1995), 4), cfg.ema_decay(10 ** 5)
        (0.2, 0.998, 0.999)
        >>> WLMConfig(ema_warmup=True).ema_decay(0) == 0.1, WLMConfig(ema_warmup=False).ema_decay(0)
        (True, 0.999)
        """
        if self.ema is None:
            raise ValueError("ema is None: there is no EMA")
        if self.ema_warmup is False:
            return float(self.ema)
        c = 10.0 if self.ema_warmup is True else float(self.ema_warmup)
        return min(float(self.ema), (1.0 + it) / (c + it))

    def warm_start_iterations(self, n_iter: int) -> int:
        """Iterations of the linear warm start before a fit of ``n_iter`` iterations.

        ``warm_start="auto"`` gives :data:`WARM_START_PER_ITER` x ``n_iter``, at most
        :data:`WARM_START_MAX` (a warm-start iteration costs far less than a main one: linear
        forces, no attention); an integer is used as given.

        Examples
        --------
        >>> cfg = WLMConfig(warm_start="auto")
        >>> cfg.warm_start_iterations(2000), cfg.warm_start_iterations(5), WLMConfig(warm_start=50).warm_start_iterations(5)
        (600, 15, 50)
        """
        if self.warm_start == "auto":
            return int(min(WARM_START_MAX, WARM_START_PER_ITER * n_iter))
        return int(self.warm_start)

    def ramp_iterations(self, n_iter: int, n_intervals: int) -> int:
        """Iterations of the horizon ramp of a main fit of ``n_iter`` iterations on ``n_intervals`` training intervals.

        ``horizon_ramp="auto"``: :data:`AUTO_RAMP_FRACTION` of ``n_iter`` where ``n_intervals``
        exceeds :data:`AUTO_RAMP_MIN_INTERVALS`, else 0 (no ramp). On Boids (49 training
        intervals), the defaults without a ramp ended 2,000 iterations at a training W1 of 2.72
        and a forecast of 3.22, worse than carrying the last snapshot forward (2.47); with the
        largest horizon ramped up over the first 300 of 600 iterations, 0.89 and 1.89
        (docs/benchmarks.md). Time courses of up to ten intervals (the vortices, EB, the
        gradient-flow SDEs, the harmonic well) are not ramped. An integer is used as given
        (also by the linear warm start, which ``"auto"`` leaves unramped).

        Examples
        --------
        >>> cfg = WLMConfig()
        >>> cfg.ramp_iterations(2000, 49), cfg.ramp_iterations(2000, 10), WLMConfig(horizon_ramp=50).ramp_iterations(2000, 3)
        (300, 0, 50)
        """
        if self.horizon_ramp != "auto":
            return int(self.horizon_ramp)
        return int(round(AUTO_RAMP_FRACTION * n_iter)) if n_intervals > AUTO_RAMP_MIN_INTERVALS else 0

    def compiles(self, n_particles: int, n_models: int, n_iter: int, device: Any = "cpu") -> bool:
        """Whether a fit of ``n_iter`` iterations of ``n_models`` models, on sets of at most ``n_particles``, compiles its force.

        ``compile_force="auto"``: on a CPU, with ``force_impl`` ``"auto"`` or ``"analytic"``, where
        ``n_models * n_particles <= AUTO_COMPILE_ROWS`` and ``n_iter >= AUTO_COMPILE_MIN_ITER``.
        There the training force is overhead-bound: with its backward pass, the compiled analytic
        force took 0.56 of autograd's time on 128 particles, 0.53 on 256, 0.64 on 3 models of
        128 and 0.94 of the eager analytic force's on 512 (2 CPU cores, ``python -m
        benchmarks.force_kernels --impls autograd analytic compiled``). With more rows the work is
        in the attention products, and the compiled force was no faster than the eager analytic
        one (3 models of 256: 1.01x), so it is not compiled. A first compilation costs 10-30 s,
        which a long fit repays (docs/performance.md). ``True`` / ``False``: always / never.

        Examples
        --------
        >>> cfg = WLMConfig()
        >>> cfg.compiles(256, 1, 2000), cfg.compiles(256, 3, 2000), cfg.compiles(256, 1, 100), cfg.compiles(256, 1, 2000, "cuda")
        (True, False, False, False)
        >>> WLMConfig(force_impl="autograd").compiles(256, 1, 2000), WLMConfig(compile_force=True).compiles(5000, 8, 1)
        (False, True)
        """
        if self.compile_force != "auto":
            return bool(self.compile_force)
        return (
            _device_kind(device) == "cpu" and self.force_impl != "autograd"
            and n_models * n_particles <= AUTO_COMPILE_ROWS and n_iter >= AUTO_COMPILE_MIN_ITER
        )

    def batch_size(self, device: Any = "cpu", rollout_steps: float | None = None) -> int | None:
        """Particles per snapshot and iteration on ``device`` (``None``: all of them).

        ``particles_per_batch="auto"``: :data:`AUTO_BATCH` of the device type, scaled by
        ``AUTO_BATCH_STEPS / rollout_steps`` where ``rollout_steps`` -- the mean number of
        integrator steps of a training rollout over the horizons it draws -- exceeds
        :data:`AUTO_BATCH_STEPS` (rounded, at least :data:`AUTO_BATCH_MIN`). An iteration then
        costs about as much on a long time course as on a short one: Boids (49 training intervals,
        25 steps on average) trains on 102 birds per snapshot, the other experiments keep 256. On
        Boids, 256 birds took 1,063 s for the default 2,000 iterations on 2 CPU cores, against a
        budget of 600 s (docs/benchmarks.md). A number or ``None`` is used as given.

        Examples
        --------
        >>> WLMConfig().batch_size("cpu"), WLMConfig().batch_size("cuda"), WLMConfig.paper().batch_size()
        (256, 1024, None)
        >>> WLMConfig().batch_size("cpu", rollout_steps=5.5), WLMConfig().batch_size("cpu", rollout_steps=25)
        (256, 102)
        """
        if self.particles_per_batch != "auto":
            return self.particles_per_batch
        kind = _device_kind(device)
        batch = AUTO_BATCH.get(kind, AUTO_BATCH["cpu"])
        if rollout_steps is not None and rollout_steps > AUTO_BATCH_STEPS:
            batch = max(AUTO_BATCH_MIN, int(round(batch * AUTO_BATCH_STEPS / rollout_steps)))
        return batch

    def memory_budget(self, device: Any = "cpu") -> int:
        """Bytes the rollout may keep for the backward pass on ``device`` before steps are checkpointed.

        ``memory_budget_gb="auto"``: :data:`AUTO_MEMORY_FRACTION` of a GPU's total memory, or
        :data:`AUTO_MEMORY_FRACTION_CPU` of the machine's physical memory on a CPU; a number is
        used as given.

        Examples
        --------
        >>> WLMConfig(memory_budget_gb=2).memory_budget("cpu") == 2 * 2**30
        True
        >>> WLMConfig().memory_budget("cpu") > 0
        True
        """
        if self.memory_budget_gb != "auto":
            return int(self.memory_budget_gb * 2**30)
        fraction = AUTO_MEMORY_FRACTION_CPU if _device_kind(device) == "cpu" else AUTO_MEMORY_FRACTION
        return int(fraction * device_memory(device))

    @classmethod
    def paper(cls, **overrides: Any) -> "WLMConfig":
        """The paper's settings (appendix C of Guan et al., 2026; the authors' code), with ``overrides``.

        Every result-relevant setting is pinned here explicitly, so this preset does not move when
        the library's defaults do. The paper's per-experiment changes (architecture of the vortex
        models, ``p = 1`` for EB and Boids, ...) and iteration counts are listed in the
        documentation (``docs/method.md``) and used by the benchmark harness' ``paper`` profile.

        Examples
        --------
        >>> cfg = WLMConfig.paper(p=1)
        >>> cfg.lr, cfg.hidden, cfg.blocks, cfg.p, cfg.anchor
        (0.0001, 64, 4, 1, 'first')
        """
        return cls.from_kwargs(**{**PAPER_SETTINGS, **overrides})

    @classmethod
    def groups(cls) -> dict[str, list[str]]:
        """The names of the settings of every group (see :data:`GROUPS`).

        Examples
        --------
        >>> WLMConfig.groups()["loss"]
        ['p', 'blur', 'blur_scale', 'scaling', 'sinkhorn_backend', 'sinkhorn_warm_start']
        """
        out: dict[str, list[str]] = {g: [] for g in GROUPS}
        for f in fields(cls):
            out[f.metadata["group"]].append(f.name)
        return out

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "WLMConfig":
        """Build a config from keyword arguments, rejecting unknown keys with a suggestion."""
        known = {f.name for f in fields(cls)}
        for key in kwargs:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown config key {key!r}{hint} (known keys: {', '.join(sorted(known))})")
        return cls(**kwargs)

    @classmethod
    def from_saved(cls, settings: dict[str, Any], source: str = "the saved settings") -> "WLMConfig":
        """Rebuild the config stored with a model or checkpoint.

        Settings this version does not know (written by a newer version) are dropped with a
        ``UserWarning`` naming them and ``source``; invalid values raise ``ValueError`` naming
        ``source``.

        Examples
        --------
        >>> WLMConfig.from_saved({"hidden": 32}).hidden
        32
        """
        if not isinstance(settings, dict):
            raise ValueError(f"{source}: the config must be a mapping of settings, got {type(settings).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in settings if k not in known)
        if unknown:
            warnings.warn(
                f"{source}: ignoring settings this version of scwlm does not know: {', '.join(unknown)}",
                UserWarning, stacklevel=2,
            )
        try:
            return cls(**{k: v for k, v in settings.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None

    def to_dict(self, runtime: bool = False) -> dict[str, Any]:
        """JSON-serialisable dictionary of the settings (the ``"runtime"`` group only if asked).

        Examples
        --------
        >>> "progress" in WLMConfig().to_dict(), "progress" in WLMConfig().to_dict(runtime=True)
        (False, True)
        """
        return {
            f.name: getattr(self, f.name) for f in fields(self) if runtime or f.metadata["group"] != "runtime"
        }

    def replace(self, **kwargs: Any) -> "WLMConfig":
        """A copy with some settings changed (validated like :meth:`from_kwargs`).

        Examples
        --------
        >>> WLMConfig().replace(lr=1e-3).lr
        0.001
        """
        known = {f.name for f in fields(self)}
        bad = [k for k in kwargs if k not in known]
        if bad:
            type(self).from_kwargs(**{bad[0]: kwargs[bad[0]]})  # raises with a suggestion
        return dataclasses.replace(self, **kwargs)


#: ``warm_start="auto"``: warm-start iterations per main iteration, and their maximum
WARM_START_PER_ITER, WARM_START_MAX = 3, 600

#: particles per snapshot and iteration of ``particles_per_batch="auto"``, by device type
AUTO_BATCH: dict[str, int] = {"cpu": 256, "cuda": 1024, "mps": 512}
#: ``particles_per_batch="auto"`` (:meth:`WLMConfig.batch_size`): the mean integrator steps of a
#: training rollout above which fewer particles are drawn per snapshot, and the fewest drawn
AUTO_BATCH_STEPS, AUTO_BATCH_MIN = 10, 64

#: ``horizon_ramp="auto"`` (:meth:`WLMConfig.ramp_iterations`): the share of the main fit's iterations
#: over which the largest horizon grows, and the most training intervals that are not ramped
AUTO_RAMP_FRACTION, AUTO_RAMP_MIN_INTERVALS = 0.15, 10

#: ``compile_force="auto"`` (:meth:`WLMConfig.compiles`): the most models x particles per set, and the
#: fewest iterations, of a fit whose training force is compiled
AUTO_COMPILE_ROWS, AUTO_COMPILE_MIN_ITER = 512, 1000

#: ``memory_budget_gb="auto"``: the share of a GPU's memory that the rollout's graph may keep
AUTO_MEMORY_FRACTION = 0.125
#: the same on a CPU, where the resident memory peaks well above the kept graph (the process
#: itself, allocator fragmentation, the transients of the backward pass): Boids k = 49, 2.7 GB
#: kept, peaks at 4.8 GB (16.5 s/iter; checkpointed 1.5 GB, 21.3 s/iter). A twelfth (2 GB on a
#: 24 GB machine) checkpoints that rollout and keeps its peak under 4 GB (docs/performance.md)
AUTO_MEMORY_FRACTION_CPU = 1.0 / 12

#: memory assumed where the device's cannot be read (Windows CPUs)
_FALLBACK_MEMORY = 16 * 2**30


def _device_kind(device: Any) -> str:
    """``"cpu"``, ``"cuda"``, ... of a :class:`torch.device` or a device string such as ``"cuda:1"``."""
    return device.type if hasattr(device, "type") else str(device).split(":")[0]


def device_memory(device: Any = "cpu") -> int:
    """Total memory of ``device`` in bytes: a GPU's own, else the machine's physical memory.

    Examples
    --------
    >>> device_memory("cpu") > 2**28
    True
    """
    if _device_kind(device) == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_MEMORY


#: the paper's settings for every setting that changes a fit's result (see :meth:`WLMConfig.paper`)
PAPER_SETTINGS: dict[str, Any] = dict(
    # model: set attention, 4 pre-LN blocks of width 64, 4 heads, feed-forward 512, output layer
    # initialised like PyTorch's nn.Linear
    # (force_impl: how the forces are computed, not which; the analytic formula equals autograd to
    # rounding, tests/test_potential.py)
    hidden=64, heads=4, blocks=4, ffn=512, dropout=0.0, time_features=0, force_impl="auto", dtype="float32",
    zero_init_head=False, quadratic=False, precision="float32", compile_force="auto",
    # physics: learnable friction from 1, the paper's damped leapfrog, 1 step per grid step in
    # training and 5 at evaluation
    friction_init=1.0, integrator="paper", dt=None, substeps=1, eval_substeps=5,
    # loss: debiased Sinkhorn, p = 2, blur from the data, GeomLoss' scaling 0.9
    p=2, blur=None, blur_scale=0.5, scaling=0.9, sinkhorn_backend="auto", sinkhorn_warm_start=False,
    # optimiser: AdamW at a constant 1e-4 (friction 1e-2), horizons uniform over all training
    # snapshots, rollouts from t0 on all particles, EMA 0.999 without warm-up, positions detached
    # before every force evaluation (as in the authors' code)
    lr=1e-4, lr_schedule="constant", lr_warmup=0, weight_decay=1e-4, friction_lr=1e-2, horizon=None,
    fixed_horizon=False, horizon_ramp=0, particles_per_batch=None, ema=0.999, ema_warmup=False, grad_clip=None,
    rollout_grad="detached", anchor="first", warm_start=0,
)
