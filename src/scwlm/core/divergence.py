r"""Debiased Sinkhorn divergences between point clouds (training loss), via GeomLoss.

.. math::
    S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
        - \tfrac12 \mathrm{OT}_\varepsilon(\alpha, \alpha) - \tfrac12 \mathrm{OT}_\varepsilon(\beta, \beta),
    \qquad \varepsilon = \mathrm{blur}^p,

with ground cost :math:`\tfrac1p \|x - y\|^p` (Feydy et al., "Interpolating between optimal
transport and MMD using Sinkhorn divergences", AISTATS 2019). All the divergences of one training
iteration are computed in a single batched call; the starting scale of the :math:`\varepsilon`-
annealing (the *diameter*) is fixed once from the data, so no call needs a host synchronisation to
measure it.

Backends (chosen by problem size when ``backend="auto"``):

``"tensorized"``
    dense cost matrices; our implementation of GeomLoss' symmetric :math:`\varepsilon`-scaling
    Sinkhorn loop (:func:`sinkhorn_tensorized`), which computes the four soft-min updates of an
    iteration (:math:`x\to y`, :math:`y\to x`, :math:`x\to x`, :math:`y\to y`) of all ``B`` problems
    in one fused log-sum-exp. It is tested to agree with GeomLoss (values and gradients).
``"geomloss"``
    GeomLoss' own ``"tensorized"`` backend (the reference path).
``"online"``
    GeomLoss with KeOps symbolic tensors: no quadratic memory, for large clouds (used by ``auto``
    above about a gigabyte of dense cost matrices when KeOps is importable, else ``"tensorized"``
    in chunks of the batch).

Options of the ``"tensorized"`` backend (off by default; the defaults compute exactly as without
them):

``autocast=True``
    the products :math:`x\cdot y` of the cost matrices of the annealing loop run under bf16
    autocast (on clouds centred at a common point, which the cost does not depend on, to limit
    the cancellation in :math:`|x|^2 - 2x\cdot y + |y|^2`); the squared norms, the cost itself,
    every log-sum-exp and the final extrapolation step (which carries the gradient) stay in
    float32. With :math:`d \le 5` these products are a negligible share of a loss call (the
    log-sum-exps dominate), and their bf16 rounding of :math:`|x - y|^2` (about
    :math:`2^{-8}|x||y|`) is large against small blurs, above all for ``p=1``
    (``tests/test_precision.py`` states the measured tolerances): an option to measure, not a
    default.
``warm_start=True`` (or a number of steps)
    the dual potentials of the last call are kept per problem shape, and the next call of the
    same shape starts from them with only the last few temperatures of the
    :math:`\varepsilon`-schedule (:data:`WARM_START_STEPS` by default) instead of annealing from the
    diameter. Meant for training, where consecutive calls compare nearly the same clouds (the
    same particles, moved by one optimiser step); on unrelated problems of the same shape the
    few steps need not converge.

:func:`epsilon_steps` gives the number of :math:`\varepsilon`-steps of a schedule and
:attr:`SinkhornDivergence.last_n_steps` the number the last call took.
"""

from __future__ import annotations

import collections
import functools
import math
from typing import Sequence

import torch
from torch import Tensor

from ._exponentials import LN2, LOG2E
from ._imports import quiet_import

__all__ = [
    "SinkhornDivergence", "sinkhorn_tensorized", "epsilon_schedule", "epsilon_steps", "blur_heuristic",
    "point_cloud_diameter", "WARM_START_STEPS",
]

#: dense cost matrices above this many bytes per batched call switch ``auto`` away from "tensorized"
_TENSORIZED_BYTES = 1 << 30
#: soft-min updates are evaluated in chunks of about this many matrix entries (cache-sized, reused buffer)
_CHUNK_ELEMENTS = 1 << 20
#: temperatures (the last ones of the schedule) a warm-started call iterates over (``warm_start=True``)
WARM_START_STEPS = 5
#: problem shapes whose dual potentials a warm-starting divergence keeps (least recently used dropped)
_WARM_START_SHAPES = 64
#: scratch memory a divergence keeps between calls (cost matrices of the annealing loop, soft-min blocks)
_WORKSPACE_BYTES = 1 << 29


class _Workspace:
    """Scratch buffers reused across calls, one per name, dtype and device, grown on demand.

    Training asks for cost matrices of the same shapes every iteration. Fresh allocations of that
    size are mapped and unmapped by the C allocator at every call, and the page faults of touching
    them again cost a sizeable share of an iteration (measured in ``docs/performance.md``). Buffers are kept up to :data:`_WORKSPACE_BYTES` in all;
    larger requests get fresh memory each time.
    """

    def __init__(self, limit: int = _WORKSPACE_BYTES) -> None:
        self.limit = int(limit)
        self._bufs: dict[tuple, Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
        """A contiguous tensor of ``shape`` (uninitialised) backed by the buffer ``name``."""
        numel = math.prod(shape)
        key = (name, dtype, device)
        buf = self._bufs.get(key)
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype, device=device)
            kept = sum(b.numel() * b.element_size() for k, b in self._bufs.items() if k != key)
            if kept + buf.numel() * buf.element_size() <= self.limit:
                self._bufs[key] = buf
            else:
                self._bufs.pop(key, None)
        return buf[:numel].view(shape)

    @property
    def nbytes(self) -> int:
        """Bytes held between calls."""
        return sum(b.numel() * b.element_size() for b in self._bufs.values())


@functools.lru_cache(maxsize=1)
def _keops_available() -> bool:
    try:
        import pykeops  # noqa: F401
        from pykeops.torch import LazyTensor  # noqa: F401
    except Exception:  # pragma: no cover - depends on the installation
        return False
    return True


def _cost(x: Tensor, y: Tensor, p: int, low: bool = False) -> Tensor:
    """GeomLoss' ground cost ``|x - y|^p / p`` (same formula and clamping).

    With ``low`` the product ``x . y`` runs under bf16 autocast, on clouds translated by a common
    (detached) centre; the cost is the same function of ``x`` and ``y``, in float32.
    """
    if low:
        centre = 0.5 * (x.detach().mean(1, keepdim=True) + y.detach().mean(1, keepdim=True))
        x, y = x - centre, y - centre
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
            xy = torch.matmul(x, y.transpose(1, 2))
        d2 = (x * x).sum(-1).unsqueeze(2) - 2 * xy.to(x.dtype) + (y * y).sum(-1).unsqueeze(1)
    else:
        d2 = (x * x).sum(-1).unsqueeze(2) - 2 * torch.matmul(x, y.transpose(1, 2)) + (y * y).sum(-1).unsqueeze(1)
    if p == 1:
        return torch.sqrt(torch.clamp_min(d2, 1e-8))
    return d2 / 2


def _sq_dist_into(out: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``|x|^2 - 2 x.y + |y|^2`` written into ``out (B, n, m)`` (the float operations of :func:`_cost`)."""
    torch.bmm(x, y.transpose(1, 2), out=out)
    return out.mul_(-2).add_((x * x).sum(-1).unsqueeze(2)).add_((y * y).sum(-1).unsqueeze(1))


def _cost_into(out: Tensor, x: Tensor, y: Tensor, p: int) -> Tensor:
    """:func:`_cost` written into ``out (B, n, m)`` in place (the same float operations, no temporaries)."""
    _sq_dist_into(out, x, y)
    return out.clamp_min_(1e-8).sqrt_() if p == 1 else out.div_(2)


def _blocks(B: int, n: int, m: int):
    """``(b0, b1, r0, r1)`` blocks of the rows of ``B`` problems of ``n x m`` entries, about
    :data:`_CHUNK_ELEMENTS` entries each (several whole problems, or rows of one)."""
    if n * m <= _CHUNK_ELEMENTS:
        step = max(1, _CHUNK_ELEMENTS // (n * m))
        for b0 in range(0, B, step):
            yield b0, min(B, b0 + step), 0, n
    else:
        rows = max(1, _CHUNK_ELEMENTS // m)
        for b in range(B):
            for r0 in range(0, n, rows):
                yield b, b + 1, r0, min(n, r0 + rows)


def _softmin_blocks(x: Tensor, y: Tensor, h: Tensor, eps: Tensor, p: int, ws: _Workspace) -> Tensor:
    r"""``-eps log sum_j exp(h_j - C(x_i, y_j) / eps)`` ``(B, n)`` in cache-sized blocks of ``ws`` (no gradient)."""
    B, n, m = x.shape[0], x.shape[1], y.shape[1]
    f = torch.empty(B, n, dtype=x.dtype, device=x.device)
    # in base 2 (scwlm.core._exponentials): z = (h_j - C_ij / eps) log2(e)
    neg_inv, h2 = -LOG2E / eps.view(-1, 1, 1), h * LOG2E
    for b0, b1, r0, r1 in _blocks(B, n, m):
        z = ws.take("extrapolation", (b1 - b0, r1 - r0, m), x.dtype, x.device)
        _cost_into(z, x[b0:b1, r0:r1], y[b0:b1], p)
        torch.addcmul(h2[b0:b1].unsqueeze(1), z, neg_inv[b0:b1], out=z)
        mx = z.amax(-1, keepdim=True)
        z.sub_(mx).exp2_()
        f[b0:b1, r0:r1] = (z.sum(-1).log2_() + mx.squeeze(-1)).mul_(-LN2 * eps[b0:b1].view(-1, 1))
    return f


class _Extrapolation(torch.autograd.Function):
    r"""The last soft-min of the loop, :math:`f_i = -\varepsilon\log\sum_j \exp(h_j - C(x_i, y_j)/\varepsilon)`,
    differentiable in ``x`` (``y``, ``h`` and ``eps`` are constants).

    Its gradient is :math:`\partial f_i/\partial x_i = \sum_j P_{ij}\,\nabla_x C(x_i, y_j)` with the
    soft-max weights :math:`P_{ij} = \exp(h_j - C_{ij}/\varepsilon + f_i/\varepsilon)`: for ``p=2``
    :math:`x_i\sum_j P_{ij} - (Py)_i`, for ``p=1`` the same with :math:`W = P / C` (zero where the
    squared distance is clamped). Forward and backward run in cache-sized blocks of a workspace,
    so no ``(B, n, m)`` tensor is allocated or kept for the backward pass; the values and gradients
    are those of autograd through :func:`_cost` and ``logsumexp`` (tested).
    """

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, h: Tensor, eps: Tensor, p: int, ws: _Workspace) -> Tensor:
        f = _softmin_blocks(x, y, h, eps, p, ws)
        ctx.save_for_backward(x, y, h, eps, f)
        ctx.p, ctx.ws = p, ws
        return f

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_f: Tensor):
        x, y, h, eps, f = ctx.saved_tensors
        B, n, m = x.shape[0], x.shape[1], y.shape[1]
        grad = torch.empty_like(x)
        # in base 2 (scwlm.core._exponentials): P_ij = 2^((h_j - C_ij / eps + f_i / eps) log2(e))
        inv, h2 = LOG2E / eps.view(-1, 1, 1), h * LOG2E
        for b0, b1, r0, r1 in _blocks(B, n, m):
            xb, yb = x[b0:b1, r0:r1], y[b0:b1]
            shift = (f[b0:b1, r0:r1] * inv[b0:b1].view(-1, 1)).unsqueeze(-1)  # f_i log2(e) / eps
            c = ctx.ws.take("extrapolation", (b1 - b0, r1 - r0, m), x.dtype, x.device)
            if ctx.p == 2:
                w = _cost_into(c, xb, yb, 2)
                torch.addcmul(h2[b0:b1].unsqueeze(1), c, -inv[b0:b1], out=w).add_(shift).exp2_()
            else:
                clamped = _sq_dist_into(c, xb, yb) < 1e-8  # clamp_min passes no gradient there
                c.clamp_min_(1e-8).sqrt_()
                w = ctx.ws.take("extrapolation_weights", c.shape, x.dtype, x.device)
                torch.addcmul(h2[b0:b1].unsqueeze(1), c, -inv[b0:b1], out=w).add_(shift).exp2_()
                w.div_(c).masked_fill_(clamped, 0.0)
            g = grad_f[b0:b1, r0:r1].unsqueeze(-1)
            grad[b0:b1, r0:r1] = (xb * w.sum(-1, keepdim=True) - torch.bmm(w, yb)) * g
        return grad, None, None, None, None, None


def epsilon_schedule(p: int, diameter: float, blur: float, scaling: float) -> list[float]:
    """GeomLoss' annealing schedule: from ``diameter**p`` down to ``blur**p`` by factors ``scaling**p``."""
    import numpy as np

    return [diameter**p] + [float(np.exp(e)) for e in np.arange(p * np.log(diameter), p * np.log(blur), p * np.log(scaling))] + [blur**p]


def epsilon_steps(p: int, diameter: float, blur: float, scaling: float) -> int:
    r"""Number of :math:`\varepsilon`-steps (Sinkhorn iterations of the annealing loop) of a schedule.

    This is the length of :func:`epsilon_schedule`; a loss call makes one more soft-min update at
    the start (at the diameter) and one final extrapolation, which carries the gradient.

    Examples
    --------
    >>> epsilon_steps(2, 4.0, 0.05, 0.9)
    44
    """
    return len(_cached_schedule(int(p), float(diameter), float(blur), float(scaling)))


def _log_weights(w: Tensor) -> Tensor:
    return torch.where(w > 0, w.clamp_min(1e-300).log(), torch.full_like(w, -100000.0))


@functools.lru_cache(maxsize=256)
def _cached_schedule(p: int, diameter: float, blur: float, scaling: float) -> tuple[float, ...]:
    """:func:`epsilon_schedule`, memoised (training asks for the same few schedules every iteration)."""
    return tuple(epsilon_schedule(p, diameter, blur, scaling))


def _schedules(
    p: int, diameter, blur, scaling: float, B: int, dtype, device, tail: int | None = None
) -> tuple[Tensor, Tensor]:
    """Per-problem annealing schedules, padded to a common length.

    Returns ``eps (L + 1, B)`` (row 0 is the initial temperature ``diameter**p``; rows ``1..L`` the
    loop temperatures, repeated at the end for problems with shorter schedules) and
    ``active (L, B)`` (whether problem ``b`` still iterates at loop step ``s``). With ``tail``
    only the last ``tail`` temperatures of every schedule are kept (a warm start).
    """
    import numpy as np

    diam = np.broadcast_to(np.asarray(diameter, dtype=np.float64), (B,))
    bl = np.broadcast_to(np.asarray(blur, dtype=np.float64), (B,))
    lists = [_cached_schedule(p, float(d), float(b), scaling) for d, b in zip(diam, bl)]
    if tail is not None:
        lists = [e[-tail:] for e in lists]
    L = max(len(e) for e in lists)
    eps = np.empty((L + 1, B))
    active = np.zeros((L, B), dtype=bool)
    for j, e in enumerate(lists):
        eps[0, j] = e[0]
        eps[1 : len(e) + 1, j] = e
        eps[len(e) + 1 :, j] = e[-1]
        active[: len(e), j] = True
    return torch.as_tensor(eps, dtype=dtype, device=device), torch.as_tensor(active, device=device)


def sinkhorn_tensorized(
    a: Tensor, x: Tensor, b: Tensor, y: Tensor, *, p: int, blur, scaling: float, diameter, autocast: bool = False
) -> Tensor:
    r"""Debiased Sinkhorn divergences ``(B,)`` with dense cost matrices.

    The same algorithm as GeomLoss' ``sinkhorn_tensorized`` / ``sinkhorn_loop`` (symmetric updates
    with :math:`\varepsilon`-scaling, no gradient through the loop, one final extrapolation step
    that carries the gradient; Feydy 2020, Alg. 3.5), with the four soft-min updates of every
    iteration fused into one batched, cache-blocked log-sum-exp. ``blur`` and ``diameter`` may
    differ between the ``B`` problems (each follows its own annealing schedule), so problems of
    different models can share one call and still give what each would give alone.

    Parameters
    ----------
    a, x, b, y
        Weights ``(B, n)``, points ``(B, n, d)``, weights ``(B, m)``, points ``(B, m, d)``.
    p, blur, scaling, diameter
        Cost exponent, target blur (:math:`\varepsilon = \mathrm{blur}^p`; a float or ``B``
        values), annealing ratio and starting scale (a float or ``B`` values).
    autocast
        bf16 autocast of the products ``x . y`` of the annealing loop's cost matrices (the
        log-sum-exps and the final, gradient-carrying step stay in float32; see the module
        docstring).

    Returns
    -------
    Tensor
        The ``B`` divergences.
    """
    return _sinkhorn_tensorized(a, x, b, y, p=p, blur=blur, scaling=scaling, diameter=diameter, low=autocast)[0]


def _sinkhorn_tensorized(
    a: Tensor, x: Tensor, b: Tensor, y: Tensor, *, p: int, blur, scaling: float, diameter, low: bool = False,
    init: tuple[Tensor, Tensor, Tensor, Tensor] | None = None, tail: int | None = None,
    workspace: _Workspace | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor, Tensor], int]:
    r""":func:`sinkhorn_tensorized`, optionally warm-started; also returns the dual potentials and step count.

    ``init`` are dual potentials ``(f_ba, g_ab, f_aa, g_bb)`` of an earlier call of the same shape
    (then only the last ``tail`` temperatures of every schedule are iterated, and the soft-min
    at the diameter is skipped). Returns the divergences, the final (detached) potentials and
    the number of :math:`\varepsilon`-steps of the loop. ``workspace`` keeps the scratch memory
    between calls (a fresh one by default).
    """
    B, n, m = x.shape[0], x.shape[1], y.shape[1]
    ws = _Workspace() if workspace is None else workspace
    eps_t, active = _schedules(p, diameter, blur, scaling, B, x.dtype, x.device, tail=tail if init is not None else None)
    a_log, b_log = _log_weights(a), _log_weights(b)
    with torch.no_grad():
        xd, yd = x.detach(), y.detach()
        # the four problems of an iteration: x<-y (f_ba), y<-x (g_ab), x<-x (f_aa), y<-y (g_bb),
        # their cost matrices written once into the workspace
        def cost(C: Tensor, u: Tensor, v: Tensor) -> Tensor:
            return C.copy_(_cost(u, v, p, True)) if low else _cost_into(C, u, v, p)

        if n == m:
            C = ws.take("costs", (4 * B, n, m), x.dtype, x.device)
            cost(C[:B], xd, yd)
            C[B : 2 * B].copy_(C[:B].transpose(1, 2))
            cost(C[2 * B : 3 * B], xd, xd)
            cost(C[3 * B :], yd, yd)
            groups = [(C, (0, 1, 2, 3))]
        else:
            c_xy = cost(ws.take("cost_xy", (B, n, m), x.dtype, x.device), xd, yd)
            groups = [(c_xy, (0,)), (ws.take("cost_yx", (B, m, n), x.dtype, x.device).copy_(c_xy.transpose(1, 2)), (1,)),
                      (cost(ws.take("cost_xx", (B, n, n), x.dtype, x.device), xd, xd), (2,)),
                      (cost(ws.take("cost_yy", (B, m, m), x.dtype, x.device), yd, yd), (3,))]
        work = ws.take("softmin", (min(max(1, _CHUNK_ELEMENTS // (n * m)), 4 * B) * max(n, m) ** 2,), x.dtype, x.device)

        def softmins(eps: Tensor, h: list[Tensor]) -> list[Tensor]:
            """``-eps log sum_j exp(h_j - C_ij / eps)`` for the four problems; ``eps`` is ``(B,)``."""
            out: list[Tensor] = [None] * 4  # type: ignore[list-item]
            for C, kinds in groups:
                # in base 2 (scwlm.core._exponentials): z = (h_j - C_ij / eps) log2(e)
                hh = torch.cat([h[k] for k in kinds]).mul_(LOG2E)  # (len(kinds) * B, cols)
                e = eps.repeat(len(kinds))
                neg_inv = (-LOG2E / e).view(-1, 1, 1)
                rows, cols = C.shape[1], C.shape[2]
                res = torch.empty(C.shape[0], rows, dtype=C.dtype, device=C.device)
                step = max(1, _CHUNK_ELEMENTS // (rows * cols))
                for i in range(0, C.shape[0], step):
                    j = min(i + step, C.shape[0])
                    z = work[: (j - i) * rows * cols].view(j - i, rows, cols)
                    torch.addcmul(hh[i:j].unsqueeze(1), C[i:j], neg_inv[i:j], out=z)
                    mx = z.amax(-1, keepdim=True)
                    z.sub_(mx).exp2_()
                    res[i:j] = (z.sum(-1).log2_() + mx.squeeze(-1)).mul_(-LN2 * e[i:j].unsqueeze(1))
                for r, k in enumerate(kinds):
                    out[k] = res[r * B : (r + 1) * B]
            return out

        if init is None:
            f_ba, g_ab, f_aa, g_bb = softmins(eps_t[0], [b_log, a_log, a_log, b_log])
        else:
            f_ba, g_ab, f_aa, g_bb = init
        for s in range(active.shape[0]):
            eps = eps_t[s + 1].unsqueeze(1)
            ft_ba, gt_ab, ft_aa, gt_bb = softmins(
                eps_t[s + 1], [b_log + g_ab / eps, a_log + f_ba / eps, a_log + f_aa / eps, b_log + g_bb / eps]
            )
            on = active[s].unsqueeze(1)
            f_ba = torch.where(on, (f_ba + ft_ba) / 2, f_ba)
            g_ab = torch.where(on, (g_ab + gt_ab) / 2, g_ab)
            f_aa = torch.where(on, (f_aa + ft_aa) / 2, f_aa)
            g_bb = torch.where(on, (g_bb + gt_bb) / 2, g_bb)
        del groups, work
    eps = eps_t[-1].view(-1, 1)

    def softmin(u: Tensor, v: Tensor, h: Tensor) -> Tensor:
        if h.requires_grad:  # weights that carry a gradient: autograd through the dense step
            return -eps * torch.addcmul(h.unsqueeze(-2), _cost(u, v, p), (-1.0 / eps).unsqueeze(-1)).logsumexp(-1)
        if not (torch.is_grad_enabled() and u.requires_grad):
            with torch.no_grad():
                return _softmin_blocks(u, v, h, eps, p, ws)
        return _Extrapolation.apply(u, v, h, eps, p, ws)

    # last extrapolation, with the gradient (GeomLoss' convention: the second argument is detached);
    # the y-side potentials carry a gradient only when y requires one (targets usually do not)
    f_ba_new = softmin(x, yd, b_log + g_ab / eps)
    f_aa_new = softmin(x, xd, a_log + f_aa / eps)
    with torch.set_grad_enabled(torch.is_grad_enabled() and y.requires_grad):
        g_ab_new = softmin(y, xd, a_log + f_ba / eps)
        g_bb_new = softmin(y, yd, b_log + g_bb / eps)
    value = (a * (f_ba_new - f_aa_new)).sum(1) + (b * (g_ab_new - g_bb_new)).sum(1)
    return value, (f_ba, g_ab, f_aa, g_bb), int(active.shape[0])


def _samples_loss_class():
    return quiet_import("geomloss").SamplesLoss


def blur_heuristic(
    snapshots: Sequence[Tensor],
    *,
    scale: float = 0.5,
    n_snapshots: int = 8,
    n_pairs: int = 4096,
    bounds: tuple[float, float] = (1e-3, 10.0),
    generator: torch.Generator | None = None,
) -> float:
    """``scale`` times the median distance between random pairs of points of the same snapshot.

    Pairs are drawn from up to ``n_snapshots`` snapshots (spread over the time course); the result
    is clamped to ``bounds``. This is the data-driven blur of the paper's code.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> b = blur_heuristic([torch.randn(500, 2) for _ in range(3)], generator=g)
    >>> 0.5 < b < 1.0
    True
    """
    idx = torch.linspace(0, len(snapshots) - 1, steps=min(n_snapshots, len(snapshots))).round().long().unique()
    dists = []
    for i in idx.tolist():
        x = snapshots[i].detach().to("cpu", torch.float64)
        n = x.shape[0]
        if n < 2:
            continue
        a = torch.randint(0, n, (n_pairs,), generator=generator)
        b = torch.randint(0, n - 1, (n_pairs,), generator=generator)
        b = b + (b >= a).long()  # distinct partner
        dists.append((x[a] - x[b]).norm(dim=-1))
    if not dists:
        return float(bounds[0])
    med = float(torch.cat(dists).median())
    return float(min(max(scale * med, bounds[0]), bounds[1]))


def point_cloud_diameter(snapshots: Sequence[Tensor]) -> float:
    """Length of the diagonal of the bounding box of all points (GeomLoss' ``max_diameter``)."""
    lo = torch.stack([s.detach().amin(0) for s in snapshots]).amin(0)
    hi = torch.stack([s.detach().amax(0) for s in snapshots]).amax(0)
    return float((hi - lo).norm().clamp_min(1e-6))


class SinkhornDivergence:
    r"""Batched debiased Sinkhorn divergence.

    Parameters
    ----------
    p
        Exponent of the ground cost :math:`\tfrac1p\|x-y\|^p` (1 or 2).
    blur
        Target entropic blur; :math:`\varepsilon = \mathrm{blur}^p`.
    scaling
        Ratio of successive blurs in the :math:`\varepsilon`-annealing (GeomLoss ``scaling``).
    diameter
        Starting scale of the annealing; ``None`` lets GeomLoss measure it at every call (with a
        host synchronisation), which rules out the ``"tensorized"`` backend.
    backend
        ``"auto"``, ``"tensorized"``, ``"geomloss"`` or ``"online"`` (see the module docstring).
    autocast
        bf16 autocast of the products :math:`x\cdot y` of the annealing loop's cost matrices,
        log-sum-exps and the final step in float32 (``"tensorized"`` backend only; the others
        ignore it). Off by default.
    warm_start
        ``True`` (or a number of :math:`\varepsilon`-steps, :data:`WARM_START_STEPS` for ``True``)
        to start every call from the dual potentials of the last call of the same shape and
        iterate over the last temperatures of the schedule only (``"tensorized"`` backend only).
        Off by default.

    Attributes
    ----------
    last_n_steps
        Number of :math:`\varepsilon`-steps (Sinkhorn iterations of the annealing loop) the last
        call took (the most over its problems, which iterate together; summed over the chunks of
        a large batch); ``None`` before the first call or when GeomLoss measured the diameter.
    n_calls, total_steps
        Calls so far and their :math:`\varepsilon`-steps in all (``total_steps / n_calls`` is the
        mean per call).
    last_backend
        The backend the last call used.

    Examples
    --------
    >>> import torch
    >>> loss = SinkhornDivergence(p=2, blur=0.05, diameter=4.0)
    >>> x = torch.randn(3, 100, 2)
    >>> bool((loss(x, x).abs() < 1e-4).all())
    True
    >>> loss.last_n_steps == epsilon_steps(2, 4.0, 0.05, 0.9)
    True
    """

    def __init__(
        self,
        p: int = 2,
        blur: float = 0.05,
        scaling: float = 0.9,
        diameter: float | None = None,
        backend: str = "auto",
        *,
        autocast: bool = False,
        warm_start: bool | int = False,
    ) -> None:
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2, got {p}")
        if not (blur > 0 and math.isfinite(blur)):
            raise ValueError(f"blur must be a positive number, got {blur}")
        if not 0 < scaling < 1:
            raise ValueError(f"scaling must lie in (0, 1), got {scaling}")
        if diameter is not None and not (diameter > 0 and math.isfinite(diameter)):
            raise ValueError(f"diameter must be a positive number or None, got {diameter}")
        if backend not in ("auto", "tensorized", "geomloss", "online"):
            raise ValueError(f"unknown backend {backend!r}; use 'auto', 'tensorized', 'geomloss' or 'online'")
        if not isinstance(autocast, bool):
            raise ValueError(f"autocast must be True or False, got {autocast!r}")
        if warm_start is True:
            warm_start = WARM_START_STEPS
        if isinstance(warm_start, float) or warm_start is None or (not isinstance(warm_start, int)) or warm_start < 0:
            raise ValueError(f"warm_start must be True, False or a number of steps >= 1, got {warm_start!r}")
        self.p, self.blur, self.scaling, self.diameter, self.backend = int(p), float(blur), float(scaling), diameter, backend
        self.autocast, self.warm_start = autocast, int(warm_start)
        self.last_n_steps: int | None = None
        self.last_backend: str | None = None
        self.n_calls, self.total_steps = 0, 0
        self._duals: collections.OrderedDict = collections.OrderedDict()
        self._workspace = _Workspace()

    def reset_warm_start(self) -> None:
        """Forget the dual potentials kept for warm starts (the next calls start cold)."""
        self._duals.clear()

    def _tensorized(self, a, x, b, y, blurs, diams, chunk_start: int) -> tuple[Tensor, int]:
        """One tensorized chunk, warm-started from (and updating) the kept potentials when asked."""
        key = init = None
        if self.warm_start:
            key = (chunk_start, tuple(x.shape), tuple(y.shape), x.dtype, str(x.device), tuple(blurs), tuple(diams))
            init = self._duals.get(key)
            if init is not None:
                self._duals.move_to_end(key)
        value, duals, steps = _sinkhorn_tensorized(
            a, x, b, y, p=self.p, blur=blurs, scaling=self.scaling, diameter=diams, low=self.autocast,
            init=init, tail=self.warm_start or None, workspace=self._workspace,
        )
        if key is not None:
            self._duals[key] = duals
            while len(self._duals) > _WARM_START_SHAPES:
                self._duals.popitem(last=False)
        return value, steps

    def _geomloss(self, backend: str, blur: float, diameter: float | None):
        return _samples_loss_class()(
            "sinkhorn", p=self.p, blur=blur, scaling=self.scaling, debias=True,
            backend="tensorized" if backend == "geomloss" else backend, diameter=diameter,
        )

    def choose_backend(self, batch: int, n: int, m: int, itemsize: int = 4, fixed_diameter: bool = True) -> str:
        """The backend ``auto`` picks for ``batch`` problems of ``n`` against ``m`` points."""
        if self.backend != "auto":
            return self.backend
        dense = batch * (n + m) ** 2 * itemsize
        if dense <= _TENSORIZED_BYTES or not _keops_available():
            return "tensorized" if fixed_diameter else "geomloss"
        return "online"

    def __call__(
        self,
        x: Tensor,
        y: Tensor,
        a: Tensor | None = None,
        b: Tensor | None = None,
        *,
        blur: Sequence[float] | float | None = None,
        diameter: Sequence[float] | float | None = None,
    ) -> Tensor:
        """Divergences ``(B,)`` between clouds ``x (B, n, d)`` and ``y (B, m, d)``.

        ``a`` and ``b`` are optional weights ``(B, n)`` and ``(B, m)`` summing to one per row
        (uniform by default); zero weights mark padding points. ``blur`` and ``diameter``
        override the instance's values, possibly with one value per problem.
        """
        if x.ndim != 3 or y.ndim != 3 or x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
            raise ValueError(f"expected x (B, n, d) and y (B, m, d), got {tuple(x.shape)} and {tuple(y.shape)}")
        B, n, _ = x.shape
        m = y.shape[1]
        if a is None:
            a = torch.full((B, n), 1.0 / n, dtype=x.dtype, device=x.device)
        if b is None:
            b = torch.full((B, m), 1.0 / m, dtype=y.dtype, device=y.device)
        blurs = [float(v) for v in (torch.as_tensor(self.blur if blur is None else blur, dtype=torch.float64).expand(B).tolist())]
        diam = self.diameter if diameter is None else diameter
        diams = None if diam is None else [float(v) for v in torch.as_tensor(diam, dtype=torch.float64).expand(B).tolist()]
        backend = self.choose_backend(B, n, m, x.element_size(), fixed_diameter=diams is not None)
        if backend == "tensorized" and diams is None:
            raise ValueError("the 'tensorized' backend needs a fixed diameter")
        chunk = B
        if backend in ("tensorized", "geomloss") and self.backend == "auto":
            chunk = max(1, _TENSORIZED_BYTES // ((n + m) ** 2 * x.element_size()))
        out = []
        steps: int | None = 0
        for i in range(0, B, chunk):
            j = min(B, i + chunk)
            if backend == "tensorized":
                value, n_steps = self._tensorized(a[i:j], x[i:j], b[i:j], y[i:j], blurs[i:j], diams[i:j], i)
                out.append(value)
                steps += n_steps
                continue
            # GeomLoss' loop: the same schedule, unknown when it measures the diameter itself
            steps = None if (diams is None or steps is None) else steps + max(
                epsilon_steps(self.p, d, bl, self.scaling) for d, bl in zip(diams[i:j], blurs[i:j])
            )
            # GeomLoss takes one blur and diameter per call: group the problems that share them
            keys = [(blurs[r], None if diams is None else diams[r]) for r in range(i, j)]
            res = torch.empty(j - i, dtype=x.dtype, device=x.device)
            for key in dict.fromkeys(keys):
                rows = torch.tensor([r for r, k in enumerate(keys) if k == key], device=x.device)
                sel = rows + i
                res = res.index_copy(0, rows, self._geomloss(backend, *key)(a[sel], x[sel], b[sel], y[sel]))
            out.append(res)
        self.last_n_steps, self.last_backend = steps, backend
        self.n_calls += 1
        self.total_steps += steps or 0
        return out[0] if len(out) == 1 else torch.cat(out)
