"""scwlm.pp: embedding velocities and the paper's global standardisation (AnnData in, arrays out)."""

import copy
import types
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

import scwlm


@pytest.fixture(autouse=True)
def _one_thread():
    # two cores shared with other work: multi-threaded BLAS/OpenMP on tiny tensors spins and is
    # ~100x slower than one thread here
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ------------------------------------------------------------------------- shared helpers (imported by
# test_tl.py and test_pl.py)
def make_adata(n_per_day=30, days=(0, 1, 2), n_pcs=10, n_genes=12, seed=0, umap=True):
    """Cells drifting along PC1 over ``days``, with obsm velocities, PCs loadings and a velocity layer."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.asarray(days), n_per_day)
    n = day.size
    shift = np.zeros((n, n_pcs))
    shift[:, 0] = 2.0 * np.searchsorted(np.unique(day), day)
    X_pca = rng.normal(size=(n, n_pcs)) * np.linspace(3.0, 0.5, n_pcs) + shift
    adata = ad.AnnData(
        X=rng.normal(size=(n, n_genes)).astype(np.float32),
        obs=pd.DataFrame({"day": day}, index=[f"cell{i}" for i in range(n)]),
        var=pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)]),
    )
    adata.obsm["X_pca"] = X_pca
    v = rng.normal(size=(n, n_pcs)) * 0.2
    v[:, 0] += 1.0
    adata.obsm["velocity_pca"] = v
    adata.varm["PCs"] = np.linalg.qr(rng.normal(size=(n_genes, n_pcs)))[0]
    adata.layers["velocity"] = rng.normal(size=(n, n_genes))
    if umap:
        adata.obsm["X_umap"] = X_pca[:, :2] @ np.array([[0.8, -0.6], [0.6, 0.8]]) + 1.0
    return adata


def _freeze(value):
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return value.copy(deep=True)
    if hasattr(value, "copy"):
        return value.copy()
    return copy.deepcopy(value)


def snapshot(adata):
    """A deep copy of everything a scwlm function could write."""
    return {
        "obs": adata.obs.copy(deep=True),
        "obs_names": list(adata.obs_names),
        "obsm": {k: np.array(v, copy=True) for k, v in adata.obsm.items()},
        "varm": {k: np.array(v, copy=True) for k, v in adata.varm.items()},
        "layers": {k: np.array(v, copy=True) for k, v in adata.layers.items()},
        "uns": _freeze(dict(adata.uns)),
        "X": np.array(adata.X, copy=True),
    }


def _equal(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b) and list(a.columns) == list(b.columns)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind in "fc" and b.dtype.kind in "fc":
            return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def assert_unchanged(adata, snap):
    now = snapshot(adata)
    for part in snap:
        assert _equal(snap[part], now[part]), f"adata.{part} changed"


# ------------------------------------------------------------------------------------------ velocities
def test_embedding_velocities_from_obsm_reads_only():
    adata = make_adata()
    snap = snapshot(adata)
    V = scwlm.pp.embedding_velocities(adata, n_dims=4)
    assert V.shape == (adata.n_obs, 4)
    assert np.array_equal(V, adata.obsm["velocity_pca"][:, :4])
    assert_unchanged(adata, snap)
    # default n_dims: all columns of the basis
    assert scwlm.pp.embedding_velocities(adata).shape == (adata.n_obs, 10)


def test_embedding_velocities_projects_the_velocity_layer_with_the_pcs():
    rng = np.random.default_rng(1)
    n, g, k = 6, 4, 3
    adata = ad.AnnData(np.zeros((n, g)), obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]),
                       var=pd.DataFrame(index=[f"g{j}" for j in range(g)]))
    adata.obsm["X_pca"] = rng.normal(size=(n, k))
    PCs = rng.normal(size=(g, k))
    PCs[3] = 0.0  # a gene outside the PCA: zero loadings, it drops out
    V = rng.normal(size=(n, g))
    adata.varm["PCs"] = PCs
    adata.layers["velocity"] = V
    out = scwlm.pp.embedding_velocities(adata, n_dims=2)
    # V_pca = V @ PCs, no centring (velocities are derivatives)
    assert np.allclose(out, V @ PCs[:, :2])
    assert np.allclose(out, V[:, :3] @ PCs[:3, :2])
    # the velocities of one cell, by hand
    assert out[0, 1] == pytest.approx(sum(V[0, j] * PCs[j, 1] for j in range(g)))

    # genes without a velocity model (NaN) count as zero, with a warning
    V_nan = V.copy()
    V_nan[:, 1] = np.nan
    adata.layers["velocity"] = V_nan
    with pytest.warns(UserWarning, match="1 of 4 genes have non-finite velocities"):
        out_nan = scwlm.pp.embedding_velocities(adata, n_dims=2)
    V0 = V.copy()
    V0[:, 1] = 0.0
    assert np.allclose(out_nan, V0 @ PCs[:, :2])

    # the obsm velocities, when present, take precedence
    adata.obsm["velocity_pca"] = np.ones((n, k))
    assert np.array_equal(scwlm.pp.embedding_velocities(adata, n_dims=2), np.ones((n, 2)))


def test_embedding_velocities_zero_fallback_warns():
    adata = make_adata()
    del adata.obsm["velocity_pca"]
    del adata.layers["velocity"]
    with pytest.warns(UserWarning, match="zero initial velocities"):
        V = scwlm.pp.embedding_velocities(adata, n_dims=3)
    assert V.shape == (adata.n_obs, 3) and not V.any()
    # a non-PCA basis cannot use the PCA loadings either
    adata2 = make_adata()
    with pytest.warns(UserWarning, match="not 'X_pca'"):
        V2 = scwlm.pp.embedding_velocities(adata2, basis="X_umap", velocity_key="velocity_umap")
    assert V2.shape == (adata2.n_obs, 2) and not V2.any()


def test_embedding_velocities_errors():
    adata = make_adata()
    with pytest.raises(KeyError, match=r"'X_tsne' is not in adata.obsm; available obsm keys: 'X_pca', 'X_umap'"):
        scwlm.pp.embedding_velocities(adata, basis="X_tsne")
    with pytest.raises(ValueError, match="only 10 columns"):
        scwlm.pp.embedding_velocities(adata, n_dims=11)
    adata.obsm["velocity_pca"] = adata.obsm["velocity_pca"][:, :2]
    with pytest.raises(ValueError, match=r"has 2 columns but n_dims=3"):
        scwlm.pp.embedding_velocities(adata, n_dims=3)
    adata.obsm["velocity_pca"] = np.full((adata.n_obs, 3), np.nan)
    with pytest.raises(ValueError, match="NaN"):
        scwlm.pp.embedding_velocities(adata, n_dims=3)
    # AnnData itself refuses obsm arrays with the wrong number of rows; an AnnData-like object does not
    fake = types.SimpleNamespace(obs=pd.DataFrame(index=range(4)), n_obs=4, uns={}, layers={}, varm={},
                                 obsm={"X_pca": np.zeros((4, 2)), "velocity_pca": np.zeros((5, 2))})
    with pytest.raises(ValueError, match="has 5 rows but adata has 4 observations"):
        scwlm.pp.embedding_velocities(fake)


# ------------------------------------------------------------------------------------- standardisation
def test_standardize_global_mean_std_and_velocity_scaling():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3)) * [1.0, 5.0, 0.1] + [10.0, -3.0, 0.0]
    V = rng.normal(size=(50, 3))
    Xs, Vs, mean, std = scwlm.pp.standardize(X, V)
    assert np.allclose(Xs.mean(axis=0), 0.0) and np.allclose(Xs.std(axis=0), 1.0)
    assert np.allclose(mean, X.mean(axis=0)) and np.allclose(std, X.std(axis=0, ddof=0))
    assert np.allclose(Vs, V / std)  # scaled by the same std, not centred
    assert scwlm.pp.standardize(X)[1] is None
    # given statistics are applied as they are
    Xs2, _, _, _ = scwlm.pp.standardize(X[:5], mean=mean, std=std)
    assert np.allclose(Xs2, Xs[:5])
    with pytest.raises(ValueError, match="constant"):
        scwlm.pp.standardize(np.ones((4, 2)))
    with pytest.raises(ValueError, match="shape"):
        scwlm.pp.standardize(X, V[:, :2])


def test_standardize_embedding_writes_and_copy_semantics():
    adata = make_adata()
    snap = snapshot(adata)
    out = scwlm.pp.standardize_embedding(adata, n_dims=4, copy=True)
    assert isinstance(out, ad.AnnData)
    assert_unchanged(adata, snap)
    assert "scwlm_standardized" not in adata.obsm

    assert scwlm.pp.standardize_embedding(adata, n_dims=4) is None
    Xs = adata.obsm["scwlm_standardized"]
    Vs = adata.obsm["scwlm_standardized_velocity"]
    info = adata.uns["scwlm_standardized"]
    X = adata.obsm["X_pca"][:, :4]
    # global statistics over all cells of all days
    assert np.allclose(Xs.mean(axis=0), 0.0) and np.allclose(Xs.std(axis=0), 1.0)
    assert np.allclose(info["std"], X.std(axis=0)) and np.allclose(info["mean"], X.mean(axis=0))
    assert np.allclose(Vs, adata.obsm["velocity_pca"][:, :4] / info["std"])
    assert info["basis"] == "X_pca" and info["n_dims"] == 4
    assert info["velocity_source"] == "obsm['velocity_pca']"
    assert np.array_equal(out.obsm["scwlm_standardized"], Xs)


def test_standardize_embedding_failures_leave_adata_unchanged():
    adata = make_adata()
    adata.obsm["X_pca"][3, 1] = np.nan
    snap = snapshot(adata)
    with pytest.raises(ValueError, match=r"NaN or inf.*first: row 3"):
        scwlm.pp.standardize_embedding(adata, n_dims=3)
    assert_unchanged(adata, snap)
    with pytest.raises(KeyError, match="available obsm keys"):
        scwlm.pp.standardize_embedding(adata, basis="X_nope")
    assert_unchanged(adata, snap)


def test_velocity_projection_warning_is_not_raised_for_clean_layers():
    adata = make_adata()
    del adata.obsm["velocity_pca"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        V = scwlm.pp.embedding_velocities(adata, n_dims=2)
    assert np.allclose(V, adata.layers["velocity"] @ adata.varm["PCs"][:, :2])
