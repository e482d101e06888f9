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
