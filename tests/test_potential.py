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
