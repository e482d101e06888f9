"""W1 that scales: exact on small clouds, mean +- se over bounded subsamples on large ones."""

import math

import numpy as np
import pytest
import torch

from scwlm.core.metrics import W1Estimate, wasserstein1, wasserstein1_scalable
from scwlm.core.protocols import forecast, interpolate
from scwlm.core.snapshots import as_snapshots


def _clouds(n=400, m=300, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.5


def test_small_clouds_are_exact_and_bit_identical():
    x, y = _clouds()
    est = wasserstein1_scalable(x, y)
    assert isinstance(est, W1Estimate)
    assert est.exact and est.n_draws == 1 and est.subsample is None and est.se == 0.0
    assert est.value == wasserstein1(x, y)  # the same float
    # torch input and the boundary (both clouds exactly max_points) stay exact
    est = wasserstein1_scalable(torch.as_tensor(x), torch.as_tensor(y), max_points=400)
    assert est.exact and est.value == wasserstein1(x, y)


def test_large_clouds_are_subsampled_reproducibly():
    x, y = _clouds(n=900, m=700)
    a = wasserstein1_scalable(x, y, max_points=500, subsample=250, n_draws=4, seed=3)
    b = wasserstein1_scalable(x, y, max_points=500, subsample=250, n_draws=4, seed=3)
    c = wasserstein1_scalable(x, y, max_points=500, subsample=250, n_draws=4, seed=4)
    assert not a.exact and a.n_draws == 4 and a.subsample == 250 and a.seed == 3
    assert a == b  # same seed, same draws
    assert a.value != c.value
    assert a.se > 0 and math.isfinite(a.se)
    # an estimate of the same quantity: close to the exact value (subsampling biases it upwards)
    exact = wasserstein1(x, y)
    assert exact * 0.9 < a.value < exact * 1.5
    # one cloud small, the other large: the small one is used whole in every draw
    d = wasserstein1_scalable(x[:100], y, max_points=500, subsample=250, n_draws=2)
    assert not d.exact and math.isfinite(d.value)


def test_non_finite_predictions_give_inf():
    x, y = _clouds(n=60, m=60)
    x[0, 0] = np.nan
    assert wasserstein1_scalable(x, y).value == math.inf
    assert wasserstein1_scalable(x, y, max_points=10, subsample=10).value == math.inf


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(max_points=0), "max_points"),
        (dict(n_draws=0), "n_draws"),
        (dict(subsample=1), "subsample"),
        (dict(n_draws=True), "n_draws"),
    ],
)
def test_bad_settings_name_the_argument(kw, match):
    x, y = _clouds(n=10, m=10)
    with pytest.raises(ValueError, match=match):
        wasserstein1_scalable(x, y, **kw)


def _stay(x0, v0, t0, times):
    return np.stack([x0.numpy()] * len(times))


def _snaps(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return as_snapshots([rng.normal(size=(n, 2)) + t for t in range(4)], [0.0, 1.0, 2.0, 3.0])


def test_protocols_on_small_data_are_the_exact_w1():
    s = _snaps()
    ev = forecast(_stay, s, n_train=2)
    assert ev["w1"][1:] == [wasserstein1(s.points[0], s.points[i]) for i in range(1, 4)]
    assert ev["w1_method"] == ["none", "exact", "exact", "exact"]
    assert ev["w1_se"][1:] == [0.0, 0.0, 0.0]
    assert ev["w1_settings"] == {"max_points": 5000, "subsample": 5000, "n_draws": 5, "seed": 0}
    ev = interpolate(_stay, s, [1, 3])
    assert ev["w1"] == [wasserstein1(s.points[0], s.points[1]), wasserstein1(s.points[2], s.points[3])]
    assert ev["w1_method"] == ["exact", "exact"]


def test_protocols_on_large_data_say_they_subsampled():
    s = _snaps(n=60)
    kw = dict(w1_max_points=50, w1_subsample=30, w1_draws=3, w1_seed=7, progress=False)
    ev = forecast(_stay, s, n_train=3, **kw)
    assert ev["w1_method"] == ["none", "subsampled", "subsampled", "subsampled"]
    assert all(se > 0 for se in ev["w1_se"][1:])
    assert ev["w1_settings"] == {"max_points": 50, "subsample": 30, "n_draws": 3, "seed": 7}
    # every time has its own reproducible draws: seed (w1_seed, time index)
    i = 2
    ref = wasserstein1_scalable(s.points[0], s.points[i], max_points=50, subsample=30, n_draws=3, seed=(7, i))
    assert ev["w1"][i] == ref.value and ev["w1_se"][i] == ref.se
    assert forecast(_stay, s, n_train=3, **kw)["w1"][1:] == ev["w1"][1:]
    ev = interpolate(_stay, s, [2], **kw)
    assert ev["w1_method"] == ["subsampled"] and math.isfinite(ev["test_mean"])


def test_mechanics_evaluate_reports_the_method(drifting, tiny):
    import scwlm

    snaps, times = drifting
    mech = scwlm.fit(snaps, times, n_iter=2, random_state=0, **tiny)
    ev = mech.evaluate(snaps, times, n_train=2)
    assert ev["w1_method"][1:] == ["exact", "exact"]
