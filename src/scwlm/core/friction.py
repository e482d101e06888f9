r"""Friction :math:`\gamma \ge 0`: fixed, or learned through :math:`\gamma = e^{\theta}`."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Friction"]


class Friction(nn.Module):
    r"""Per-model friction coefficients.

    Parameters
    ----------
    init
        Initial (or fixed) :math:`\gamma` of each model.
    learnable
        Whether each model learns its friction. A learnable friction is parametrised as
        :math:`\gamma = \exp(\theta)` (so it stays positive); its initial value must be positive.
        A fixed friction may be zero.

    Examples
    --------
    >>> fr = Friction([1.0, 0.0], learnable=[True, False])
    >>> [round(g, 3) for g in fr.values()]
    [1.0, 0.0]
    """

    def __init__(self, init: Sequence[float], learnable: Sequence[bool]) -> None:
        super().__init__()
        init = [float(g) for g in init]
        learnable = [bool(b) for b in learnable]
        if len(init) != len(learnable):
            raise ValueError("init and learnable must have the same length")
        for g, lb in zip(init, learnable):
            if not math.isfinite(g) or g < 0:
                raise ValueError(f"friction must be a finite number >= 0, got {g}")
            if lb and g <= 0:
                raise ValueError("a learnable friction is parametrised as exp(theta): its initial value must be > 0")
        theta = [math.log(g) if lb else 0.0 for g, lb in zip(init, learnable)]
        self.log_gamma = nn.Parameter(torch.tensor(theta, dtype=torch.get_default_dtype()))
        self.register_buffer("fixed", torch.tensor(init, dtype=torch.get_default_dtype()))
        self.register_buffer("learnable", torch.tensor(learnable))

    def forward(self) -> Tensor:
        """Friction of every model, shape ``(E,)``; differentiable for the learnable ones."""
        return torch.where(self.learnable, torch.exp(self.log_gamma), self.fixed)

    def values(self) -> list[float]:
        """Current friction of every model as Python floats."""
        return [float(g) for g in self.forward().detach().cpu()]

    @property
    def any_learnable(self) -> bool:
        """Whether at least one model learns its friction."""
        return bool(self.learnable.any())
