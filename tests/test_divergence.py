"""Sinkhorn divergences (our fused loop vs GeomLoss) and the exact W1."""

import numpy as np
import pytest
import torch

from scwlm.core.divergence import SinkhornDivergence, blur_heuristic, point_cloud_diameter
from scwlm.core.metrics import mean_se, wasserstein1


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("n,m", [(30, 30), (25, 40)])
def test_fused_sinkhorn_matches_geomloss_values_and_gradients(p, n, m):
    g = torch.Generator().manual_seed(p * 100 + n)
    x = torch.randn(3, n, 2, generator=g, dtype=torch.float64).requires_grad_(True)
    y = (torch.randn(3, m, 2, generator=g, dtype=torch.float64) + 0.7).requires_grad_(True)
    a = torch.rand(3, n, generator=g, dtype=torch.float64)
    a[0, :4] = 0.0  # zero weights act as padding
    a = a / a.sum(1, keepdim=True)
    b = torch.full((3, m), 1.0 / m, dtype=torch.float64)
    res = {}
    for backend in ("tensorized", "geomloss"):
        loss = SinkhornDivergence(p=p, blur=0.15, scaling=0.9, diameter=6.0, backend=backend)
        v = loss(x, y, a, b)
        res[backend] = (v, *torch.autograd.grad(v.sum(), (x, y)))
    for ours, ref in zip(res["tensorized"], res["geomloss"]):
        assert torch.allclose(ours, ref, atol=1e-10, rtol=1e-8)



@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("chunk", [64, 1000])  # blocks of rows of one problem / of several whole problems
def test_blocked_extrapolation_matches_geomloss_and_reuses_its_workspace(p, chunk, monkeypatch):
    from scwlm.core import divergence

    monkeypatch.setattr(divergence, "_CHUNK_ELEMENTS", chunk)
    g = torch.Generator().manual_seed(7 + p)
    x = torch.randn(4, 21, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    y = (torch.randn(4, 17, 3, generator=g, dtype=torch.float64) * 0.8 + 0.3).requires_grad_(True)
    ours = SinkhornDivergence(p=p, blur=0.2, diameter=7.0, backend="tensorized")
    ref = SinkhornDivergence(p=p, blur=0.2, diameter=7.0, backend="geomloss")
    w = torch.rand(4, generator=g, dtype=torch.float64)  # a gradient that differs between problems
    for loss in (ours, ref):
        v = loss(x, y)
        res = (v, *torch.autograd.grad((w * v).sum(), (x, y)))
        if loss is ours:
            mine = res
    for a, b in zip(mine, res):
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-8)
    # a second call of the same shapes allocates no new scratch memory
    held = {k: t.data_ptr() for k, t in ours._workspace._bufs.items()}
    assert held and ours._workspace.nbytes > 0
    torch.autograd.grad(ours(x.detach() + 0.1, y.detach()).sum() + ours(x, y).sum(), x)
    assert {k: t.data_ptr() for k, t in ours._workspace._bufs.items()} == held

def test_divergence_vanishes_on_identical_clouds_and_grows_with_shift():
    loss = SinkhornDivergence(p=2, blur=0.05, diameter=5.0)
    x = torch.randn(1, 200, 2, dtype=torch.float64)
    values = [float(loss(x, x + s)[0]) for s in (0.0, 0.5, 1.0)]
    assert abs(values[0]) < 1e-6
    assert values[0] < values[1] < values[2]
    # for a translation the p=2 divergence is close to |shift|^2 / 2 at small blur
    assert abs(values[2] - 1.0) < 0.1


def test_blur_heuristic_scale_and_bounds():
    g = torch.Generator().manual_seed(0)
    pts = [torch.randn(400, 2, dtype=torch.float64) * 2.0]
    b = blur_heuristic(pts, generator=g)
    # median distance between two N(0, 4 I) points in 2-D is 2 * sqrt(2) * sqrt(2 ln 2) ~ 3.33
    assert 1.4 < b < 1.9
    assert blur_heuristic([torch.zeros(10, 2)], generator=g) == 1e-3
    assert blur_heuristic([torch.randn(10, 2) * 1e3], generator=g) == 10.0


def test_diameter_is_bounding_box_diagonal():
    d = point_cloud_diameter([torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])])
    assert abs(d - 5.0) < 1e-6


def test_w1_exact_cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    assert abs(wasserstein1(x, x + np.array([3.0, 4.0])) - 5.0) < 1e-9
    # 1-D: W1 is the L1 distance between quantile functions
    a, b = np.sort(rng.normal(size=50)), np.sort(rng.normal(size=50) * 2 + 1)
    assert abs(wasserstein1(a[:, None], b[:, None]) - np.abs(a - b).mean()) < 1e-9
    assert wasserstein1(np.full((3, 2), np.nan), x) == float("inf")
    with pytest.raises(ValueError):
        wasserstein1(x, np.zeros((0, 2)))


def test_mean_se():
    m, se = mean_se([1.0, 3.0])
    assert m == 2.0 and abs(se - 1.0) < 1e-12
    assert mean_se([4.0]) == (4.0, 0.0)


# ---------------------------------------------------------------------------- epsilon-steps, warm starts
from scwlm.core.divergence import WARM_START_STEPS, epsilon_schedule, epsilon_steps  # noqa: E402


def test_epsilon_steps_counts_the_schedule_and_the_last_call():
    assert epsilon_steps(2, 6.0, 0.15, 0.9) == len(epsilon_schedule(2, 6.0, 0.15, 0.9))
    assert epsilon_steps(1, 8.0, 1.25, 0.9) < epsilon_steps(1, 8.0, 0.1, 0.9)
    x, y = torch.randn(2, 20, 2), torch.randn(2, 20, 2)
    for backend in ("tensorized", "geomloss"):
        loss = SinkhornDivergence(p=2, blur=0.1, diameter=5.0, backend=backend)
        assert loss.last_n_steps is None
        loss(x, y)
        loss(x, y, blur=[0.1, 0.5])  # problems of one call iterate together: the longest schedule
        assert loss.last_n_steps == epsilon_steps(2, 5.0, 0.1, 0.9) and loss.last_backend == backend
        assert loss.n_calls == 2 and loss.total_steps == 2 * epsilon_steps(2, 5.0, 0.1, 0.9)
    loss = SinkhornDivergence(p=2, blur=0.1, backend="geomloss")
    loss(x, y)  # GeomLoss measures the diameter: the count is unknown
    assert loss.last_n_steps is None


@pytest.mark.parametrize("p,blur", [(1, 1.25), (2, 1.0)])
def test_warm_start_equals_cold_at_convergence(p, blur):
    g = torch.Generator().manual_seed(p)
    x = torch.randn(2, 150, 2, dtype=torch.float64, generator=g)
    y = torch.randn(2, 120, 2, dtype=torch.float64, generator=g) * 1.2 + 0.4
    cold = SinkhornDivergence(p=p, blur=blur, diameter=8.0)
    warm = SinkhornDivergence(p=p, blur=blur, diameter=8.0, warm_start=True)
    first = warm(x, y)
    assert warm.last_n_steps == cold_steps(p, blur)  # nothing kept yet: a cold start
    assert torch.equal(first, cold(x, y))
    for _ in range(3):  # training-like: the same particles, moved a little
        x = x + 0.02 * torch.randn(x.shape, generator=g, dtype=torch.float64)
        xr = x.clone().requires_grad_(True)
        vc = cold(xr, y)
        (gc,) = torch.autograd.grad(vc.sum(), xr)
        vw = warm(xr, y)
        (gw,) = torch.autograd.grad(vw.sum(), xr)
        assert warm.last_n_steps == WARM_START_STEPS < cold.last_n_steps
        assert torch.allclose(vw, vc, rtol=1e-3, atol=1e-6)
        assert float((gw - gc).norm() / gc.norm()) < 2e-2
    # another shape starts cold; reset forgets the kept potentials
    warm(x[:, :100], y)
    assert warm.last_n_steps == cold_steps(p, blur)
    warm.reset_warm_start()
    warm(x, y)
    assert warm.last_n_steps == cold_steps(p, blur)


def cold_steps(p, blur):
    return epsilon_steps(p, 8.0, blur, 0.9)


def test_warm_start_and_autocast_options_are_checked():
    with pytest.raises(ValueError):
        SinkhornDivergence(warm_start=-1)
    with pytest.raises(ValueError):
        SinkhornDivergence(warm_start=2.5)
    with pytest.raises(ValueError):
        SinkhornDivergence(autocast="yes")
    assert SinkhornDivergence(warm_start=3).warm_start == 3 and SinkhornDivergence().warm_start == 0
