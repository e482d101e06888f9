"""The set-attention potential: permutation equivariance and the two force implementations."""

import pytest
import torch

from scwlm.core.potential import SetPotential


def make(n_models=1, dropout=0.0, time_features=0, seed=0, quadratic=False):
    gens = [torch.Generator().manual_seed(seed + e) for e in range(n_models)]
    return SetPotential(3, hidden=16, heads=4, blocks=2, ffn=32, dropout=dropout, time_features=time_features,
                        quadratic=quadratic, n_models=n_models, generators=gens).double()


@pytest.mark.parametrize("time_features", [0, 8])
def test_forces_permutation_equivariant_and_energy_invariant(time_features):
    net = make(time_features=time_features)
    x = torch.randn(1, 25, 3, dtype=torch.float64)
    perm = torch.randperm(25)
    t = 0.7 if time_features else None
    f = net.forces(x, t)
    f_perm = net.forces(x[:, perm], t)
    assert torch.allclose(f_perm, f[:, perm], atol=1e-12)
    assert torch.allclose(net(x[:, perm], t), net(x, t), atol=1e-12)


def test_forces_are_minus_gradient_of_the_energy():
    net = make()
    x = torch.randn(1, 10, 3, dtype=torch.float64)
    f = net.forces(x)
    eps = 1e-6
    dx = torch.zeros_like(x)
    dx[0, 3, 1] = eps
    fd = (net(x + dx) - net(x - dx)) / (2 * eps)
    assert abs(float(fd.detach()) + float(f[0, 3, 1])) < 1e-7


@pytest.mark.parametrize("dropout,time_features,quadratic", [(0.0, 0, False), (0.2, 8, False), (0.0, 0, True)])
def test_analytic_forces_match_autograd_including_second_derivatives(dropout, time_features, quadratic):
    net = make(n_models=2, dropout=dropout, time_features=time_features, quadratic=quadratic)
    if quadratic:  # the one-body term starts at zero: give it values
        with torch.no_grad():
            net.quad_w.normal_()
            net.quad_b.normal_()
    x = torch.randn(2, 20, 3, dtype=torch.float64, requires_grad=True)
    masks = net.sample_masks(20, [torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)], "cpu", torch.float64)
    t = torch.tensor([0.1, 0.9], dtype=torch.float64) if time_features else None
    fa = net.forces(x, t, masks=masks, create_graph=True, impl="autograd")
    fb = net.forces(x, t, masks=masks, create_graph=True, impl="analytic")
    assert torch.allclose(fa, fb, atol=1e-10)
    cot = torch.randn_like(fa)
    params = list(net.parameters())  # (biases that only shift the energy get no gradient: None)
    ga = torch.autograd.grad((fa * cot).sum(), params + [x], allow_unused=True)
    gb = torch.autograd.grad((fb * cot).sum(), params + [x], allow_unused=True)
    used = 0
    for a, b, p in zip(ga, gb, params + [x]):
        a = torch.zeros_like(p) if a is None else a
        b = torch.zeros_like(p) if b is None else b
        assert torch.allclose(a, b, atol=1e-9, rtol=1e-7)
        used += bool(a.abs().sum() > 0)
    assert used >= len(params) - 2


def test_ensemble_member_equals_model_built_alone():
    ens = make(n_models=3, seed=10)
    alone = make(n_models=1, seed=11)  # member 1 of the ensemble was drawn from seed 11
    x = torch.randn(3, 15, 3, dtype=torch.float64)
    assert torch.allclose(ens.forces(x)[1:2], alone.forces(x[1:2]), atol=1e-12)
    assert torch.allclose(ens.select(1).double().forces(x[1:2]), alone.forces(x[1:2]), atol=1e-12)


def test_time_features_require_time():
    net = make(time_features=4)
    with pytest.raises(ValueError, match="time"):
        net.forces(torch.randn(1, 5, 3, dtype=torch.float64))


def test_shape_checked():
    with pytest.raises(ValueError, match="expected particles"):
        make().forces(torch.randn(5, 3, dtype=torch.float64))


def test_quadratic_term_is_a_one_body_harmonic_potential():
    net = make(n_models=1, quadratic=True)
    with torch.no_grad():
        net.head_w.zero_()  # the attention part exerts no force
        net.quad_w.copy_(torch.tensor([[[2.0, 1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 3.0]]], dtype=net.quad_w.dtype))
        net.quad_b.fill_(0.5)
    x = torch.randn(1, 7, 3, dtype=net.quad_w.dtype)
    A = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]], dtype=x.dtype)  # the symmetric part
    assert torch.allclose(net.forces(x), -(x @ A + 0.5), atol=1e-10)
    assert torch.allclose(net.forces(x, impl="analytic"), -(x @ A + 0.5), atol=1e-10)


def test_auto_force_is_analytic_on_large_sets_and_autograd_on_small_ones(monkeypatch):
    import scwlm.core.potential as potential

    net = make()
    calls = []
    real = potential.SetPotential._forces_analytic
    monkeypatch.setattr(potential.SetPotential, "_forces_analytic", lambda self, *a: calls.append(1) or real(self, *a))
    small = torch.randn(1, potential.AUTO_ANALYTIC_PARTICLES - 1, 3, dtype=torch.float64)
    large = torch.randn(1, potential.AUTO_ANALYTIC_PARTICLES, 3, dtype=torch.float64)
    assert torch.equal(net.forces(small), net.forces(small, impl="autograd")) and not calls
    assert torch.equal(net.forces(large), net.forces(large, impl="analytic")) and len(calls) == 2
    with pytest.raises(ValueError, match="force implementation"):
        net.forces(small, impl="fused")


def test_gelu_backward_equals_autograds_first_and_second_derivatives_also_where_the_density_underflows():
    """``dg * gelu'(u)`` and its derivatives, the analytic force's GELU step, against autograd of ``F.gelu``,
    on pre-activations up to |u| = 40 (where exp(-u^2/2) is far below float32's normal range)."""
    from scwlm.core.potential import _gelu_backward

    u = torch.cat([torch.linspace(-40, 40, 161), torch.randn(50)]).double().requires_grad_()
    dg = torch.randn_like(u).requires_grad_()
    (ref,) = torch.autograd.grad(torch.nn.functional.gelu(u), u, dg, create_graph=True)
    out = _gelu_backward(dg, u)
    assert torch.allclose(out, ref, atol=1e-14)
    cot = torch.randn_like(u)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(
        torch.autograd.grad(out, (dg, u), cot), torch.autograd.grad(ref, (dg, u), cot)))
    assert torch.autograd.gradcheck(_gelu_backward, (dg.detach()[:20].requires_grad_(), u.detach()[140:160].requires_grad_()))
    u32 = u.detach().float().requires_grad_()
    g32 = torch.autograd.grad(_gelu_backward(torch.ones_like(u32), u32).sum(), u32)[0]
    assert torch.isfinite(g32).all() and float(g32[u32.detach().abs() > 14].abs().max()) == 0.0


def test_dropout_masks_drop_p_unbiased_and_per_model_streams():
    """Masks keep entries with probability 1 - p (p on a 1/65536 grid) scaled to mean exactly one; model e's
    masks come from its own generator only, so an ensemble member gets the masks it would get alone."""
    net = make(n_models=2, dropout=0.25)
    gens = lambda: [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]  # noqa: E731
    m = net.sample_masks(200, gens(), "cpu", torch.float32)
    att = m.attention[0]
    assert att.shape == (2, 4, 200, 200) and m.hidden[0].shape == (2, 200, 32) and m.output[1].shape == (2, 200, 16)
    assert torch.equal(torch.unique(att), torch.tensor([0.0, 4.0 / 3.0]))
    assert abs(float((att == 0).double().mean()) - 0.25) < 0.003  # 320k entries: the SE is 0.0008
    alone = make(n_models=1, dropout=0.25).sample_masks(200, gens()[1:], "cpu", torch.float32)
    assert torch.equal(alone.attention[0][0], att[1]) and torch.equal(alone.output[1][0], m.output[1][1])
    again = net.sample_masks(200, gens(), "cpu", torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(m.attention + m.hidden, again.attention + again.hidden))
    off = net.sample_masks(50, gens(), "cpu", torch.float32, active=[True, False])
    assert bool((off.attention[0][1] == 1).all()) and bool((off.attention[0][0] == 0).any())
