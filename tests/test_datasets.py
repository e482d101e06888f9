"""Tests of scwlm.datasets: simulators (Boids, gradient-flow SDEs, harmonic well) and loaders.

Real-data tests read the folder from the SCWLM_DATA_DIR environment variable and are skipped when
it is unset or the file is absent. No test touches the network: the download hook is replaced.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import scwlm.datasets as D
from scwlm.datasets import loaders

# ----------------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Replace the single network entry point; record the URLs that were asked for."""
    calls: list[str] = []

    def refuse(url: str):
        calls.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(loaders, "_open_url", refuse)
    return calls


@pytest.fixture
def empty_dirs(tmp_path, monkeypatch, no_network):
    """An empty SCWLM_DATA_DIR and an empty user cache, no network."""
    data = tmp_path / "data"
    cache = tmp_path / "xdg"
    data.mkdir()
    monkeypatch.setenv("SCWLM_DATA_DIR", str(data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return data, cache / "scwlm"


@pytest.fixture
def real_data_dir(tmp_path, monkeypatch, no_network) -> Path:
    """The folder CI points SCWLM_DATA_DIR at; the cache is redirected so only that folder counts."""
    env = os.environ.get("SCWLM_DATA_DIR")
    if not env:
        pytest.skip("SCWLM_DATA_DIR is not set: real-data tests need the data folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return Path(env)


def need(folder: Path, name: str) -> Path:
    p = folder / name
    if not p.is_file():
        pytest.skip(f"{name} is not in SCWLM_DATA_DIR={folder}")
    return p


# ----------------------------------------------------------------------------------------------------
# Dataset container
# ----------------------------------------------------------------------------------------------------


def test_dataset_unpacks_validates_and_feeds_the_engine():
    ds = D.harmonic_well(n=10, n_times=4)
    snaps, times, vels = ds
    assert snaps is ds.snapshots and times is ds.times and vels is ds.velocities
    assert ds.astuple() == (ds.snapshots, ds.times, ds.velocities)
    assert "4 snapshots of dim 2" in repr(ds) and "10 points each" in repr(ds)
    sel = ds.select([0, 2])
    np.testing.assert_array_equal(sel.times, ds.times[[0, 2]])
    assert sel.meta["selected"] == [0, 2]
    from scwlm.core.snapshots import as_snapshots

    s = as_snapshots(*ds)  # what scwlm.fit does with its inputs
    assert len(s.points) == 4

    with pytest.raises(ValueError, match="strictly increasing"):
        D.Dataset([np.zeros((2, 2))] * 2, [1.0, 1.0])
    with pytest.raises(ValueError, match=r"velocities\[1\] has shape"):
        D.Dataset([np.zeros((2, 2))] * 2, [0.0, 1.0], [None, np.zeros((3, 2))])
    with pytest.raises(ValueError, match="same dimension"):
        D.Dataset([np.zeros((2, 2)), np.zeros((2, 3))], [0.0, 1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        ds.select([2, 0])


# ----------------------------------------------------------------------------------------------------
# Boids
# ----------------------------------------------------------------------------------------------------


def test_boids_unit_speed_and_positions_advance_by_dt_v():
    ds = D.boids(n=200, n_steps=30, dt=0.5)
    assert ds.n_snapshots == 31 and all(s.shape == (200, 2) for s in ds.snapshots)
    np.testing.assert_allclose(ds.times, 0.5 * np.arange(31))
    for v in ds.velocities:
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-12)
    for k in range(30):
        np.testing.assert_allclose(ds.snapshots[k + 1] - ds.snapshots[k], 0.5 * ds.velocities[k + 1], atol=1e-12)
    # initial velocities: zero-mean Gaussian draws, then normalised -> mean direction is small
    assert np.linalg.norm(ds.velocities[0].mean(axis=0)) < 0.2
    assert ds.meta["n_train"] == 15 and ds.meta["w_alignment"] == 0.3


def test_boids_default_is_the_paper_setting():
    t0 = time.perf_counter()
    ds = D.boids()
    elapsed = time.perf_counter() - t0
    assert ds.n_snapshots == 101 and ds.sizes == [1000] * 101
    assert ds.times[0] == 0.0 and ds.times[-1] == 50.0
    assert ds.meta["n_train"] == 50 and ds.times[ds.meta["n_train"] - 1] == 24.5
    assert all(v is not None for v in ds.velocities)
    # the boundary keeps the flock near the box |x| <= 5 (agents overshoot by at most a few steps)
    assert np.abs(ds.snapshots[-1]).max() < 12
    assert elapsed < 30, f"boids() took {elapsed:.1f} s; it should be a few seconds"


def test_boids_boundary_acts_only_beyond_the_boundary():
    v = np.array([[0.0, 1.0]])
    np.testing.assert_array_equal(D.boids_steering(np.array([[4.9, 0.0]]), v), [[0.0, 0.0]])
    np.testing.assert_allclose(D.boids_steering(np.array([[5.1, 0.0]]), v), [[-0.5, 0.0]])
    np.testing.assert_allclose(D.boids_steering(np.array([[-5.1, 5.2]]), v, w_boundary=2.0), [[2.0, -2.0]])
    np.testing.assert_array_equal(D.boids_steering(np.array([[0.0, -4.99]]), v), [[0.0, 0.0]])


def test_boids_steering_counts_the_agent_itself_in_the_means():
    x = np.array([[0.0, 0.0], [0.2, 0.0], [3.0, 0.0]])  # agent 2 is out of everyone's range
    v = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    dv = D.boids_steering(x, v)
    # agent 0: neighbours {0, 1}: cohesion mean((0,0),(0.2,0)) = (0.1,0); separation -(0.2,0);
    # alignment mean((0,0),(-1,1)) = (-0.5,0.5)
    expected0 = 0.005 * np.array([0.1, 0]) + 0.1 * np.array([-0.2, 0]) + 0.3 * np.array([-0.5, 0.5])
    np.testing.assert_allclose(dv[0], expected0, atol=1e-15)
    # agent 1: cohesion mean((-0.2,0),(0,0)) = (-0.1,0); separation (0.2,0); alignment (0.5,-0.5)
    expected1 = 0.005 * np.array([-0.1, 0]) + 0.1 * np.array([0.2, 0]) + 0.3 * np.array([0.5, -0.5])
    np.testing.assert_allclose(dv[1], expected1, atol=1e-15)
    np.testing.assert_array_equal(dv[2], [0.0, 0.0])


def test_boids_same_seed_same_output_different_seed_different():
    a, b, c = (D.boids(n=100, n_steps=5, random_state=s) for s in (3, 3, 4))
    for k in range(6):
        np.testing.assert_array_equal(a.snapshots[k], b.snapshots[k])
        np.testing.assert_array_equal(a.velocities[k], b.velocities[k])
    assert not np.allclose(a.snapshots[0], c.snapshots[0])
    assert not np.allclose(a.snapshots[-1], c.snapshots[-1])


def test_boids_mixture_start_has_the_requested_components():
    means = np.array([[-3.0, -3.0], [3.0, 3.0], [3.0, -3.0]])
    ds = D.boids(n=900, n_steps=2, init="mixture", means=means, stds=[0.2, 0.2, 0.2], random_state=1)
    x0 = ds.snapshots[0]
    nearest = np.argmin(((x0[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, ds.meta["component"])
    counts = np.bincount(nearest, minlength=3)
    assert counts.sum() == 900 and counts.min() > 240  # multinomial(900, 1/3): sd ~ 14
    for j in range(3):
        pts = x0[nearest == j]
        np.testing.assert_allclose(pts.mean(axis=0), means[j], atol=4 * 0.2 / np.sqrt(counts[j]) + 1e-3)
        np.testing.assert_allclose(pts.std(axis=0), 0.2, rtol=0.15)
    rnd = D.boids(n=300, n_steps=1, init="mixture", n_components=4, random_state=2)
    assert rnd.meta["means"].shape == (4, 2) and np.all(np.abs(rnd.meta["means"]) <= 3)
    assert np.all((rnd.meta["stds"] >= 0.3) & (rnd.meta["stds"] <= 1.5))


def test_boids_rejects_bad_arguments():
    with pytest.raises(ValueError, match="init"):
        D.boids(n=10, n_steps=1, init="uniform")
    with pytest.raises(ValueError, match="only apply to init='mixture'"):
        D.boids(n=10, n_steps=1, means=[[0.0, 0.0]])
    with pytest.raises(ValueError, match="means must be a"):
        D.boids(n=10, n_steps=1, init="mixture", means=[0.0, 0.0])
    with pytest.raises(ValueError, match="n must be >= 2"):
        D.boids(n=1)
    with pytest.raises(ValueError, match="dt must be > 0"):
        D.boids(n=10, dt=0.0)


# ----------------------------------------------------------------------------------------------------
# Gradient-flow SDEs
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", D.GF_POTENTIALS)
def test_gf_gradient_matches_finite_differences(name):
    V, grad_V = D.gf_potential(name)
    x = np.random.default_rng(0).uniform(-2.5, 2.5, size=(50, 2))
    h = 1e-5
    fd = np.stack([(V(x + h * e) - V(x - h * e)) / (2 * h) for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(grad_V(x), fd, rtol=1e-6, atol=1e-5)
    assert V(x).shape == (50,) and grad_V(x).shape == (50, 2)


def test_gf_potential_names_and_aliases():
    assert D.GF_POTENTIALS == ("bohachevsky", "oakley_ohagan", "quadratic", "styblinski_tang", "wavy_plateau")
    x = np.array([[0.3, -0.7]])
    for alias, canon in [("Styblinski-Tang", "styblinski_tang"), ("oakley-ohagan", "oakley_ohagan"),
                         ("Oakley\u2013O'Hagan", "oakley_ohagan"), ("wavy-plateau", "wavy_plateau"),
                         ("Wavy plateau", "wavy_plateau"), ("BOHACHEVSKY", "bohachevsky")]:
        np.testing.assert_array_equal(D.gf_potential(alias)[0](x), D.gf_potential(canon)[0](x))
    # quadratic V = 5|x|^2 at a known point
    np.testing.assert_allclose(D.gf_potential("quadratic")[0](x), 5 * (0.09 + 0.49))
    with pytest.raises(ValueError, match="bohachevsky, oakley_ohagan"):
        D.gf_potential("rosenbrock")
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        D.gf_potential("quadratic")[1](np.zeros((4, 3)))


def test_gf_sde_shapes_times_velocities_and_meta():
    ds = D.gradient_flow_sde("quadratic")
    assert ds.n_snapshots == 21 and ds.sizes == [1000] * 21
    np.testing.assert_allclose(ds.times, 0.01 * np.arange(21))
    assert ds.velocities[0].shape == (1000, 2) and all(v is None for v in ds.velocities[1:])
    x0 = ds.snapshots[0]
    np.testing.assert_allclose(ds.velocities[0], -10 * x0 + 0.5 * x0 / 0.2)
    assert ds.meta["n_train"] == 10 and ds.meta["paired"] is True and ds.meta["potential"] == "quadratic"
    assert abs(x0.var() - 0.2) < 0.03  # p0 = N(0, 0.2 I)
    a, b = D.gradient_flow_sde("wavy_plateau", n=50), D.gradient_flow_sde("wavy_plateau", n=50)
    c = D.gradient_flow_sde("wavy_plateau", n=50, random_state=1)
    np.testing.assert_array_equal(a.snapshots[-1], b.snapshots[-1])
    assert not np.allclose(a.snapshots[-1], c.snapshots[-1])
    with pytest.raises(ValueError, match="unknown potential"):
        D.gradient_flow_sde("nope")
    with pytest.raises(ValueError, match="substeps must be >= 1"):
        D.gradient_flow_sde("quadratic", substeps=0)


def test_gf_sde_paired_keeps_identity_and_unpaired_does_not():
    n, dt, sigma2 = 4000, 0.01, 1.0
    paired = D.gradient_flow_sde("quadratic", n=n, paired=True, random_state=5)
    unpaired = D.gradient_flow_sde("quadratic", n=n, paired=False, random_state=5)
    scale = np.sqrt(2 * sigma2 * dt)  # rms of the noise part of a 2-D step over one interval
    rms_p = np.sqrt(np.mean([((b - a) ** 2).sum(1).mean() for a, b in zip(paired.snapshots, paired.snapshots[1:])]))
    rms_u = np.sqrt(np.mean([((b - a) ** 2).sum(1).mean()
                             for a, b in zip(unpaired.snapshots, unpaired.snapshots[1:])]))
    assert 0.8 * scale < rms_p < 1.5 * scale
    assert rms_u > 3 * rms_p
    corr_p = np.corrcoef(paired.snapshots[10][:, 0], paired.snapshots[11][:, 0])[0, 1]
    corr_u = np.corrcoef(unpaired.snapshots[10][:, 0], unpaired.snapshots[11][:, 0])[0, 1]
    assert corr_p > 0.9 and abs(corr_u) < 5 / np.sqrt(n)
    # both have the right marginals: for V = 5|x|^2, E|X_t|^2 = 0.1 + 0.3 exp(-20 t) exactly
    for k in (5, 10, 20):
        exact = 0.1 + 0.3 * np.exp(-20 * paired.times[k])
        for ds in (paired, unpaired):
            m = (ds.snapshots[k] ** 2).sum(1).mean()
            assert abs(m - exact) < 5 * exact / np.sqrt(n) + 0.01 * exact, (k, ds.meta["paired"], m, exact)


def test_euler_maruyama_noise_variance_without_drift():
    rng = np.random.default_rng(0)
    n, sigma2, dt = 100_000, 0.7, 0.02
    x1 = D.euler_maruyama(np.zeros((n, 2)), np.zeros_like, sigma2=sigma2, dt=dt, n_substeps=10, rng=rng)
    se = sigma2 * dt * np.sqrt(2 / n)  # standard error of a variance estimate
    np.testing.assert_allclose(x1.var(axis=0), sigma2 * dt, atol=5 * se)
    np.testing.assert_allclose(x1.mean(axis=0), 0.0, atol=5 * np.sqrt(sigma2 * dt / n))
    # a constant gradient c shifts the mean by -c dt
    x2 = D.euler_maruyama(np.zeros((n, 2)), lambda x: np.full_like(x, 3.0), sigma2=sigma2, dt=dt, n_substeps=10,
                          rng=rng)
    np.testing.assert_allclose(x2.mean(axis=0), -3.0 * dt, atol=5 * np.sqrt(sigma2 * dt / n))


@pytest.mark.parametrize("name, wrong_shift", [("quadratic", -4.0), ("styblinski_tang", -4.0),
                                               ("wavy_plateau", -4.0)])
def test_gf_initial_velocity_has_the_probability_flow_sign(name, wrong_shift):
    # d/dt E|X_t|^2 at t = 0 equals 2 E[X_0 . v0] for the probability-flow velocity v0.
    dt = 0.001
    ds = D.gradient_flow_sde(name, n=400_000, n_steps=1, dt=dt, substeps=10, random_state=0)
    x0, x1 = ds.snapshots
    fd = ((x1**2).sum(1).mean() - (x0**2).sum(1).mean()) / dt
    pred = 2 * (x0 * ds.velocities[0]).sum(1).mean()
    assert abs(fd - pred) < 0.05 * abs(pred), (fd, pred)
    # the opposite sign of the score term would give pred - 2 sigma^2 E|x|^2 / p0_var = pred - 4
    assert abs(fd - (pred + wrong_shift)) > 10 * abs(fd - pred)
    if name == "quadratic":
        assert abs(pred - (-6.0)) < 0.05 * 6 and abs(fd - (-6.0)) < 0.05 * 6


# ----------------------------------------------------------------------------------------------------
# Harmonic well
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("omega, gamma", [(1.0, 0.3), (2.0, 1.5), (0.7, 0.0)])
def test_harmonic_well_solves_the_damped_oscillator(omega, gamma):
    h = 1e-3
    ds = D.harmonic_well(n=30, n_times=801, dt=h, omega=omega, gamma=gamma)
    x = np.stack(ds.snapshots)
    v = np.stack(ds.velocities)
    acc = (x[2:] - 2 * x[1:-1] + x[:-2]) / h**2
    vel = (x[2:] - x[:-2]) / (2 * h)
    np.testing.assert_allclose(acc + gamma * vel + omega**2 * x[1:-1], 0.0, atol=1e-5)
    np.testing.assert_allclose(v[1:-1], vel, atol=1e-5)


def test_harmonic_well_defaults_initial_law_and_errors():
    ds = D.harmonic_well()
    assert ds.n_snapshots == 17 and ds.sizes == [200] * 17 and ds.meta["n_train"] == 11
    np.testing.assert_allclose(ds.times, 0.4 * np.arange(17))
    big = D.harmonic_well(n=20000, n_times=2, random_state=3)
    x0, v0 = big.snapshots[0], big.velocities[0]
    np.testing.assert_allclose(x0.mean(0), [2.0, 0.0], atol=5 * 0.3 / np.sqrt(20000))
    np.testing.assert_allclose(x0.std(0), 0.3, rtol=0.03)
    np.testing.assert_allclose(v0.std(0), 0.3, rtol=0.03)
    # energy 0.5 (v^2 + omega^2 x^2) decays, on average roughly like exp(-gamma t)
    e = [0.5 * ((v**2).sum(1) + (x**2).sum(1)).mean() for x, v in zip(ds.snapshots, ds.velocities)]
    assert e[-1] < e[0] * np.exp(-0.3 * ds.times[-1]) * 1.3 and e[-1] > e[0] * np.exp(-0.3 * ds.times[-1]) * 0.7
    with pytest.raises(ValueError, match="underdamped"):
        D.harmonic_well(omega=1.0, gamma=2.0)
    with pytest.raises(ValueError, match="center"):
        D.harmonic_well(center=(1.0, 2.0, 3.0))
    np.testing.assert_array_equal(D.harmonic_well(random_state=7).snapshots[3],
                                  D.harmonic_well(random_state=7).snapshots[3])


# ----------------------------------------------------------------------------------------------------
# Real data (SCWLM_DATA_DIR)
# ----------------------------------------------------------------------------------------------------


@pytest.mark.data
def test_ocean_vortex_small_and_big(real_data_dir, no_network):
    f_small = need(real_data_dir, "oceans_small_vortex.npz")
    ds = D.ocean_vortex("small")
    assert ds.n_snapshots == 9 and ds.sizes == [111] * 9 and ds.dim == 2
    np.testing.assert_array_equal(ds.times, np.arange(9.0))
    with np.load(f_small) as raw:
        np.testing.assert_array_equal(np.stack(ds.snapshots), raw["positions"])
        np.testing.assert_array_equal(np.stack(ds.velocities), raw["velocities"])
    assert ds.meta["holdout"] == [1, 3, 5, 7] and ds.meta["sha256_verified"] is True
    assert Path(ds.meta["path"]) == f_small
    need(real_data_dir, "oceans_big_vortex.npz")
    big = D.ocean_vortex("big")
    assert big.n_snapshots == 11 and big.sizes == [400] * 11 and big.meta["n_train"] == 10
    assert all(v.shape == (400, 2) for v in big.velocities)
    assert no_network == []


def _eb_raw(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.data
def test_embryoid_body_subset_is_standardised(real_data_dir, no_network):
    f = need(real_data_dir, "eb_velocity_v5_subset2750.npz")
    ds = D.embryoid_body(n_pcs=5, path=f)
    raw = _eb_raw(f)
    assert ds.n_snapshots == 5 and ds.sizes == [550] * 5 and ds.dim == 5
    np.testing.assert_array_equal(ds.times, np.arange(5.0))
    allx = np.concatenate(ds.snapshots)
    np.testing.assert_allclose(allx.mean(0), 0.0, atol=1e-10)
    np.testing.assert_allclose(allx.std(0), 1.0, rtol=1e-10)
    std = raw["pcs"][:, :5].std(0)
    np.testing.assert_allclose(ds.meta["std"], std)
    for d in range(5):
        rows = raw["sample_labels"] == d
        np.testing.assert_allclose(ds.velocities[d], raw["pcs_delta"][rows, :5] / std)
        np.testing.assert_allclose(ds.snapshots[d], (raw["pcs"][rows, :5] - ds.meta["mean"]) / std)
    assert ds.meta["holdouts"] == [1, 2, 3] and ds.meta["subset"] is True and ds.meta["n_cells"] == [550] * 5
    assert ds.meta["sha256_verified"] is True


@pytest.mark.data
def test_embryoid_body_lookup_falls_back_to_the_subset(real_data_dir, no_network):
    need(real_data_dir, "eb_velocity_v5_subset2750.npz")
    if (real_data_dir / "eb_velocity_v5.npz").is_file():
        pytest.skip("the full EB file is present, so there is no fallback to test")
    with pytest.warns(UserWarning, match="subset"):
        ds = D.embryoid_body(n_pcs=3, download=False)
    assert ds.dim == 3 and ds.meta["file"] == "eb_velocity_v5_subset2750.npz"
    assert no_network == []


@pytest.mark.data
def test_embryoid_body_as_anndata_is_raw(real_data_dir):
    f = need(real_data_dir, "eb_velocity_v5_subset2750.npz")
    adata = D.embryoid_body(as_anndata=True, path=f)
    raw = _eb_raw(f)
    assert adata.shape == (2750, 100) and adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X, raw["pcs"].astype(np.float32))
    np.testing.assert_array_equal(adata.obsm["X_pca"], raw["pcs"])
    np.testing.assert_array_equal(adata.obsm["velocity_pca"], raw["pcs_delta"])
    assert adata.obs["day"].dtype == np.int64
    np.testing.assert_array_equal(adata.obs["day"].to_numpy(), raw["sample_labels"])
    np.testing.assert_array_equal(adata.obs["cell_index"].to_numpy(), raw["cell_index"])
    src = adata.uns["scwlm_source"]
    assert src["file"] == f.name and src["sha256"] == loaders.REGISTRY[f.name].sha256


@pytest.mark.data
def test_dentate_gyrus(real_data_dir):
    need(real_data_dir, "dentategyrus_cellrank_100obs.h5ad")
    adata = D.dentate_gyrus(100)
    assert adata.n_obs == 100 and {"spliced", "unspliced"} <= set(adata.layers)
    assert set(adata.obs["age(days)"].astype(str)) == {"12", "35"}
    with pytest.raises(ValueError, match="100 or 200"):
        D.dentate_gyrus(150)


@pytest.mark.data
def test_download_is_atomic_and_verified(real_data_dir, tmp_path, monkeypatch):
    """A successful 'download' (bytes served locally) lands in the cache after verification."""
    src = need(real_data_dir, "oceans_small_vortex.npz")
    monkeypatch.setenv("SCWLM_DATA_DIR", str(tmp_path / "empty"))
    urls = []

    def serve(url):
        urls.append(url)
        return io.BytesIO(src.read_bytes())

    monkeypatch.setattr(loaders, "_open_url", serve)
    p = D.data_path("oceans_small_vortex.npz")
    assert p == tmp_path / "xdg" / "scwlm" / "oceans_small_vortex.npz"
    assert urls == [loaders.REGISTRY["oceans_small_vortex.npz"].url]
    assert p.read_bytes() == src.read_bytes() and sorted(x.name for x in p.parent.iterdir()) == [p.name]
    assert D.ocean_vortex("small").sizes == [111] * 9 and len(urls) == 1  # served from the cache now


# ----------------------------------------------------------------------------------------------------
# Failure modes (no data needed)
# ----------------------------------------------------------------------------------------------------


def test_missing_file_lists_searched_paths_and_url(empty_dirs, no_network):
    data, cache = empty_dirs
    name = "oceans_small_vortex.npz"
    with pytest.raises(FileNotFoundError) as err:
        D.data_path(name)
    msg = str(err.value)
    assert str(data / name) in msg and str(cache / name) in msg
    assert "SCWLM_DATA_DIR" in msg and loaders.REGISTRY[name].url in msg and "network disabled" in msg
    assert no_network == [loaders.REGISTRY[name].url]
    assert not cache.exists() or list(cache.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="download=False"):
        D.ocean_vortex("small", download=False)
    assert len(no_network) == 1


def test_missing_file_without_env_var_or_url(empty_dirs, monkeypatch, no_network):
    monkeypatch.delenv("SCWLM_DATA_DIR")
    with pytest.raises(FileNotFoundError) as err:
        D.data_path("eb_velocity_v5_subset2750.npz")
    assert "SCWLM_DATA_DIR is not set" in str(err.value) and "No download URL" in str(err.value)
    with pytest.raises(FileNotFoundError) as err:
        D.embryoid_body(download=False)
    assert "eb_velocity_v5.npz" in str(err.value) and "eb_velocity_v5_subset2750.npz" in str(err.value)
    with pytest.raises(FileNotFoundError, match="SCWLM_DATA_DIR"):
        D.dentate_gyrus(200)
    assert no_network == []


def test_env_var_is_read_at_call_time(empty_dirs, tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    (other / "eb_velocity_v5.npz").write_bytes(b"x")  # no checksum registered for the full EB file
    with pytest.raises(FileNotFoundError):
        D.data_path("eb_velocity_v5.npz", download=False)
    monkeypatch.setenv("SCWLM_DATA_DIR", str(other))
    assert D.data_path("eb_velocity_v5.npz", download=False) == other / "eb_velocity_v5.npz"


def test_corrupt_file_fails_the_checksum(empty_dirs):
    data, cache = empty_dirs
    bad = b"these are not the vortex data"
    (data / "oceans_small_vortex.npz").write_bytes(bad)
    with pytest.raises(ValueError, match="checksum") as err:
        D.ocean_vortex("small")
    msg = str(err.value)
    assert "oceans_small_vortex.npz" in msg and loaders.REGISTRY["oceans_small_vortex.npz"].sha256 in msg
    assert hashlib.sha256(bad).hexdigest() in msg
    # the same in the cache
    (data / "oceans_small_vortex.npz").unlink()
    cache.mkdir(parents=True)
    (cache / "oceans_big_vortex.npz").write_bytes(bad)
    with pytest.raises(ValueError, match="checksum"):
        D.data_path("oceans_big_vortex.npz")


def test_corrupt_download_leaves_nothing_behind(empty_dirs, monkeypatch):
    data, cache = empty_dirs
    monkeypatch.setattr(loaders, "_open_url", lambda url: io.BytesIO(b"<html>rate limited</html>"))
    with pytest.raises(ValueError, match="checksum"):
        D.data_path("oceans_big_vortex.npz")
    assert list(cache.iterdir()) == []
    # no checksum is registered for the full EB file, but a non-npz download is still refused
    with pytest.raises(ValueError, match="not a .npz file"):
        D.data_path("eb_velocity_v5.npz")
    assert list(cache.iterdir()) == []


def test_downloaded_full_eb_file_is_used(empty_dirs, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), [3, 4, 5, 6, 7])
    pcs = rng.normal(size=(25, 100)) * np.arange(1, 101)
    dpcs = rng.normal(size=(25, 100))
    buf = io.BytesIO()
    np.savez(buf, pcs=pcs, pcs_delta=dpcs, sample_labels=labels)
    monkeypatch.setattr(loaders, "_open_url", lambda url: io.BytesIO(buf.getvalue()))
    ds = D.embryoid_body(n_pcs=4)
    assert ds.meta["file"] == "eb_velocity_v5.npz" and ds.meta["subset"] is False
    assert ds.sizes == [3, 4, 5, 6, 7] and ds.dim == 4
    np.testing.assert_allclose(ds.meta["std"], pcs[:, :4].std(0))
    np.testing.assert_allclose(ds.velocities[4], dpcs[labels == 4, :4] / pcs[:, :4].std(0))
    ad = D.embryoid_body(as_anndata=True)
    np.testing.assert_array_equal(ad.obs["cell_index"].to_numpy(), np.arange(25))


def test_malformed_npz_files_are_rejected(tmp_path):
    p = tmp_path / "bad_ocean.npz"
    np.savez(p, positions=np.zeros((9, 111)), velocities=np.zeros((9, 111)))
    with pytest.raises(ValueError, match="3-D"):
        D.ocean_vortex("small", path=p)
    np.savez(p, positions=np.zeros((9, 111, 2)), velocities=np.zeros((9, 110, 2)))
    with pytest.raises(ValueError, match=str(p)):
        D.ocean_vortex("small", path=p)
    np.savez(p, positions=np.zeros((9, 111, 2)))
    with pytest.raises(ValueError, match="velocities"):
        D.ocean_vortex("small", path=p)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="npz"):
        D.ocean_vortex("big", path=tmp_path / "junk.npz")

    q = tmp_path / "bad_eb.npz"
    np.savez(q, pcs=np.ones((10, 100)), pcs_delta=np.ones((10, 99)), sample_labels=np.zeros(10))
    with pytest.raises(ValueError, match="same shape"):
        D.embryoid_body(path=q)
    np.savez(q, pcs=np.ones((10, 100)), pcs_delta=np.ones((10, 100)), sample_labels=np.zeros(9))
    with pytest.raises(ValueError, match="one entry per cell"):
        D.embryoid_body(path=q)
    np.savez(q, pcs=np.ones((10, 8)), pcs_delta=np.ones((10, 8)), sample_labels=np.zeros(10))
    with pytest.raises(ValueError, match="n_pcs must be between 1 and 8"):
        D.embryoid_body(n_pcs=9, path=q)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="known files"):
        D.data_path("mnist.npz")
    with pytest.raises(ValueError, match="'small' or 'big'"):
        D.ocean_vortex("medium")
    assert set(D.__all__) >= {"boids", "gradient_flow_sde", "GF_POTENTIALS", "harmonic_well", "ocean_vortex",
                              "embryoid_body", "data_path", "Dataset"}
