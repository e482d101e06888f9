"""The row-blocked attention kernels of the analytic force equal the unblocked formulas, values and gradients."""

import pytest
import torch

import scwlm.core.attention as attn
from scwlm.core.attention import attention, attention_grad, rows_per_block


def _inputs(B=3, N=7, dh=4, seed=0, mask=False, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q, k, v, d = (torch.randn(B, N, dh, generator=g, dtype=dtype) for _ in range(4))
    m = None
    if mask:  # a scaled dropout mask with p = 0.25
        m = (torch.rand(B, N, N, generator=g, dtype=dtype) < 0.75).to(dtype) / 0.75
    return q, k, v, d, m


def _reference(q, k, v, d, m):
    """The unblocked formulas of the analytic force's attention (forward and gradient)."""
    P = torch.softmax(q @ k.transpose(1, 2), -1)
    Pd = P * m if m is not None else P
    o = Pd @ v
    G = d @ v.transpose(1, 2)
    G = G * m if m is not None else G
    T = P * (G - (d * o).sum(-1, keepdim=True))
    return o, T @ k, T.transpose(1, 2) @ q, Pd.transpose(1, 2) @ d


@pytest.fixture(params=[False, True], ids=["one block", "blocks of 2 rows"])
def blocked(request, monkeypatch):
    if request.param:  # force several row blocks, one of them ragged
        monkeypatch.setattr(attn, "BLOCK_ELEMENTS", 2 * 3 * 7)
        assert rows_per_block(3, 7, 7) == 2
    return request.param


@pytest.mark.parametrize("mask", [False, True], ids=["no dropout", "dropout"])
def test_values_equal_the_unblocked_formulas(blocked, mask):
    q, k, v, d, m = _inputs(mask=mask)
    o, lse = attention(q, k, v, m)
    gq, gk, gv = attention_grad(q, k, v, o, d, lse, m)
    ref = _reference(q, k, v, d, m)
    for a, b in zip((o, gq, gk, gv), ref):
        assert torch.allclose(a, b, atol=1e-12)
    assert torch.allclose(lse[..., 0], torch.logsumexp(q @ k.transpose(1, 2), -1), atol=1e-12)


@pytest.mark.parametrize("mask", [False, True], ids=["no dropout", "dropout"])
def test_attention_grad_is_the_gradient_of_the_attention(mask):
    q, k, v, d, m = _inputs(mask=mask, seed=1)
    q, k, v = (x.requires_grad_() for x in (q, k, v))
    o, lse = attention(q, k, v, m)
    ref = torch.autograd.grad((o * d).sum(), (q, k, v))
    for a, b in zip(attention_grad(q, k, v, o.detach(), d, lse, m), ref):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("mask", [False, True], ids=["no dropout", "dropout"])
def test_backward_passes_equal_autograd_of_the_unblocked_formulas(blocked, mask):
    """The composite (attention, then its gradient, as the analytic force chains them) differentiated
    once: the hand-written backward passes against autograd of the plain formulas and finite differences."""
    q, k, v, d, m = _inputs(mask=mask, seed=2)
    cot = [torch.randn_like(q) for _ in range(4)]

    def fused(q, k, v, d):
        o, lse = attention(q, k, v, m)
        return (o, *attention_grad(q, k, v, o, d, lse, m))

    def plain(q, k, v, d):
        return _reference(q, k, v, d, m)

    leaves = [x.clone().requires_grad_() for x in (q, k, v, d)]
    ga = torch.autograd.grad(sum((y * c).sum() for y, c in zip(fused(*leaves), cot)), leaves)
    gb = torch.autograd.grad(sum((y * c).sum() for y, c in zip(plain(*leaves), cot)), leaves)
    for a, b in zip(ga, gb):
        assert torch.allclose(a, b, atol=1e-10)
    small = [x[:1, :4, :2].clone().requires_grad_() for x in (q, k, v, d)]
    if m is not None:
        m = m[:1, :4, :4]
    assert torch.autograd.gradcheck(fused, small)


def test_rows_per_block_keeps_a_slice_near_the_budget():
    assert rows_per_block(4, 1000, 1000) * 4 * 1000 <= attn.BLOCK_ELEMENTS
    assert rows_per_block(4000, 1000, 1000) == 1
    assert rows_per_block(1, 10, 10) == 10


@pytest.mark.parametrize("mask", [False, True], ids=["no dropout", "dropout"])
def test_kept_weights_change_no_bit_of_the_values_or_the_gradients(blocked, mask):
    """Keeping the soft-max weights for the backward passes instead of recomputing them is a
    memory trade-off only: forward values and the training gradient are identical to the bit."""
    q, k, v, d, m = _inputs(mask=mask, seed=3, dtype=torch.float32)
    cot = [torch.randn_like(q) for _ in range(4)]
    runs = []
    for keep in (False, True):
        leaves = [x.clone().requires_grad_() for x in (q, k, v, d)]
        w = attn.new_weights(leaves[0], leaves[1]) if keep else None
        o, lse = attention(*leaves[:3], m, w)
        outs = (o, *attention_grad(*leaves[:3], o, leaves[3], lse, m, w))
        grads = torch.autograd.grad(sum((y * c).sum() for y, c in zip(outs, cot)), leaves)
        runs.append([y.detach() for y in outs] + list(grads))
    for a, b in zip(*runs):
        assert torch.equal(a, b)
    # the buffer holds the soft-max weights, block after block of rows
    w = attn.new_weights(q, k)
    attention(q, k, v, m, w)
    P = torch.softmax(q @ k.transpose(1, 2), -1)
    r = rows_per_block(*q.shape[:2], k.shape[1])
    blocks = [P[:, i:i + r].reshape(-1) for i in range(0, q.shape[1], r)]
    assert torch.allclose(w, torch.cat(blocks), atol=1e-6)
