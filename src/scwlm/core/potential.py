r"""Set-attention potential energy :math:`\Psi_\theta(x_1, \dots, x_N[, t])`.

The network follows the paper (Guan, Atanackovic & Neklyudov, 2026, appendix C): every particle
is embedded (its coordinates, optionally concatenated with a small time embedding), passed through
``blocks`` pre-LayerNorm transformer blocks that attend over the whole set of particles, and mapped
to a scalar; the population energy is the sum over particles,

.. math::
    \Psi_\theta(x_1, \dots, x_N) = \sum_i \phi_\theta(x_i \mid x_1, \dots, x_N),

so that the force on particle :math:`j` is :math:`-\nabla_{x_j}\Psi_\theta` (Proposition 3.1 of the
paper). There is no positional encoding, hence the forces are permutation-equivariant.

Every parameter carries a leading *model* axis of size ``n_models``: ``E`` independent potentials
are evaluated in the same kernels (batched ensembles). A single model is ``n_models=1``.

Two ways of computing forces are provided and tested against each other, and a rule that chooses:

``"autograd"``
    :math:`-\nabla_x \Psi` by reverse-mode autograd; training needs ``create_graph=True`` and thus
    a double backward through attention. This is the reference path.
``"analytic"``
    the gradient written out as a forward formula (the backward pass of the network spelled out
    with ordinary tensor operations). Training then only needs a first-order backward. Its
    attention layers, and their gradients, run in the row-blocked kernels of
    :mod:`scwlm.core.attention` (hand-written backward passes; no ``N x N`` tensor kept for the
    backward pass), except under bf16 autocast, where the plain operations are used.
``"auto"`` (the default)
    ``"analytic"`` for sets of :data:`AUTO_ANALYTIC_PARTICLES` particles or more, where it keeps far
    less memory and is faster (since the base-2 exponentials: 1.4x at 512 particles, 1.2-2.5x at
    1000); ``"autograd"`` below.

Reduced precision (``precision="bf16"`` of :meth:`SetPotential.energy` and
:meth:`SetPotential.forces`; the default ``"float32"`` computes exactly as without the option):
the matrix products of the attention and feed-forward layers (the ``qkv``, output and
feed-forward projections, :math:`QK^\top` and :math:`PV`, and in the analytic force their
backward products) run under ``torch.autocast(device_type, dtype=torch.bfloat16)``; every product
is cast back to the network's dtype at once, so LayerNorm, soft-max, GELU, the residual stream and
every reduction stay in float32, and the input embedding, the time embedding, the output layer and
the quadratic term (a negligible share of the arithmetic) are not autocast.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ._exponentials import LOG2E
from .attention import WeightsPool, attention, attention_grad, new_weights

__all__ = ["SetPotential", "DropoutMasks", "PRECISIONS", "FORCE_IMPLS", "AUTO_ANALYTIC_PARTICLES", "resolve_force_impl"]

#: the accepted ``precision`` values of :meth:`SetPotential.energy` / :meth:`SetPotential.forces`
PRECISIONS = ("float32", "bf16")

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_LN_EPS = 1e-5

#: the accepted ``impl`` values of :meth:`SetPotential.forces`
FORCE_IMPLS = ("auto", "analytic", "autograd")
#: ``impl="auto"`` takes the analytic force from this many particles per set on, autograd below. From
#: here on the analytic force keeps well under half of autograd's graph for the backward pass and is
#: faster; below, the graphs are small and the two take about the same time.
#: ``python -m benchmarks.force_kernels`` (one force evaluation and its backward pass, d = 2, 2 CPU
#: cores), autograd / analytic time, 2026-12-07 (base-2 exponentials, one-kernel GELU step), one and
#: three models: 0.85 / 1.17 at 128 particles, 1.09 / 1.24 at 256, 1.42 / 1.45 at 512, 1.18 / 2.46 at
#: 1000. Switching at 256 instead changed nothing measurable in whole default fits at 256 particles
#: (EB, Boids; docs/performance.md), so the switch stays here.
AUTO_ANALYTIC_PARTICLES = 512


def resolve_force_impl(impl: str, n_particles: int) -> str:
    """The force implementation that ``impl`` means for sets of ``n_particles``.

    Examples
    --------
    >>> resolve_force_impl("auto", 256), resolve_force_impl("auto", 1000), resolve_force_impl("autograd", 1000)
    ('autograd', 'analytic', 'autograd')
    """
    if impl not in FORCE_IMPLS:
        raise ValueError(f"unknown force implementation {impl!r}; use one of {FORCE_IMPLS}")
    if impl == "auto":
        return "analytic" if n_particles >= AUTO_ANALYTIC_PARTICLES else "autograd"
    return impl


#: whether the analytic force runs its attention layers through the row-blocked kernels of
#: :mod:`scwlm.core.attention` (float32 / float64) instead of plain tensor operations; the plain
#: path stays for bf16 autocast and as the reference of the speed benchmark's ``unfused`` variant
FUSED_ATTENTION = True


def _uniform(shape: Sequence[int], bound: float, gen: torch.Generator | None) -> Tensor:
    return (torch.rand(tuple(shape), generator=gen, dtype=torch.float64) * 2.0 - 1.0) * bound


def _linear(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Batched ``x @ w.T + b`` for ``x (E, N, i)``, ``w (E, o, i)``, ``b (E, o)``."""
    return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


def _layer_norm_stats(h: Tensor) -> tuple[Tensor, Tensor]:
    mu = h.mean(-1, keepdim=True)
    hc = h - mu
    rstd = torch.rsqrt((hc * hc).mean(-1, keepdim=True) + _LN_EPS)
    return hc * rstd, rstd


def _layer_norm_backward(xhat: Tensor, rstd: Tensor, weight: Tensor, dy: Tensor) -> Tensor:
    g = dy * weight.unsqueeze(1)
    return rstd * (g - g.mean(-1, keepdim=True) - xhat * (g * xhat).mean(-1, keepdim=True))


class _GeluBackward(torch.autograd.Function):
    r"""``dg * gelu'(u)`` with :math:`\mathrm{gelu}'(u) = \Phi(u) + u\,\phi(u)`, differentiable once.

    The forward pass is PyTorch's own vectorised ``gelu_backward`` kernel (one pass, and fast
    where :math:`\phi(u)` underflows); the backward pass uses
    :math:`\mathrm{gelu}''(u) = \phi(u)\,(2 - u^2)`, with :math:`\phi` taken in base 2
    (:mod:`scwlm.core._exponentials`). Written as element-wise tensor operations instead, the
    same formulas and their autograd backward (``erf``'s derivative included) ran ``torch.exp``
    on values whose results underflow, which made them the largest element-wise cost of a Boids
    iteration (``docs/performance.md``).
    """

    @staticmethod
    def forward(ctx, dg: Tensor, u: Tensor) -> Tensor:
        ctx.save_for_backward(dg, u)
        return torch.ops.aten.gelu_backward(dg, u)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        dg, u = ctx.saved_tensors
        g_dg = torch.ops.aten.gelu_backward(grad, u) if ctx.needs_input_grad[0] else None
        g_u = None
        if ctx.needs_input_grad[1]:
            u2 = u * u
            phi = (u2 * (-0.5 * LOG2E)).exp2_().mul_(_INV_SQRT_2PI)
            g_u = grad * dg * phi * u2.neg_().add_(2.0)
        return g_dg, g_u


def _gelu_backward(dg: Tensor, u: Tensor) -> Tensor:
    """``dg * gelu'(u)`` (the GELU's vector-Jacobian product), differentiable once in ``dg`` and ``u``."""
    return _GeluBackward.apply(dg, u)


def _low_precision(precision: str, x: Tensor) -> bool:
    """Whether ``precision`` asks for bf16 products (validated against ``x``)."""
    if precision == "float32":
        return False
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}; use one of {PRECISIONS}")
    if x.dtype != torch.float32:
        raise ValueError(f"precision='bf16' autocasts float32 products; got particles of dtype {x.dtype}")
    return True


def _autocast_on(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (``torch.is_autocast_enabled(device_type)`` from torch 2.4 on)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _products(x: Tensor, low: bool):
    """Context of the attention / feed-forward products: bf16 autocast when ``low``, else nothing."""
    if not low:
        return contextlib.nullcontext()
    return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16)


def quadratic_forces(x: Tensor, quad_w: Tensor, quad_b: Tensor) -> Tensor:
    r"""Forces :math:`-(A x + b)` of the one-body term :math:`\tfrac12 x^\top A x + b^\top x`, ``A = sym(quad_w)``.

    ``x (E, N, d)``, ``quad_w (E, d, d)``, ``quad_b (E, d)``.
    """
    A = 0.5 * (quad_w + quad_w.transpose(1, 2))
    return -(x @ A + quad_b.unsqueeze(1))


@dataclass
class DropoutMasks:
    """Dropout masks of one force evaluation (already scaled by ``1 / (1 - p)``).

    ``attention[b]`` multiplies the attention weights of block ``b`` (shape ``(E, heads, N, N)``),
    ``hidden[b]`` the feed-forward activation (``(E, N, ffn)``) and ``output[b]`` the feed-forward
    output (``(E, N, hidden)``), exactly where :class:`torch.nn.MultiheadAttention` and the
    feed-forward ``nn.Dropout`` layers of the paper's network apply them.
    """

    attention: list[Tensor]
    hidden: list[Tensor]
    output: list[Tensor]


class SetPotential(nn.Module):
    """Permutation-invariant population potential energy with set attention.

    Parameters
    ----------
    dim
        Dimension ``d`` of the particles.
    hidden, heads, blocks, ffn
        Width of the token embedding, attention heads, number of transformer blocks and inner
        width of the feed-forward layers (paper defaults 64, 4, 4, 512).
    dropout
        Dropout probability on attention weights and feed-forward layers (training only).
    time_features
        Size of the time embedding ``Linear(1, k) - SiLU - Linear(k, k)`` concatenated to every
        particle; ``0`` disables time dependence.
    n_models
        Number of independent models evaluated together (ensemble axis ``E``).
    generators
        One :class:`torch.Generator` per model for the initialisation (defaults to the global RNG).
        Model ``e`` is initialised from ``generators[e]`` alone, so a model of an ensemble equals
        the model fitted alone with the same generator state.

    Examples
    --------
    >>> import torch
    >>> net = SetPotential(2, hidden=16, heads=2, blocks=1, ffn=32)
    >>> x = torch.randn(1, 10, 2)
    >>> net.forces(x).shape
    torch.Size([1, 10, 2])
    """

    def __init__(
        self,
        dim: int,
        *,
        hidden: int = 64,
        heads: int = 4,
        blocks: int = 4,
        ffn: int = 512,
        dropout: float = 0.0,
        time_features: int = 0,
        quadratic: bool = False,
        n_models: int = 1,
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.dim, self.hidden, self.heads, self.n_blocks = int(dim), int(hidden), int(heads), int(blocks)
        self.ffn, self.dropout, self.time_features, self.n_models = int(ffn), float(dropout), int(time_features), int(n_models)
        if generators is None:
            generators = [None] * self.n_models
        if len(generators) != self.n_models:
            raise ValueError(f"need {self.n_models} generators, got {len(generators)}")
        per_model = [self._init_one(g) for g in generators]
        for name in per_model[0]:
            stacked = torch.stack([p[name] for p in per_model]).to(torch.get_default_dtype())
            self.register_parameter(name, nn.Parameter(stacked))
        self.quadratic = bool(quadratic)
        if self.quadratic:  # a one-body term 1/2 x'Ax + b'x per particle, starting at zero
            E, d = self.n_models, self.dim
            self.quad_w = nn.Parameter(torch.zeros(E, d, d, dtype=torch.get_default_dtype()))
            self.quad_b = nn.Parameter(torch.zeros(E, d, dtype=torch.get_default_dtype()))

    # ------------------------------------------------------------------ initialisation
    def _init_one(self, gen: torch.Generator | None) -> dict[str, Tensor]:
        """Parameters of one model, drawn like PyTorch's ``nn.Linear`` / ``nn.MultiheadAttention``."""
        H, d, k, f = self.hidden, self.dim, self.time_features, self.ffn
        p: dict[str, Tensor] = {}
        if k:
            p["time_w1"] = _uniform((k, 1), 1.0, gen)
            p["time_b1"] = _uniform((k,), 1.0, gen)
            p["time_w2"] = _uniform((k, k), 1.0 / math.sqrt(k), gen)
            p["time_b2"] = _uniform((k,), 1.0 / math.sqrt(k), gen)
        p["in_w"] = _uniform((H, d + k), 1.0 / math.sqrt(d + k), gen)
        p["in_b"] = _uniform((H,), 1.0 / math.sqrt(d + k), gen)
        for b in range(self.n_blocks):
            p[f"b{b}_ln1_w"] = torch.ones(H, dtype=torch.float64)
            p[f"b{b}_ln1_b"] = torch.zeros(H, dtype=torch.float64)
            p[f"b{b}_qkv_w"] = _uniform((3 * H, H), math.sqrt(6.0 / (4 * H)), gen)  # xavier_uniform
            p[f"b{b}_qkv_b"] = torch.zeros(3 * H, dtype=torch.float64)
            p[f"b{b}_out_w"] = _uniform((H, H), 1.0 / math.sqrt(H), gen)
            p[f"b{b}_out_b"] = torch.zeros(H, dtype=torch.float64)
            p[f"b{b}_ln2_w"] = torch.ones(H, dtype=torch.float64)
            p[f"b{b}_ln2_b"] = torch.zeros(H, dtype=torch.float64)
            p[f"b{b}_f1_w"] = _uniform((f, H), 1.0 / math.sqrt(H), gen)
            p[f"b{b}_f1_b"] = _uniform((f,), 1.0 / math.sqrt(H), gen)
            p[f"b{b}_f2_w"] = _uniform((H, f), 1.0 / math.sqrt(f), gen)
            p[f"b{b}_f2_b"] = _uniform((H,), 1.0 / math.sqrt(f), gen)
        p["head_w"] = _uniform((1, H), 1.0 / math.sqrt(H), gen)
        p["head_b"] = _uniform((1,), 1.0 / math.sqrt(H), gen)
        return p

    def architecture(self) -> dict:
        """Keyword arguments that rebuild this network (without its weights)."""
        return dict(
            dim=self.dim, hidden=self.hidden, heads=self.heads, blocks=self.n_blocks, ffn=self.ffn,
            dropout=self.dropout, time_features=self.time_features, n_models=self.n_models,
            **({"quadratic": True} if self.quadratic else {}),
        )

    def _p(self, name: str, block: int | None = None) -> Tensor:
        return getattr(self, name if block is None else f"b{block}_{name}")

    # ------------------------------------------------------------------ pieces
    def _time_bias(self, t: Tensor | float | None, like: Tensor) -> Tensor:
        """Input-layer bias ``(E, 1, H)`` including the time embedding, if any."""
        b = self.in_b.unsqueeze(1)
        if not self.time_features:
            return b
        if t is None:
            raise ValueError("this potential has time features: pass the time t")
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
        t = t.reshape(-1, 1).expand(self.n_models, 1)  # (E, 1)
        emb = F.silu(t * self.time_w1[..., 0] + self.time_b1)  # (E, k)
        emb = torch.einsum("ek,ejk->ej", emb, self.time_w2) + self.time_b2  # (E, k)
        w_t = self.in_w[:, :, self.dim:]  # (E, H, k)
        return b + torch.einsum("ek,ehk->eh", emb, w_t).unsqueeze(1)

    def _embed(self, x: Tensor, t: Tensor | float | None) -> Tensor:
        return _linear(x, self.in_w[:, :, : self.dim], self._time_bias(t, x).squeeze(1))

    def _split_heads(self, qkv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        E, N, _ = qkv.shape
        qkv = qkv.view(E, N, 3, self.heads, self.hidden // self.heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]  # (E, heads, N, dh)

    def _merge_heads(self, o: Tensor) -> Tensor:
        E, nh, N, dh = o.shape
        return o.permute(0, 2, 1, 3).reshape(E, N, nh * dh)

    def _check(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[0] != self.n_models or x.shape[2] != self.dim:
            raise ValueError(
                f"expected particles of shape (n_models={self.n_models}, N, dim={self.dim}), got {tuple(x.shape)}"
            )

    # ------------------------------------------------------------------ energy
    def energy(
        self,
        x: Tensor,
        t: Tensor | float | None = None,
        masks: DropoutMasks | None = None,
        *,
        precision: str = "float32",
    ) -> Tensor:
        """Per-particle energies ``(E, N)``; the potential is their sum over particles.

        Parameters
        ----------
        x
            Particles ``(E, N, d)``.
        t
            Time (scalar or ``(E,)``), needed when the network has time features.
        masks
            Dropout masks (training only), see :meth:`sample_masks`.
        precision
            ``"float32"`` (default) or ``"bf16"``: bf16 autocast of the attention and feed-forward
            products, everything else in float32 (see the module docstring).

        Returns
        -------
        Tensor
            The energy of every particle, ``(E, N)``.
        """
        self._check(x)
        low, dt = _low_precision(precision, x), x.dtype
        scale = 1.0 / math.sqrt(self.hidden // self.heads)
        h = self._embed(x, t)
        with _products(x, low):  # every product is cast back to dt at once (no-ops in float32)
            for b in range(self.n_blocks):
                a = F.layer_norm(h, (self.hidden,)) * self._p("ln1_w", b).unsqueeze(1) + self._p("ln1_b", b).unsqueeze(1)
                q, k, v = self._split_heads(_linear(a, self._p("qkv_w", b), self._p("qkv_b", b)).to(dt))
                P = torch.softmax(((q * scale) @ k.transpose(-1, -2)).to(dt), dim=-1)
                if masks is not None:
                    P = P * masks.attention[b]
                h = h + _linear(self._merge_heads((P @ v).to(dt)), self._p("out_w", b), self._p("out_b", b)).to(dt)
                c = F.layer_norm(h, (self.hidden,)) * self._p("ln2_w", b).unsqueeze(1) + self._p("ln2_b", b).unsqueeze(1)
                g = F.gelu(_linear(c, self._p("f1_w", b), self._p("f1_b", b)).to(dt))
                if masks is not None:
                    g = g * masks.hidden[b]
                f = _linear(g, self._p("f2_w", b), self._p("f2_b", b)).to(dt)
                if masks is not None:
                    f = f * masks.output[b]
                h = h + f
        out = _linear(h, self.head_w, self.head_b).squeeze(-1)
        if self.quadratic:
            A = 0.5 * (self.quad_w + self.quad_w.transpose(1, 2))
            out = out + 0.5 * ((x @ A) * x).sum(-1) + (x * self.quad_b.unsqueeze(1)).sum(-1)
        return out

    def forward(
        self, x: Tensor, t: Tensor | float | None = None, masks: DropoutMasks | None = None, *, precision: str = "float32"
    ) -> Tensor:
        """Total potential energy ``(E,)`` of each model's particle set ``x (E, N, d)``."""
        return self.energy(x, t, masks, precision=precision).sum(-1)

    # ------------------------------------------------------------------ forces
    def forces(
        self,
        x: Tensor,
        t: Tensor | float | None = None,
        *,
        masks: DropoutMasks | None = None,
        create_graph: bool = False,
        impl: str = "auto",
        precision: str = "float32",
        keep_weights: bool | WeightsPool = False,
    ) -> Tensor:
        """Forces :math:`-\\nabla_{x_j}\\Psi_\\theta` on every particle, shape ``(E, N, d)``.

        With ``create_graph=True`` the result is differentiable with respect to the parameters
        (and to ``x`` when ``x`` requires grad), as training needs.

        Parameters
        ----------
        x
            Particles ``(E, N, d)``.
        t
            Time (scalar or ``(E,)``), needed when the network has time features.
        masks
            Dropout masks (training only).
        create_graph
            Keep the graph of the force (for training).
        impl
            ``"autograd"`` (reference), ``"analytic"`` (forward formula of the gradient, with the
            row-blocked attention kernels of :mod:`scwlm.core.attention`) or ``"auto"`` (the
            analytic force from :data:`AUTO_ANALYTIC_PARTICLES` particles on, where it keeps far
            less memory and is faster, autograd below).
        precision
            ``"float32"`` (default) or ``"bf16"`` (bf16 autocast of the attention and
            feed-forward products, including those of the gradient; see the module docstring).
        keep_weights
            Keep every attention layer's soft-max weights for the backward pass of training
            instead of recomputing them there (the analytic force's row-blocked kernels only:
            :func:`~scwlm.core.attention.new_weights`, or buffers of a
            :class:`~scwlm.core.attention.WeightsPool` reused across calls). The result is the same
            to the bit; the graph keeps more memory and its backward pass does less arithmetic.

        Returns
        -------
        Tensor
            The forces ``(E, N, d)``.
        """
        impl = resolve_force_impl(impl, x.shape[-2])
        if impl == "analytic":
            if not create_graph:
                with torch.no_grad():
                    return self._forces_analytic(x, t, masks, precision)
            return self._forces_analytic(x, t, masks, precision, keep_weights)
        with torch.enable_grad():
            xr = x if (x.requires_grad and create_graph) else x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.energy(xr, t, masks, precision=precision).sum(), xr, create_graph=create_graph)
        return -g if create_graph else -g.detach()

    def _forces_analytic(
        self, x: Tensor, t: Tensor | float | None, masks: DropoutMasks | None, precision: str = "float32",
        keep_weights: bool | WeightsPool = False,
    ) -> Tensor:
        self._check(x)
        low, dt = _low_precision(precision, x), x.dtype
        h = self._embed(x, t)
        with _products(x, low):  # every product is cast back to dt at once (no-ops in float32)
            dh = self._analytic_blocks(h, masks, dt, keep_weights)
        out = -(dh @ self.in_w[:, :, : self.dim])
        if self.quadratic:
            out = out + quadratic_forces(x, self.quad_w, self.quad_b)
        return out

    def _analytic_blocks(
        self, h: Tensor, masks: DropoutMasks | None, dt: torch.dtype, keep_weights: bool | WeightsPool = False
    ) -> Tensor:
        """:math:`\\partial\\Psi / \\partial h_0` for the embedded particles ``h = h_0 (E, N, H)``."""
        scale = 1.0 / math.sqrt(self.hidden // self.heads)
        E, N, _ = h.shape
        nh = self.heads
        # the row-blocked attention kernels compute in the network's dtype: not under bf16 autocast
        fused = FUSED_ATTENTION and not _autocast_on(h.device.type)
        cache = []
        for b in range(self.n_blocks):
            xh1, r1 = _layer_norm_stats(h)
            a = xh1 * self._p("ln1_w", b).unsqueeze(1) + self._p("ln1_b", b).unsqueeze(1)
            q, k, v = self._split_heads(_linear(a, self._p("qkv_w", b), self._p("qkv_b", b)).to(dt))
            qs = q * scale
            mask = masks.attention[b] if masks is not None else None
            if fused:  # row-blocked kernels with their own backward (scwlm.core.attention)
                att = (qs.reshape(E * nh, N, -1), k.reshape(E * nh, N, -1), v.reshape(E * nh, N, -1))
                mask = mask.reshape(E * nh, N, N) if mask is not None else None
                kept = None
                if keep_weights is not False and torch.is_grad_enabled():
                    pooled = isinstance(keep_weights, WeightsPool)
                    kept = keep_weights.take(att[0], att[1]) if pooled else new_weights(att[0], att[1])
                o, lse = attention(*att, mask, kept)
                o = o.view(E, nh, N, -1)
                P = Pd = None
            else:
                kept = None
                P = torch.softmax((qs @ k.transpose(-1, -2)).to(dt), dim=-1)
                Pd = P * mask if mask is not None else P
                o = (Pd @ v).to(dt)
                att = lse = None
            h = h + _linear(self._merge_heads(o), self._p("out_w", b), self._p("out_b", b)).to(dt)
            xh2, r2 = _layer_norm_stats(h)
            c = xh2 * self._p("ln2_w", b).unsqueeze(1) + self._p("ln2_b", b).unsqueeze(1)
            u = _linear(c, self._p("f1_w", b), self._p("f1_b", b)).to(dt)
            g = F.gelu(u)
            if masks is not None:
                g = g * masks.hidden[b]
            f = _linear(g, self._p("f2_w", b), self._p("f2_b", b)).to(dt)
            if masks is not None:
                f = f * masks.output[b]
            h = h + f
            cache.append((xh1, r1, qs, k, v, P, Pd, o, xh2, r2, u, att, lse, mask, kept))
        dh = self.head_w.expand(E, N, self.hidden)  # dΨ/dh_L: the same row for every particle
        for b in reversed(range(self.n_blocks)):
            xh1, r1, qs, k, v, P, Pd, o, xh2, r2, u, att, lse, mask, kept = cache[b]
            df = dh * masks.output[b] if masks is not None else dh
            dg = (df @ self._p("f2_w", b)).to(dt)
            if masks is not None:
                dg = dg * masks.hidden[b]
            dc = (_gelu_backward(dg, u) @ self._p("f1_w", b)).to(dt)
            dh = dh + _layer_norm_backward(xh2, r2, self._p("ln2_w", b), dc)
            do = (dh @ self._p("out_w", b)).to(dt).view(E, N, self.heads, -1).permute(0, 2, 1, 3)
            if fused:
                dq, dk, dv = (g.view(E, nh, N, -1) for g in attention_grad(
                    *att, o.reshape(E * nh, N, -1), do.reshape(E * nh, N, -1), lse, mask, kept))
                dq = dq * scale
            else:
                dPd = (do @ v.transpose(-1, -2)).to(dt)
                dv = (Pd.transpose(-1, -2) @ do).to(dt)
                dP = dPd * mask if mask is not None else dPd
                # softmax backward; sum_j P_ij dP_ij = do_i . o_i, with or without dropout
                dS = P * (dP - (do * o).sum(-1, keepdim=True))
                dq = (dS @ k).to(dt) * scale
                dk = (dS.transpose(-1, -2) @ qs).to(dt)
            dqkv = torch.stack((dq, dk, dv), dim=2).permute(0, 3, 2, 1, 4).reshape(E, N, 3 * self.hidden)
            da = (dqkv @ self._p("qkv_w", b)).to(dt)
            dh = dh + _layer_norm_backward(xh1, r1, self._p("ln1_w", b), da)
        return dh

    # ------------------------------------------------------------------ dropout
    def sample_masks(
        self, n: int, generators: Sequence[torch.Generator], device, dtype, active: Sequence[bool] | None = None
    ) -> DropoutMasks | None:
        """Draw the dropout masks of one force evaluation, model ``e`` from ``generators[e]``.

        ``active[e] = False`` draws nothing from ``generators[e]`` and gives model ``e`` masks of
        ones (a model past its rollout horizon, whose positions are unused).

        Every entry is decided by 16 random bits (four entries per 64-bit draw of the generator,
        half the generator's work of one uniform float per entry, which took 13-15 % of an EB-like
        iteration under the profiler): an entry is dropped when its bits, read as a signed 16-bit integer, fall
        below a threshold. The drop rate is therefore ``p`` rounded to a multiple of
        ``1 / 65536`` (0.1 becomes 6554 / 65536 = 0.100006), and the kept entries are scaled so
        that the mask's mean is exactly one.
        """
        p = self.dropout
        if p <= 0.0:
            return None
        drop = min(int(round(p * 65536)), 65535)
        threshold, scale = drop - 32768, 65536.0 / (65536 - drop)
        active = [True] * len(generators) if active is None else list(active)
        E = len(generators)

        def draw(shape):
            numel = math.prod(shape)
            words = torch.empty((E, -(-numel // 4)), dtype=torch.int64, device=device)
            for e, g in enumerate(generators):
                if active[e]:
                    words[e].random_(-(2**63), None, generator=g)  # 64 uniform random bits
            bits = words.view(torch.int16)[:, :numel].view(E, *shape)
            m = torch.mul(bits >= threshold, scale, out=torch.empty((E, *shape), dtype=dtype, device=device))
            for e in range(E):
                if not active[e]:
                    m[e].fill_(1.0)
            return m

        nb = self.n_blocks
        return DropoutMasks(
            attention=[draw((self.heads, n, n)) for _ in range(nb)],
            hidden=[draw((n, self.ffn)) for _ in range(nb)],
            output=[draw((n, self.hidden)) for _ in range(nb)],
        )

    # ------------------------------------------------------------------ ensembles
    def select(self, index: int) -> "SetPotential":
        """A single-model copy of model ``index`` of this ensemble."""
        arch = self.architecture()
        arch["n_models"] = 1
        ref = next(self.parameters())
        single = SetPotential(**arch, generators=[torch.Generator().manual_seed(0)]).to(ref.device, ref.dtype)
        with torch.no_grad():
            for name, p in self.named_parameters():
                getattr(single, name).copy_(p[index : index + 1])
        return single
