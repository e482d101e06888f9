"""Bad input fails at the boundary with a ValueError naming the problem."""

import numpy as np
import pytest

import scwlm

from conftest import TINY


def good():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(20, 2)) for _ in range(3)], [0.0, 1.0, 2.0]


def fit(*args, **kw):
    return scwlm.fit(*args, n_iter=1, **{**TINY, **kw})


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_points(value):
    snaps, times = good()
    snaps[1][4, 1] = value
    with pytest.raises(ValueError, match=r"snapshot 1 contains non-finite values.*row 4"):
        fit(snaps, times)


def test_single_snapshot():
    snaps, times = good()
    with pytest.raises(ValueError, match="at least 2 snapshots, got 1"):
        fit(snaps[:1], times[:1])


def test_unsorted_times():
    snaps, _ = good()
    with pytest.raises(ValueError, match=r"strictly increasing.*times\[1\]=2.0 > times\[2\]=1.0"):
        fit(snaps, [0.0, 2.0, 1.0])


def test_duplicate_times():
    snaps, _ = good()
    with pytest.raises(ValueError, match=r"duplicate time 1.0 at indices 1 and 2"):
        fit(snaps, [0.0, 1.0, 1.0])


def test_non_finite_times_and_count():
    snaps, _ = good()
    with pytest.raises(ValueError, match="non-finite"):
        fit(snaps, [0.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="got 2 times for 3 snapshots"):
        fit(snaps, [0.0, 1.0])


def test_dimension_mismatch():
    snaps, times = good()
    snaps[2] = np.zeros((20, 3))
    with pytest.raises(ValueError, match="snapshot 2 has dimension 3, but snapshot 0 has dimension 2"):
        fit(snaps, times)


def test_empty_snapshot():
    snaps, times = good()
    snaps[1] = np.zeros((0, 2))
    with pytest.raises(ValueError, match="snapshot 1 is empty"):
        fit(snaps, times)


def test_not_a_2d_array():
    snaps, times = good()
    snaps[0] = np.zeros(5)
    with pytest.raises(ValueError, match=r"snapshot 0 must be a 2-D array"):
        fit(snaps, times)


def test_velocities_that_do_not_match_their_snapshot():
    snaps, times = good()
    with pytest.raises(ValueError, match=r"velocities\[0\] has shape \(19, 2\) but snapshot 0 has shape \(20, 2\)"):
        fit(snaps, times, np.zeros((19, 2)))
    with pytest.raises(ValueError, match=r"velocities\[2\] has shape \(20, 3\)"):
        fit(snaps, times, [None, None, np.zeros((20, 3))])
    with pytest.raises(ValueError, match="got 2 velocity entries for 3 snapshots"):
        fit(snaps, times, [np.zeros((20, 2)), None])
    bad = np.zeros((20, 2))
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"velocities\[0\] contains non-finite"):
        fit(snaps, times, bad)


def test_unknown_config_key_with_suggestion():
    snaps, times = good()
    with pytest.raises(ValueError, match=r"unknown config key 'hiden'; did you mean 'hidden'"):
        fit(snaps, times, hiden=8)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(p=3), "p must be 1 or 2"),
        (dict(heads=3), "divisible"),
        (dict(dropout=1.0), "dropout"),
        (dict(lr=-1.0), "lr must be a positive number"),
        (dict(integrator="rk4"), "integrator must be one of"),
        (dict(checkpoint_every=5), "checkpoint_path"),
    ],
)
def test_invalid_config_values(kw, match):
    snaps, times = good()
    with pytest.raises(ValueError, match=match):
        fit(snaps, times, **kw)


def test_invalid_friction_seed_and_iterations():
    snaps, times = good()
    with pytest.raises(ValueError, match="friction must be 'learnable' or"):
        fit(snaps, times, friction="sticky")
    with pytest.raises(ValueError, match="friction must be 'learnable' or a finite number >= 0"):
        fit(snaps, times, friction=-1.0)
    with pytest.raises(ValueError, match="random_state must be an integer"):
        fit(snaps, times, random_state=1.5)
    with pytest.raises(ValueError, match="n_iter must be a positive integer"):
        scwlm.fit(snaps, times, n_iter=0, **TINY)
    with pytest.raises(ValueError, match="friction has 3 entries but 2 models"):
        fit(snaps, times, random_state=[0, 1], friction=[0.1, 0.2, 0.3])


def test_rollout_and_evaluate_validate_inputs():
    snaps, times = good()
    mech = fit(snaps, times)
    with pytest.raises(ValueError, match="x0 has dimension 3, expected 2"):
        mech.rollout(np.zeros((5, 3)), t0=0.0, times=[1.0])
    with pytest.raises(ValueError, match="times must be >= t0"):
        mech.rollout(snaps[0], t0=1.0, times=[0.5])
    with pytest.raises(ValueError, match="non-decreasing"):
        mech.rollout(snaps[0], t0=0.0, times=[2.0, 1.0])
    with pytest.raises(ValueError, match="v0 has dimension"):
        mech.rollout(snaps[0], np.zeros((20, 3)), t0=0.0, times=[1.0])
    with pytest.raises(ValueError, match="unknown protocol"):
        mech.evaluate(snaps, times, protocol="hindcast")
    with pytest.raises(ValueError, match="holdout index 5 out of range"):
        mech.evaluate(snaps, times, protocol="interpolate", holdout=[5])
    with pytest.raises(ValueError, match=r"holdout index 0 out of range"):  # t_0 is always the start
        mech.evaluate(snaps, times, protocol="interpolate", holdout=[1, 2, 0])
