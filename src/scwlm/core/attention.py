r"""Row-blocked attention kernels of the analytic force, with hand-written backward passes.

The analytic force (:meth:`~scwlm.core.potential.SetPotential.forces` with ``impl="analytic"``)
runs every attention layer twice: forwards, and then the layer's own gradient in the reverse
sweep that turns :math:`\partial\Psi/\partial h` into the force. Training differentiates both once
more. Written with ordinary tensor operations, every one of these steps materialises several
``(B, N, N)`` tensors (scores, soft-max weights, their gradients) and autograd keeps them for the
backward pass: at a thousand particles that is element-wise, memory-bound work on 16 MB
temporaries, the largest share of a training iteration on a CPU.

The two :class:`torch.autograd.Function` objects here compute the same quantities block by block
over the query rows, so that every ``N x N`` intermediate lives only as a cache-sized
``(B, r, N)`` slice, and by default keep nothing of size ``N x N`` for the backward pass (only the
row log-sum-exp of the scores; the soft-max weights are recomputed there, as flash attention does).
Where memory allows, the caller may instead hand :func:`attention` a buffer (:func:`new_weights`)
that receives the soft-max weights :math:`P` once; :func:`attention_grad` and both backward passes
then read them instead of recomputing them, three products :math:`QK^\top` and three
exponentiations fewer per layer and force evaluation in training. The kept weights are computed
with the recomputation's own formula, so the results are bit for bit those without the buffer.
With ``Q`` the scaled queries, ``M`` an optional dropout mask of the attention weights (already
scaled), :math:`P = \mathrm{softmax}(QK^\top)` by rows and :math:`\tilde P = P \circ M`:

:func:`attention` (forward of one layer)
    :math:`O = \tilde P V`.
:func:`attention_grad` (its gradient, given the upstream :math:`D = \partial\Psi/\partial O`)
    :math:`G = (D V^\top) \circ M`, :math:`\delta = \mathrm{rowsum}(D \circ O)` (which equals
    :math:`\mathrm{rowsum}(P \circ G)`), :math:`T = P \circ (G - \delta\mathbf 1^\top)` (the gradient
    with respect to the scores), and the outputs :math:`TK`, :math:`T^\top Q` and
    :math:`\tilde P^\top D` (gradients with respect to ``Q``, ``K`` and ``V``).

Both are differentiable once (training needs a first-order backward of the analytic force, never
more); the backward formulas are the chain rule through the lines above, written out in
:func:`_attention_grad_backward` and checked against autograd of the unblocked formulas in
``tests/test_attention.py``.
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._exponentials import LN2, LOG2E

__all__ = ["WeightsPool", "attention", "attention_grad", "new_weights", "rows_per_block"]

#: elements of one ``(B, r, N)`` slice of an ``N x N`` intermediate on a CPU (256 k floats = 1 MB
#: in float32: a slice stays in the core's cache between the operations on it)
BLOCK_ELEMENTS = 1 << 18
#: the same on an accelerator, where a block is a kernel launch per operation and memory bandwidth,
#: not cache, is what counts: blocks of up to 32 M elements (128 MB in float32)
DEVICE_BLOCK_ELEMENTS = 1 << 25


def rows_per_block(batch: int, n_rows: int, n_cols: int, device: torch.device | str = "cpu") -> int:
    """Query rows per block so that a ``(batch, rows, n_cols)`` slice holds about :data:`BLOCK_ELEMENTS`
    (:data:`DEVICE_BLOCK_ELEMENTS` off the CPU).

    Examples
    --------
    >>> rows_per_block(4, 1000, 1000)
    65
    >>> rows_per_block(4, 100, 100)  # small problems run in one block
    100
    >>> rows_per_block(4, 1000, 1000, "cuda")
    1000
    """
    budget = BLOCK_ELEMENTS if torch.device(device).type == "cpu" else DEVICE_BLOCK_ELEMENTS
    return max(1, min(n_rows, budget // max(1, batch * n_cols)))


def _blocks(n: int, r: int):
    return ((i, min(i + r, n)) for i in range(0, n, r))


def new_weights(q: Tensor, k: Tensor) -> Tensor:
    """An uninitialised buffer for the soft-max weights of :func:`attention` of ``q`` and ``k``.

    The ``(B, N, M)`` weights are stored block after block of query rows (each block a contiguous
    ``(B, r, M)`` array), not row-major: the layout only the kernels here read.

    Examples
    --------
    >>> import torch
    >>> new_weights(torch.zeros(4, 10, 2), torch.zeros(4, 12, 2)).shape
    torch.Size([480])
    """
    return q.new_empty(q.shape[0] * q.shape[1] * k.shape[1])


class WeightsPool:
    """Buffers for kept soft-max weights (:func:`new_weights`), reused from one training iteration to the next.

    A training iteration keeps one buffer per attention layer and force evaluation until its
    backward pass, and the next iteration asks for the same sizes again. Fresh buffers of tens of
    megabytes are mapped and unmapped by the C allocator at every iteration and every first touch
    of their pages is a page fault; the pool hands out a buffer of the same size that nothing else
    references any more (no Python reference but the pool's, and ``Tensor._use_count() == 1``: no
    graph saved it, or autograd has released it) instead, and
    allocates only when none is free. It holds, per size, at most the buffers in use at the busiest
    moment so far.

    Examples
    --------
    >>> import torch
    >>> pool = WeightsPool()
    >>> q = k = torch.zeros(2, 5, 3)
    >>> a = pool.take(q, k)
    >>> b = pool.take(q, k)  # a is still referenced: a second buffer
    >>> a.data_ptr() != b.data_ptr(), pool.n_buffers
    (True, 2)
    >>> del a
    >>> c = pool.take(q, k)  # a's buffer is free again
    >>> pool.n_buffers
    2
    """

    def __init__(self) -> None:
        self._buffers: list[Tensor] = []

    @property
    def n_buffers(self) -> int:
        """Buffers allocated so far."""
        return len(self._buffers)

    def take(self, q: Tensor, k: Tensor) -> Tensor:
        """A buffer for the weights of :func:`attention` of ``q`` and ``k`` (contents undefined)."""
        n = q.shape[0] * q.shape[1] * k.shape[1]
        for buf in self._buffers:
            # free: referenced by the pool's list and this loop only (Python), and by no saved tensor of a
            # graph (C++); handed out whole, never as a view, whose references would not count here
            if (sys.getrefcount(buf) == 3 and buf._use_count() == 1 and buf.numel() == n and buf.dtype == q.dtype
                    and buf.device == q.device):
                return buf
        buf = new_weights(q, k)
        self._buffers.append(buf)
        return buf


def _block(weights: Tensor, B: int, i: int, j: int, n_cols: int) -> Tensor:
    """Rows ``i:j`` of the kept weights, a contiguous ``(B, j - i, n_cols)`` view of the buffer."""
    return weights[B * i * n_cols : B * j * n_cols].view(B, j - i, n_cols)


def _probabilities(q2: Tensor, kt: Tensor, lse2: Tensor) -> Tensor:
    """Soft-max weights ``exp(q k^T - lse)`` of a block of rows, as ``2^(q2 k^T - lse2)`` with
    ``q2 = q log2(e)`` and ``lse2 = lse log2(e)`` (``(B, r, 1)``; see :mod:`scwlm.core._exponentials`)."""
    return torch.bmm(q2, kt).sub_(lse2).exp2_()


class _Attention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, weights: Tensor | None):
        B, N, _ = q.shape
        M = k.shape[1]
        out = torch.empty_like(v, memory_format=torch.contiguous_format)
        lse = torch.empty(B, N, 1, dtype=q.dtype, device=q.device)
        kt = k.transpose(1, 2)
        q2 = q * LOG2E  # scores in base 2: exp(s) = 2^(s log2(e))
        for i, j in _blocks(N, rows_per_block(B, N, M, q.device)):
            s = torch.bmm(q2[:, i:j], kt, out=None if weights is None else _block(weights, B, i, j, M))
            m = s.amax(-1, keepdim=True)
            # kept: the scores stay in the buffer for the weights written below
            p = s.sub_(m).exp2_() if weights is None else (s - m).exp2_()
            z = p.sum(-1, keepdim=True)
            lse_i = torch.add(m, z.log2(), out=lse[:, i:j]).mul_(LN2)
            p.div_(z)
            if mask is not None:
                p.mul_(mask[:, i:j])
            torch.bmm(p, v, out=out[:, i:j])
            if weights is not None:  # P as the backward passes would recompute it (_probabilities)
                s.sub_(lse_i * LOG2E).exp2_()
        ctx.save_for_backward(q, k, v, mask, out, lse, weights)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out: Tensor, _g_lse: Tensor | None):
        # the backward pass of a layer is its gradient, with the upstream gradient as D
        q, k, v, mask, out, lse, weights = ctx.saved_tensors
        return (*_attention_grad(q, k, v, out, g_out.contiguous(), lse, mask, weights), None, None)


def _attention_grad(q, k, v, o, d, lse, mask, weights) -> tuple[Tensor, Tensor, Tensor]:
    r""":math:`TK`, :math:`T^\top Q`, :math:`\tilde P^\top D` by blocks of rows (``d`` contiguous)."""
    B, N, _ = q.shape
    M = k.shape[1]
    gq = torch.empty_like(q, memory_format=torch.contiguous_format)
    gk, gv = torch.zeros_like(k), torch.zeros_like(v)
    # rowsum(P o G) = rowsum(D o O), because O = (P o M) V
    delta = (d * o).sum(-1, keepdim=True)
    vt, kt, q2, lse2 = v.transpose(1, 2), k.transpose(1, 2), q * LOG2E, lse * LOG2E
    for i, j in _blocks(N, rows_per_block(B, N, M, q.device)):
        p = _probabilities(q2[:, i:j], kt, lse2[:, i:j]) if weights is None else _block(weights, B, i, j, M)
        pd = p * mask[:, i:j] if mask is not None else p
        gv += torch.bmm(pd.transpose(1, 2), d[:, i:j])
        g = torch.bmm(d[:, i:j], vt)
        if mask is not None:
            g.mul_(mask[:, i:j])
        t = g.sub_(delta[:, i:j]).mul_(p)
        torch.bmm(t, k, out=gq[:, i:j])
        gk += torch.bmm(t.transpose(1, 2), q[:, i:j])
    return gq, gk, gv


class _AttentionGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, o: Tensor, d: Tensor, lse: Tensor, mask: Tensor | None,
                weights: Tensor | None):
        d = d.contiguous()
        ctx.save_for_backward(q, k, v, o, d, lse, mask, weights)
        return _attention_grad(q, k, v, o, d, lse, mask, weights)

    @staticmethod
    @once_differentiable
    def backward(ctx, a_q: Tensor, a_k: Tensor, a_v: Tensor):
        return _attention_grad_backward(*ctx.saved_tensors, a_q, a_k, a_v)


def _attention_grad_backward(q, k, v, o, d, lse, mask, weights, a_q, a_k, a_v):
    r"""Vector-Jacobian product of :class:`_AttentionGrad`.

    With upstream gradients :math:`\bar A, \bar B, \bar C` of the outputs :math:`A = TK`,
    :math:`B = T^\top Q`, :math:`C = \tilde P^\top D` (``a_q, a_k, a_v``):

    - :math:`\bar T = \bar A K^\top + Q \bar B^\top`, :math:`\bar\delta = -\mathrm{rowsum}(\bar T \circ P)`;
    - :math:`\bar O = \bar\delta \circ D` (``O`` enters through :math:`\delta` only);
    - :math:`\bar P = \bar T \circ (G - \delta) + (D \bar C^\top) \circ M`,
      :math:`\bar S = P \circ (\bar P - \mathrm{rowsum}(\bar P \circ P))`;
    - :math:`\bar G = (\bar T \circ P) \circ M` (through :math:`G = (DV^\top) \circ M`);
    - :math:`\bar Q = T \bar B + \bar S K`, :math:`\bar K = T^\top \bar A + \bar S^\top Q`,
      :math:`\bar V = \bar G^\top D`, :math:`\bar D = \tilde P \bar C + \bar\delta \circ O + \bar G V`.
    """
    B, N, _ = q.shape
    M = k.shape[1]
    a_q, a_k, a_v = a_q.contiguous(), a_k.contiguous(), a_v.contiguous()
    gq = torch.empty_like(q, memory_format=torch.contiguous_format)
    gd = torch.empty_like(d)
    gk, gv = torch.zeros_like(k), torch.zeros_like(v)
    g_o = torch.empty_like(o, memory_format=torch.contiguous_format)
    delta = (d * o).sum(-1, keepdim=True)
    kt, vt, a_kt, a_vt = k.transpose(1, 2), v.transpose(1, 2), a_k.transpose(1, 2), a_v.transpose(1, 2)
    q2, lse2 = q * LOG2E, lse * LOG2E
    for i, j in _blocks(N, rows_per_block(B, N, M, q.device)):
        qi, di, mi = q[:, i:j], d[:, i:j], (mask[:, i:j] if mask is not None else None)
        kept = weights is not None
        p = _block(weights, B, i, j, M) if kept else _probabilities(q2[:, i:j], kt, lse2[:, i:j])
        gm = torch.bmm(di, vt)  # D V^T, before the mask
        g = gm * mi if mi is not None else gm
        g_minus = g.sub_(delta[:, i:j])  # G - delta (in place: G itself is not needed again)
        t = g_minus * p
        tbar = torch.baddbmm(torch.bmm(qi, a_kt), a_q[:, i:j], kt)  # A^- K^T + Q B^-^T
        tp = tbar * p
        dbar = -tp.sum(-1, keepdim=True)
        g_o[:, i:j] = dbar * di
        pbar = tbar.mul_(g_minus)  # T^- o (G - delta)
        pdbar = torch.bmm(di, a_vt)  # D C^-^T
        if mi is not None:
            pdbar.mul_(mi)
        pbar.add_(pdbar)
        sbar = pbar.sub_((pbar * p).sum(-1, keepdim=True)).mul_(p)
        gbar = tp.mul_(mi) if mi is not None else tp
        # Q^-: T B^- + S^- K
        torch.baddbmm(torch.bmm(t, a_k), sbar, k, out=gq[:, i:j])
        gk += torch.bmm(t.transpose(1, 2), a_q[:, i:j]) + torch.bmm(sbar.transpose(1, 2), qi)
        gv += torch.bmm(gbar.transpose(1, 2), di)
        pd = p if mi is None else (p * mi if kept else p.mul_(mi))  # the kept weights are read again
        # D^-: P~ C^- + dbar o O + G^- V
        gd_i = torch.baddbmm(torch.bmm(pd, a_v), gbar, v)
        gd[:, i:j] = gd_i.add_(dbar * o[:, i:j])
    return gq, gk, gv, g_o, gd, None, None, None


def attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, weights: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    r"""Attention :math:`O = (\mathrm{softmax}(QK^\top) \circ M) V` by blocks of query rows.

    Parameters
    ----------
    q, k, v
        Queries (already scaled), keys and values, ``(B, N, dh)`` each.
    mask
        Optional scaled dropout mask of the attention weights, ``(B, N, N)``.
    weights
        Optional buffer from :func:`new_weights` that receives the soft-max weights :math:`P`,
        which the backward pass then reads instead of recomputing them (pass the same buffer to
        :func:`attention_grad`). It is kept by autograd as long as the graph lives:
        ``B N M`` elements per call. The results do not depend on it.

    Returns
    -------
    tuple of Tensor
        ``O (B, N, dh)`` (differentiable once) and the row log-sum-exp of the scores
        ``(B, N, 1)`` (no gradient), which :func:`attention_grad` reuses.

    Examples
    --------
    >>> import torch
    >>> q, k, v = torch.randn(3, 2, 5, 4).unbind(0)
    >>> o, lse = attention(q, k, v)
    >>> torch.allclose(o, torch.softmax(q @ k.transpose(1, 2), -1) @ v, atol=1e-6)
    True
    >>> w = new_weights(q, k)  # keep the soft-max weights instead of recomputing them
    >>> torch.equal(attention(q, k, v, weights=w)[0], o)
    True
    """
    return _Attention.apply(q, k, v, mask, weights)


def attention_grad(
    q: Tensor, k: Tensor, v: Tensor, o: Tensor, d: Tensor, lse: Tensor, mask: Tensor | None = None,
    weights: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Gradients of :math:`\langle D, O\rangle` with respect to ``q, k, v`` for :math:`O` = :func:`attention`.

    Parameters
    ----------
    q, k, v, mask
        As for :func:`attention`.
    o, lse
        Its outputs.
    weights
        The buffer passed to :func:`attention`, if one was (its soft-max weights are read, not
        recomputed).
    d
        The upstream gradient :math:`D = \partial\Psi/\partial O`, ``(B, N, dh)``.

    Returns
    -------
    tuple of Tensor
        :math:`TK`, :math:`T^\top Q` and :math:`\tilde P^\top D` (see the module docstring),
        differentiable once with respect to ``q, k, v, o, d``.

    Examples
    --------
    >>> import torch
    >>> q, k, v, d = torch.randn(4, 2, 5, 4).unbind(0)
    >>> q = q.requires_grad_()
    >>> o, lse = attention(q, k, v)
    >>> gq, gk, gv = attention_grad(q, k, v, o, d, lse)
    >>> (ref,) = torch.autograd.grad((torch.softmax(q @ k.transpose(1, 2), -1) @ v * d).sum(), q)
    >>> torch.allclose(gq, ref, atol=1e-5)
    True
    """
    return _AttentionGrad.apply(q, k, v, o, d, lse, mask, weights)
