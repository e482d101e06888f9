"""Array API: rollout, the evaluation protocols, persistence."""

import json
import sys

import numpy as np
import pytest
import torch

import scwlm
from scwlm.core.metrics import wasserstein1

from conftest import TINY


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    snaps = [rng.normal(size=(30, 2)) + np.array([0.4 * t, 0.1 * t]) for t in range(4)]
    vels = [rng.normal(size=(30, 2)) * 0.1 for _ in range(4)]
    times = np.array([0.0, 1.0, 2.0, 3.0])
    mech = scwlm.fit(snaps[:3], times[:3], vels[0], n_iter=3, **TINY)
    return mech, snaps, times, vels


def test_rollout_shapes_and_start(fitted):
    mech, snaps, times, vels = fitted
    out = mech.rollout(snaps[0], vels[0], t0=0.0, times=[0.0, 0.5, 1.0, 3.0])
    assert out.shape == (4, 30, 2)
    assert np.allclose(out[0], snaps[0], atol=1e-6)  # t = t0 returns the start
    # uneven gaps are split into equal steps that hit every requested time exactly
    # the grid is t0 + k * dt / substeps: asking for other times does not change a result, and a
    # time between grid points (0.5 with step 0.2) is one partial step from the grid point before
    assert np.array_equal(mech.rollout(snaps[0], vels[0], t0=0.0, times=[1.0])[0], out[2])
    assert np.array_equal(mech.rollout(snaps[0], vels[0], t0=0.0, times=[0.5])[0], out[1])
    assert np.array_equal(mech.rollout(snaps[0], vels[0], t0=0.0, times=[0.4])[0], mech.rollout(snaps[0], vels[0], t0=0.0, times=[0.2, 0.4])[1])


def test_forecast_protocol_is_one_rollout_from_t0(fitted):
    mech, snaps, times, vels = fitted
    ev = mech.evaluate(snaps, times, vels, n_train=3)
    pred = mech.rollout(snaps[0], vels[0], t0=0.0, times=times[1:])
    expected = [wasserstein1(pred[i - 1], snaps[i]) for i in range(1, 4)]
    assert np.allclose(ev["w1"][1:], expected)
    assert np.isnan(ev["w1"][0])
    assert ev["train_indices"] == [1, 2] and ev["test_indices"] == [3]
    assert ev["train_mean"] == pytest.approx(np.mean(expected[:2]))
    assert ev["test_mean"] == pytest.approx(expected[2]) and ev["test_se"] == 0.0
    # n_train defaults to the snapshots up to the last training time
    assert mech.evaluate(snaps, times, vels)["n_train"] == 3


def test_interpolation_restarts_from_previous_observed_snapshot(fitted):
    mech, snaps, times, vels = fitted
    ev = mech.evaluate(snaps, times, vels, protocol="interpolate", holdout=[2])
    assert ev["start"] == [1]
    manual = mech.rollout(snaps[1], vels[1], t0=times[1], times=[times[2]])[0]
    assert ev["w1"][0] == pytest.approx(wasserstein1(manual, snaps[2]))
    # two consecutive holdouts both restart from the last observed snapshot before them
    ev2 = mech.evaluate(snaps, times, vels, protocol="interpolate", holdout=[1, 2])
    assert ev2["start"] == [0, 0]
    from_zero = mech.rollout(snaps[0], vels[0], t0=0.0, times=[times[2]])[0]
    assert ev2["w1"][1] == pytest.approx(wasserstein1(from_zero, snaps[2]))
    # without velocities for the start snapshot, it starts at rest
    ev3 = mech.evaluate(snaps, times, protocol="interpolate", holdout=[2])
    rest = mech.rollout(snaps[1], t0=times[1], times=[times[2]])[0]
    assert ev3["w1"][0] == pytest.approx(wasserstein1(rest, snaps[2]))


def test_default_holdout_is_the_times_not_seen_in_training(fitted):
    mech, snaps, times, vels = fitted
    ev = mech.evaluate(snaps, times, vels, protocol="interpolate")
    assert ev["holdout"] == [3]


def test_save_load_round_trip_is_bit_identical(fitted, tmp_path):
    mech, snaps, times, vels = fitted
    path = mech.save(tmp_path / "model")
    meta = json.loads((path / "config.json").read_text())
    assert meta["architecture"]["hidden"] == TINY["hidden"]
    state = torch.load(path / "state.pt", weights_only=True)  # plain tensors only
    assert set(state) == {"network", "history"}
    again = scwlm.load(path)
    a = mech.rollout(snaps[0], vels[0], t0=0.0, times=[1.0, 3.0])
    b = again.rollout(snaps[0], vels[0], t0=0.0, times=[1.0, 3.0])
    assert np.array_equal(a, b)
    assert again.friction == mech.friction and again.dt == mech.dt
    assert np.array_equal(again.history["loss"], mech.history["loss"])
    assert again.info["train_times"] == mech.info["train_times"]
    with pytest.raises(FileNotFoundError, match="not a saved scwlm model"):
        scwlm.load(tmp_path / "nothing")


def test_forces_potential_and_repr(fitted):
    mech, snaps, times, vels = fitted
    f = mech.forces(snaps[0])
    assert f.shape == (30, 2) and np.isfinite(f).all()
    eps = 1e-3
    x = snaps[0].copy()
    x[5, 0] += eps
    up = mech.potential(x)
    x[5, 0] -= 2 * eps
    down = mech.potential(x)
    assert (up - down) / (2 * eps) == pytest.approx(-f[5, 0], rel=2e-2, abs=2e-4)
    assert "Mechanics(dim=2" in repr(mech)
    assert mech.history["loss"].shape == (3,) and mech.history["friction"].shape == (3,)


def test_time_dependent_model_requires_time(fitted):
    _, snaps, times, _ = fitted
    mech = scwlm.fit(snaps[:2], times[:2], n_iter=1, time_features=4, **TINY)
    with pytest.raises(ValueError, match="pass t"):
        mech.forces(snaps[0])
    assert mech.forces(snaps[0], t=0.5).shape == (30, 2)
    assert mech.rollout(snaps[0], t0=0.0, times=[1.0]).shape == (1, 30, 2)


def test_ot_velocities_option_starts_the_model_at_mccann_interpolation():
    # zero forces (zero-initialised head, no steps taken) and no friction: the rollout is the
    # straight-line transport toward the next snapshot, i.e. McCann's interpolation
    from scwlm.core.baselines import mccann_interpolation
    from scwlm.core.metrics import wasserstein1

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    snaps = [x, x * 0.5 + 3.0, x * 0.2 + 5.0]
    mech = scwlm.fit(snaps, [0.0, 1.0, 2.0], "ot", friction=0.0, n_iter=1, lr=1e-12, friction_lr=1e-12,
                     zero_init_head=True, ema=None, hidden=8, heads=1, blocks=1, ffn=8, progress=False)
    assert mech.info["velocities"] == "ot"
    from scwlm.core.velocities import ot_velocity

    pred = mech.rollout(x, ot_velocity(x, snaps[1], 1.0), t0=0.0, times=[0.5])[0]
    pts, w = mccann_interpolation(x, snaps[1], 0.5)
    assert wasserstein1(pred, pts, y_weights=w) < 1e-6
    with pytest.raises(ValueError, match="velocities must be None, 'ot'"):
        scwlm.fit(snaps, [0.0, 1.0, 2.0], "rna", n_iter=1, hidden=8, heads=1, blocks=1, ffn=8, progress=False)


def test_a_fit_warns_when_numba_has_lowered_torchs_threads(monkeypatch):
    # numba with NUMBA_NUM_THREADS=1 sets the OpenMP thread count it shares with torch (scanpy's
    # neighbours do this silently); a fit then trains on one core and says so
    import types
    import warnings

    from scwlm import api

    snaps = [np.random.default_rng(0).normal(size=(12, 2)) + t for t in range(3)]
    kw = dict(n_iter=1, **TINY)
    old = torch.get_num_threads()
    monkeypatch.setattr(api, "_TORCH_THREADS_AT_IMPORT", 2)
    monkeypatch.setitem(sys.modules, "numba", types.SimpleNamespace(config=types.SimpleNamespace(NUMBA_NUM_THREADS=1)))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(1)
    try:
        with pytest.warns(UserWarning, match="NUMBA_NUM_THREADS=1"):
            scwlm.fit(snaps, [0.0, 1.0, 2.0], **kw)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one thread on purpose: no warning
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            scwlm.fit(snaps, [0.0, 1.0, 2.0], **kw)
    finally:
        torch.set_num_threads(old)
