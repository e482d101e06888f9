"""Training configuration: the paper's defaults in one validated dataclass."""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["WLMConfig"]


@dataclass
class WLMConfig:
    """Settings of a WLM fit; defaults are the paper's (appendix C of Guan et al., 2026).

    Potential network
        ``hidden`` (64), ``heads`` (4), ``blocks`` (4), ``ffn`` (512), ``dropout`` (0),
        ``time_features`` (0 = time-independent; the paper uses 16 when time-dependent).
    Mechanics
        ``friction_init`` (1.0, initial learnable friction), ``integrator`` (``"paper"`` damped
        leapfrog or ``"exponential"``), ``dt`` (time-grid step; ``None`` = smallest gap between
        training times), ``substeps`` (1 integrator step per ``dt`` in training),
        ``eval_substeps`` (5 at evaluation).
    Loss
        ``p`` (2), ``blur`` (``None`` = 0.5 x median pairwise distance, clamped to [1e-3, 10]),
        ``scaling`` (0.9), ``sinkhorn_backend`` (``"auto"``).
    Training
        ``lr`` (1e-4), ``weight_decay`` (1e-4), ``friction_lr`` (1e-2), ``horizon`` (largest rollout
        horizon K; ``None`` = all training snapshots), ``fixed_horizon`` (always roll out to the
        largest horizon instead of sampling it; used by the speed benchmark), ``horizon_ramp``
        (iterations over which the largest horizon grows linearly from 1; 0 = off), ``particles_per_batch`` (``None`` = all),
        ``ema`` (0.999; ``None`` disables), ``ema_warmup`` (use ``min(ema, (1+i)/(10+i))`` at
        iteration ``i``, which only matters for short runs), ``grad_clip`` (per-model norm;
        ``None`` = off), ``rollout_grad`` (``"detached"``: positions are detached before every
        force evaluation, as in the authors' code; ``"full"``: exact gradient of the discretised
        rollout), ``force_impl`` (``"autograd"`` or ``"analytic"``), ``checkpoint_steps``
        (activation checkpointing of integrator steps: ``"auto"`` when the estimated memory exceeds
        ``memory_budget_gb``, or ``True``/``False``), ``dtype`` (``"float32"``).
    Bookkeeping
        ``checkpoint_every`` / ``checkpoint_path`` (save a resumable checkpoint every N
        iterations), ``progress`` (tqdm bar), ``sync_every`` (iterations between host reads of the
        loss on accelerators; every iteration on CPU).

    Examples
    --------
    >>> cfg = WLMConfig.from_kwargs(hidden=32, p=1)
    >>> cfg.hidden, cfg.p, cfg.heads
    (32, 1, 4)
    """

    hidden: int = 64
    heads: int = 4
    blocks: int = 4
    ffn: int = 512
    dropout: float = 0.0
    time_features: int = 0
    friction_init: float = 1.0
    integrator: str = "paper"
    dt: float | None = None
    substeps: int = 1
    eval_substeps: int = 5
    p: int = 2
    blur: float | None = None
    scaling: float = 0.9
    sinkhorn_backend: str = "auto"
    lr: float = 1e-4
    weight_decay: float = 1e-4
    friction_lr: float = 1e-2
    horizon: int | None = None
    fixed_horizon: bool = False
    horizon_ramp: int = 0
    particles_per_batch: int | None = None
    ema: float | None = 0.999
    ema_warmup: bool = True
    grad_clip: float | None = None
    rollout_grad: str = "detached"
    force_impl: str = "autograd"
    checkpoint_steps: Any = "auto"
    memory_budget_gb: float = 4.0
    dtype: str = "float32"
    checkpoint_every: int | None = None
    checkpoint_path: str | None = None
    progress: bool = True
    sync_every: int = 10

    def __post_init__(self) -> None:
        def positive_int(name: str, allow_none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        for name in ("hidden", "heads", "blocks", "ffn", "substeps", "eval_substeps", "sync_every"):
            positive_int(name)
        for name in ("horizon", "particles_per_batch", "checkpoint_every"):
            positive_int(name, allow_none=True)
        if isinstance(self.time_features, bool):
            self.time_features = 16 if self.time_features else 0
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
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if not 0 < self.scaling < 1:
            raise ValueError(f"scaling must lie in (0, 1), got {self.scaling}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("dt", "blur", "grad_clip"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number or None, got {v!r}")
        if self.ema in (0, 0.0, False):
            self.ema = None
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ValueError(f"ema must lie in (0, 1) or be None, got {self.ema!r}")
        if not isinstance(self.horizon_ramp, int) or self.horizon_ramp < 0:
            raise ValueError(f"horizon_ramp must be an integer >= 0, got {self.horizon_ramp!r}")
        choices = {
            "integrator": ("paper", "exponential"),
            "sinkhorn_backend": ("auto", "tensorized", "online"),
            "rollout_grad": ("detached", "full"),
            "force_impl": ("autograd", "analytic"),
            "dtype": ("float32", "float64"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.checkpoint_steps not in ("auto", True, False):
            raise ValueError(f"checkpoint_steps must be 'auto', True or False, got {self.checkpoint_steps!r}")
        if self.checkpoint_every is not None and not self.checkpoint_path:
            raise ValueError("checkpoint_every needs checkpoint_path (where to write the checkpoint)")

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary of all settings."""
        return asdict(self)

    def replace(self, **kwargs: Any) -> "WLMConfig":
        """A copy with some settings changed (validated like :meth:`from_kwargs`)."""
        d = self.to_dict()
        d.update(kwargs)
        return type(self).from_kwargs(**d)
