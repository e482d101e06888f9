"""scwlm.tl: fit_mechanics / get_mechanics / rollout / observed_cells / leave_one_out on AnnData."""

import os
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

import scwlm
from scwlm.core.baselines import mccann_interpolation
from scwlm.core.metrics import wasserstein1

from test_pp import assert_unchanged, make_adata, snapshot

ENGINE = dict(hidden=8, heads=1, blocks=1, ffn=8, progress=False, n_iter=2, device="cpu")


@pytest.fixture(autouse=True, scope="module")
def _one_thread_module():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures train before function fixtures run
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _one_thread():
    # runs after conftest's fixture: one thread is ~100x faster for these tiny tensors on 2 shared cores
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="module")
def fitted():
    """Three days, day 1 held out."""
    adata = make_adata()
    scwlm.tl.fit_mechanics(adata, "day", n_dims=3, holdout=1, **ENGINE)
    return adata


def _standardised(adata, n_dims):
    X = adata.obsm["X_pca"][:, :n_dims]
    return (X - X.mean(0)) / X.std(0), adata.obsm["velocity_pca"][:, :n_dims] / X.std(0)


# ------------------------------------------------------------------------------------------- fit
def test_fit_copy_semantics_and_stored_results():
    adata = make_adata()
    snap = snapshot(adata)
    out = scwlm.tl.fit_mechanics(adata, "day", n_dims=3, copy=True, **ENGINE)
    assert isinstance(out, ad.AnnData)
    assert_unchanged(adata, snap)
    assert "wlm" not in adata.uns and "wlm" in out.uns

    assert scwlm.tl.fit_mechanics(adata, "day", n_dims=3, key_added="mine", **ENGINE) is None
    res = adata.uns["mine"]
    p = res["params"]
    assert p["time_key"] == "day" and p["basis"] == "X_pca" and p["n_dims"] == 3
    assert p["velocity_source"] == "obsm['velocity_pca']" and p["friction"] == "learnable"
    assert p["time_labels"].tolist() == ["0", "1", "2"] and p["times"].tolist() == [0.0, 1.0, 2.0]
    assert p["n_cells"].tolist() == [30, 30, 30] and p["holdouts"].size == 0
    assert p["engine_config"]["hidden"] == 8 and p["engine_config"]["dt"] == "None"
    assert res["loss_history"].shape == (2,) and res["friction_history"].shape == (2,)
    assert res["friction"] == pytest.approx(res["friction_history"][-1])
    _, std = res["standardization"]["mean"], res["standardization"]["std"]
    assert np.allclose(std, adata.obsm["X_pca"][:, :3].std(0))
    assert "metrics" not in res
    # the same seed and data give the same model as the array API on the standardised snapshots
    Xs, Vs = _standardised(adata, 3)
    day = adata.obs["day"].to_numpy()
    mech = scwlm.fit([Xs[day == d] for d in range(3)], [0.0, 1.0, 2.0], [Vs[day == d] for d in range(3)],
                     **ENGINE)
    mine = scwlm.tl.get_mechanics(adata, "mine")
    assert mine.friction == mech.friction
    x0 = Xs[day == 0]
    assert np.array_equal(mine.rollout(x0, t0=0.0, times=[2.0]), mech.rollout(x0, t0=0.0, times=[2.0]))


def test_holdout_metrics_match_the_protocol(fitted):
    m = fitted.uns["wlm"]["metrics"]
    assert m["holdout"].tolist() == ["1"] and m["start"].tolist() == ["0"]
    assert fitted.uns["wlm"]["params"]["train_labels"].tolist() == ["0", "2"]
    for k in ("w1", "w1_mccann", "w1_previous"):
        assert np.isfinite(m[k]).all() and m[k].shape == (1,)
    Xs, Vs = _standardised(fitted, 3)
    day = fitted.obs["day"].to_numpy()
    mech = scwlm.tl.get_mechanics(fitted)
    pred = mech.rollout(Xs[day == 0], Vs[day == 0], t0=0.0, times=[1.0])[0]
    assert m["w1"][0] == pytest.approx(wasserstein1(pred, Xs[day == 1]))
    pts, w = mccann_interpolation(Xs[day == 0], Xs[day == 2], 0.5)
    assert m["w1_mccann"][0] == pytest.approx(wasserstein1(pts, Xs[day == 1], x_weights=w))
    assert m["w1_previous"][0] == pytest.approx(wasserstein1(Xs[day == 0], Xs[day == 1]))
    assert m["w1_mean"] == pytest.approx(m["w1"][0]) and m["w1_mccann_mean"] == pytest.approx(m["w1_mccann"][0])
    # small snapshots: exact W1 on all cells, and the metrics say so
    for k in ("w1_method", "w1_mccann_method", "w1_previous_method"):
        assert m[k].tolist() == ["exact"]
    for k in ("w1_draw_se", "w1_mccann_draw_se", "w1_previous_draw_se"):
        assert m[k].tolist() == [0.0]
    assert dict(m["w1_settings"]) == {"max_points": 5000, "subsample": 5000, "n_draws": 5, "seed": 0}
    assert m["rollout_chunk_size"] == 5000


def test_h5ad_round_trip_after_fit_and_rollout(fitted, tmp_path):
    adata = fitted.copy()
    pred = scwlm.tl.rollout(adata, "wlm", source=0, targets=[1, 2], n_cells=12)
    path = tmp_path / "fit.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    m0, m1 = scwlm.tl.get_mechanics(adata), scwlm.tl.get_mechanics(back)
    x0 = np.random.default_rng(0).normal(size=(20, 3))
    v0 = np.random.default_rng(1).normal(size=(20, 3))
    assert np.array_equal(m0.rollout(x0, v0, t0=0.0, times=[0.5, 2.0]), m1.rollout(x0, v0, t0=0.0, times=[0.5, 2.0]))
    assert m1.friction == m0.friction and m1.config == m0.config
    # the recorded rollout survived, and rolling out again from the file gives the same cells
    for k in ("wlm_rollout_1", "wlm_rollout_2"):
        assert np.array_equal(back.obsm[k], adata.obsm[k], equal_nan=True)
    again = scwlm.tl.rollout(back, "wlm", source=0, targets=[1, 2], n_cells=12)
    assert np.array_equal(again.obsm["X_pca"], pred.obsm["X_pca"])
    assert list(again.obs_names) == list(pred.obs_names)
    # ... and a second write / read of the rolled-out file is still valid
    back.write_h5ad(tmp_path / "again.h5ad")
    back2 = ad.read_h5ad(tmp_path / "again.h5ad")
    assert "wlm_rollout" in back2.uns["wlm"]["rollouts"]
    assert np.array_equal(scwlm.tl.get_mechanics(back2).rollout(x0, v0, t0=0.0, times=[2.0]),
                          m0.rollout(x0, v0, t0=0.0, times=[2.0]))
    # the rollout's own AnnData is writable too
    pred.write_h5ad(tmp_path / "pred.h5ad")


@pytest.mark.parametrize("case", [
    "time_key", "basis", "one_time", "nan", "velocity_shape", "unordered", "unordered_cat", "holdout_first", "holdout_last",
    "holdout_unknown", "engine_key",
])
def test_failing_fits_raise_and_leave_adata_unchanged(case):
    adata = make_adata()
    kwargs = dict(time_key="day", n_dims=3, **ENGINE)
    err, match = ValueError, None
    if case == "time_key":
        kwargs["time_key"] = "age"
        err, match = KeyError, r"'age' is not a column of adata.obs; available obs columns: 'day'"
    elif case == "basis":
        kwargs["basis"] = "X_phate"
        err, match = KeyError, r"available obsm keys: 'X_pca', 'X_umap', 'velocity_pca'"
    elif case == "one_time":
        adata = adata[adata.obs["day"] == 0].copy()
        match = r"1 time point\(s\) \(\['0'\]\); at least 2 are needed"
    elif case == "nan":
        adata.obsm["X_pca"][5, 0] = np.nan
        match = r"adata.obsm\['X_pca'\].*NaN"
    elif case == "velocity_shape":
        adata.obsm["velocity_pca"] = adata.obsm["velocity_pca"][:, :2]
        match = r"velocity_pca'\] has 2 columns but n_dims=3"
    elif case == "unordered":
        adata.obs["stage"] = np.repeat(["early", "mid", "late"], 30)
        kwargs["time_key"] = "stage"
        match = "unordered string labels.*ordered categorical"
    elif case == "unordered_cat":
        adata.obs["stage"] = pd.Categorical(np.repeat(["early", "mid", "late"], 30))
        kwargs["time_key"] = "stage"
        match = "unordered categorical with non-numeric labels"
    elif case == "holdout_first":
        kwargs["holdout"] = 0
        match = "first time point: it cannot be held out"
    elif case == "holdout_last":
        kwargs["holdout"] = [2]
        match = "last time point"
    elif case == "holdout_unknown":
        kwargs["holdout"] = 7
        match = r"holdout 7 is not a time label"
    elif case == "engine_key":
        kwargs["hiden"] = 8
        match = "did you mean 'hidden'"
    snap = snapshot(adata)
    with pytest.raises(err, match=match):
        scwlm.tl.fit_mechanics(adata, **kwargs)
    assert_unchanged(adata, snap)


@pytest.mark.parametrize("kind", ["ordered_numeric", "ordered_names", "float", "strings_numeric", "unordered_numeric"])
def test_time_labels_and_stored_mapping(kind):
    adata = make_adata()
    day = adata.obs["day"].to_numpy()
    if kind == "ordered_numeric":
        col = pd.Categorical(np.array(["12", "35", "40"])[day], categories=["12", "35", "40"], ordered=True)
        labels, times, tkind = ["12", "35", "40"], [12.0, 35.0, 40.0], "numeric labels"
    elif kind == "ordered_names":
        # categories listed out of alphabetical order, plus an unused one: the category order counts
        col = pd.Categorical(np.array(["early", "mid", "late"])[day], categories=["early", "mid", "unused", "late"],
                             ordered=True)
        labels, times, tkind = ["early", "mid", "late"], [0.0, 1.0, 3.0], "category order"
    elif kind == "float":
        col = np.array([0.5, 1.25, 3.0])[day]
        labels, times, tkind = ["0.5", "1.25", "3"], [0.5, 1.25, 3.0], "numeric"
    elif kind == "strings_numeric":
        col = np.array(["2", "10", "30"])[day]  # numeric order, not string order
        labels, times, tkind = ["2", "10", "30"], [2.0, 10.0, 30.0], "numeric labels"
    else:  # what the dentate-gyrus file has: an unordered categorical of numbers
        col = pd.Categorical(np.array(["35", "12", "40"])[[1, 0, 2]][day])
        labels, times, tkind = ["12", "35", "40"], [12.0, 35.0, 40.0], "numeric labels"
    adata.obs["t"] = col
    scwlm.tl.fit_mechanics(adata, "t", n_dims=2, holdout=labels[1], **ENGINE)
    p = adata.uns["wlm"]["params"]
    assert p["time_labels"].tolist() == labels and p["times"].tolist() == times and p["time_kind"] == tkind
    assert p["holdouts"].tolist() == [labels[1]]
    assert np.isfinite(adata.uns["wlm"]["metrics"]["w1"]).all()
    # rollouts name their targets by label
    pred = scwlm.tl.rollout(adata, source=labels[0], targets=labels[2], n_cells=5)
    assert f"wlm_rollout_{labels[2]}" in adata.obsm
    assert set(pred.obs["t"]) == {labels[2]} and (pred.obs["time"] == times[2]).all()


def test_ordered_categorical_with_numbers_out_of_order_is_rejected():
    adata = make_adata()
    adata.obs["t"] = pd.Categorical(np.array(["35", "12", "40"])[adata.obs["day"].to_numpy()],
                                    categories=["35", "12", "40"], ordered=True)
    snap = snapshot(adata)
    with pytest.raises(ValueError, match="out of increasing order"):
        scwlm.tl.fit_mechanics(adata, "t", n_dims=2, **ENGINE)
    assert_unchanged(adata, snap)


def test_velocity_sources_are_recorded():
    adata = make_adata()
    del adata.obsm["velocity_pca"]
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, key_added="proj", **ENGINE)
    assert adata.uns["proj"]["params"]["velocity_source"] == "layers['velocity'] @ varm['PCs']"
    del adata.layers["velocity"]
    with pytest.warns(UserWarning, match="zero initial velocities"):
        scwlm.tl.fit_mechanics(adata, "day", n_dims=2, key_added="zero", **ENGINE)
    assert adata.uns["zero"]["params"]["velocity_source"] == "zeros"
    # rolling out a zero-velocity fit does not warn again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scwlm.tl.rollout(adata, "zero", source=0, targets=1, n_cells=3)


# --------------------------------------------------------------------------------------- rollout
def test_rollout_outputs_and_concat_with_observed(fitted):
    adata = fitted.copy()
    mech = scwlm.tl.get_mechanics(adata)
    pred = scwlm.tl.rollout(adata, "wlm", source="0", targets=[2, 1, 1.5], substeps=5)
    day = adata.obs["day"].to_numpy()
    n0 = int((day == 0).sum())
    # written per target: predicted coordinates in the source cells' rows, NaN elsewhere
    for t in ("1", "2", "1.5"):
        M = adata.obsm[f"wlm_rollout_{t}"]
        assert M.shape == (adata.n_obs, 3)
        assert np.isfinite(M[day == 0]).all() and np.isnan(M[day != 0]).all()
    rec = adata.uns["wlm"]["rollouts"]["wlm_rollout"]
    assert list(rec["targets"]) == ["2", "1", "1.5"] and rec["n_cells"] == n0
    # predictions in original units: model-space rollout * std + mean
    std, mean = adata.uns["wlm"]["standardization"]["std"], adata.uns["wlm"]["standardization"]["mean"]
    Xs, Vs = _standardised(adata, 3)
    manual = mech.rollout(Xs[day == 0], Vs[day == 0], t0=0.0, times=[1.0, 1.5, 2.0], substeps=5) * std + mean
    assert np.allclose(adata.obsm["wlm_rollout_1"][day == 0], manual[0])
    assert np.allclose(adata.obsm["wlm_rollout_1.5"][day == 0], manual[1])
    assert np.allclose(adata.obsm["wlm_rollout_2"][day == 0], manual[2])
    # the returned AnnData of predicted cells
    assert pred.n_obs == 3 * n0 and pred.n_vars == 0
    assert pred.obs_names[0] == "cell0->2" and pred.obs["source_cell"].iloc[0] == "cell0"
    assert set(pred.obs["origin"]) == {"predicted"}
    assert pred.obsm["X_pca"].shape == (3 * n0, 3)
    assert np.allclose(pred.obsm["X_pca"][:n0], manual[2])
    # observed + predicted concatenate cleanly for plotting
    obs = scwlm.tl.observed_cells(adata)
    both = ad.concat([obs, pred], join="outer")
    assert both.n_obs == adata.n_obs + 3 * n0
    assert both.obsm["X_pca"].shape == (both.n_obs, 3) and np.isfinite(both.obsm["X_pca"]).all()
    assert isinstance(both.obs["day"].dtype, pd.CategoricalDtype)
    assert list(both.obs["day"].cat.categories) == ["0", "1", "1.5", "2"]
    assert both.obs["origin"].value_counts().to_dict() == {"observed": adata.n_obs, "predicted": 3 * n0}
    assert np.allclose(both.obsm["X_pca"][: adata.n_obs], adata.obsm["X_pca"][:, :3])


def test_rollout_subset_key_added_and_errors(fitted):
    adata = fitted.copy()
    pred = scwlm.tl.rollout(adata, source=1, targets=2, n_cells=7, key_added="sub", random_state=3)
    rows = np.isfinite(adata.obsm["sub_2"][:, 0])
    assert rows.sum() == 7 and (adata.obs["day"][rows] == 1).all()
    assert set(pred.obs["source_cell"]) == set(adata.obs_names[rows])
    snap = snapshot(adata)
    for kwargs, match in [
        (dict(source=2, targets=1), "before the source time"),
        (dict(source=5, targets=6), "source 5 is not a time label"),
        (dict(source=0, targets=[]), "targets is empty"),
        (dict(source=0, targets=1, n_cells=0), "n_cells"),
    ]:
        with pytest.raises(ValueError, match=match):
            scwlm.tl.rollout(adata, **kwargs)
        assert_unchanged(adata, snap)
    with pytest.raises(KeyError, match="'nofit' is not in adata.uns; available uns keys: 'wlm'"):
        scwlm.tl.rollout(adata, "nofit", source=0, targets=1)
    assert_unchanged(adata, snap)


# ---------------------------------------------------------------------------------- leave-one-out
def test_leave_one_out_table_storage_and_copy():
    adata = make_adata(n_per_day=20, days=(0, 1, 2, 3))
    snap = snapshot(adata)
    out, df = scwlm.tl.leave_one_out(adata, "day", n_dims=3, random_state=[0, 1], copy=True, **ENGINE)
    assert_unchanged(adata, snap)
    assert list(df.columns) == ["holdout", "seed", "w1", "w1_mccann", "w1_previous", "friction"]
    assert len(df) == 4  # holdouts 1, 2 (all interior days) x seeds 0, 1
    assert df["holdout"].tolist() == ["1", "1", "2", "2"] and df["seed"].tolist() == [0, 1, 0, 1]
    assert np.isfinite(df[["w1", "w1_mccann", "w1_previous", "friction"]].to_numpy()).all()
    # baselines do not depend on the seed
    assert df.groupby("holdout")["w1_mccann"].nunique().eq(1).all()

    r = out.uns["wlm_loo"]
    table = pd.DataFrame({c: r["results"][c] for c in r["columns"]})
    pd.testing.assert_frame_equal(table, df, check_dtype=False)
    assert r["loss_history"].shape == (4, 2) and r["params"]["holdouts"].tolist() == ["1", "2"]
    # each model is stored and its W1 is the interpolation protocol's
    mech = scwlm.tl.get_mechanics(out, "wlm_loo", holdout=2, seed=1)
    Xs, Vs = _standardised(adata, 3)
    day = adata.obs["day"].to_numpy()
    pred = mech.rollout(Xs[day == 1], Vs[day == 1], t0=1.0, times=[2.0])[0]
    assert df["w1"].iloc[3] == pytest.approx(wasserstein1(pred, Xs[day == 2]))
    assert mech.info["train_times"] == [0.0, 1.0, 3.0]

    # in place, a single holdout given by label; the table is returned
    df2 = scwlm.tl.leave_one_out(adata, "day", holdouts=2, n_dims=3, random_state=0, **ENGINE)
    assert df2["holdout"].tolist() == ["2"] and "wlm_loo" in adata.uns
    snap = snapshot(adata)
    with pytest.raises(ValueError, match="first time point"):
        scwlm.tl.leave_one_out(adata, "day", holdouts=[0], n_dims=3, **ENGINE)
    with pytest.raises(ValueError, match="at least 3 are needed"):
        scwlm.tl.leave_one_out(adata[adata.obs["day"] < 2].copy(), "day", n_dims=3, **ENGINE)
    assert_unchanged(adata, snap)


# ------------------------------------------------------------------------------- real data (scvelo)
@pytest.mark.data
def test_dentate_gyrus_scvelo_end_to_end(tmp_path):
    data = os.environ.get("SCWLM_DATA_DIR")
    if not data or not os.path.isfile(os.path.join(data, "dentategyrus_cellrank_200obs.h5ad")):
        pytest.skip("dentate gyrus data not available (set SCWLM_DATA_DIR)")
    scv = pytest.importorskip("scvelo")
    adata = scwlm.datasets.dentate_gyrus(n_obs=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scv.settings.verbosity = 0
        scv.pp.moments(adata)
        scv.tl.velocity(adata, mode="deterministic")
        scv.tl.velocity_graph(adata, show_progress_bar=False)
        scv.tl.velocity_embedding(adata, basis="pca")
    assert adata.obsm["velocity_pca"].shape == adata.obsm["X_pca"].shape
    scwlm.tl.fit_mechanics(adata, time_key="age(days)", n_dims=5, **ENGINE)
    p = adata.uns["wlm"]["params"]
    assert p["time_labels"].tolist() == ["12", "35"] and p["times"].tolist() == [12.0, 35.0]
    assert p["velocity_source"] == "obsm['velocity_pca']"
    pred = scwlm.tl.rollout(adata, source="12", targets="35", n_cells=20)
    assert pred.n_obs == 20 and np.isfinite(pred.obsm["X_pca"]).all() and pred.obsm["X_pca"].shape == (20, 5)
    assert (pred.obs["age(days)"] == "35").all()
    both = ad.concat([scwlm.tl.observed_cells(adata), pred], join="outer")
    assert both.n_obs == 220
    adata.write_h5ad(tmp_path / "dg.h5ad")
    back = ad.read_h5ad(tmp_path / "dg.h5ad")
    again = scwlm.tl.rollout(back, source="12", targets="35", n_cells=20)
    assert np.array_equal(again.obsm["X_pca"], pred.obsm["X_pca"])
    # the gene-space velocities projected with the PCs work as well
    del adata.obsm["velocity_pca"]
    V = scwlm.pp.embedding_velocities(adata, n_dims=5)
    assert V.shape == (200, 5) and np.isfinite(V).all()


# ------------------------------------------------------------------------- evaluation that scales
def _small_thresholds(monkeypatch):
    """Make 30-cell snapshots 'large': W1 and baselines on subsamples of 20 points, 3 draws."""
    import functools

    import scwlm.mechanics
    import scwlm.tl._fit
    import scwlm.tl._leave_one_out
    from scwlm.core import baselines, protocols

    kw = dict(w1_max_points=20, w1_subsample=20, w1_draws=3)
    monkeypatch.setattr(scwlm.mechanics, "interpolate", functools.partial(protocols.interpolate, **kw))
    for mod in (scwlm.tl._fit, scwlm.tl._leave_one_out):
        monkeypatch.setattr(mod, "interpolation_baselines", functools.partial(baselines.interpolation_baselines, **kw))


def test_subsampled_w1_is_recorded_in_the_fit_metrics(monkeypatch, tmp_path):
    from scwlm.core.metrics import wasserstein1_scalable

    _small_thresholds(monkeypatch)
    adata = make_adata()
    scwlm.tl.fit_mechanics(adata, "day", n_dims=3, holdout=1, **ENGINE)
    m = adata.uns["wlm"]["metrics"]
    for k in ("w1_method", "w1_mccann_method", "w1_previous_method"):
        assert m[k].tolist() == ["subsampled"]
    for k in ("w1_draw_se", "w1_mccann_draw_se", "w1_previous_draw_se"):
        assert m[k].shape == (1,) and m[k][0] > 0
    assert dict(m["w1_settings"]) == {"max_points": 20, "subsample": 20, "n_draws": 3, "seed": 0}
    # the stored values are the seeded estimates
    Xs, Vs = _standardised(adata, 3)
    day = adata.obs["day"].to_numpy()
    mech = scwlm.tl.get_mechanics(adata)
    pred = mech.rollout(Xs[day == 0], Vs[day == 0], t0=0.0, times=[1.0])[0]
    est = wasserstein1_scalable(pred, Xs[day == 1], max_points=20, subsample=20, n_draws=3, seed=(0, 1))
    assert m["w1"][0] == est.value and m["w1_draw_se"][0] == est.se
    prev = wasserstein1_scalable(Xs[day == 0], Xs[day == 1], max_points=20, subsample=20, n_draws=3, seed=(0, 1))
    assert m["w1_previous"][0] == prev.value and m["w1_previous_draw_se"][0] == prev.se
    # ... and survive an h5ad round trip
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad").uns["wlm"]["metrics"]
    assert back["w1_method"].tolist() == ["subsampled"] and back["w1_settings"]["n_draws"] == 3
    assert np.array_equal(back["w1_mccann_draw_se"], m["w1_mccann_draw_se"])


def test_leave_one_out_records_how_each_w1_was_computed(monkeypatch, tmp_path):
    from scwlm.tl._store import read_record

    adata = make_adata(n_per_day=20, days=(0, 1, 2, 3))
    df = scwlm.tl.leave_one_out(adata, "day", n_dims=3, random_state=[0, 1], **ENGINE)
    m = adata.uns["wlm_loo"]["metrics"]
    assert m["w1_method"].tolist() == ["exact"] * 4 and m["w1_mccann_method"].tolist() == ["exact"] * 4
    assert m["w1_draw_se"].tolist() == [0.0] * 4 and m["rollout_chunk_size"] == 5000
    assert list(df.columns) == ["holdout", "seed", "w1", "w1_mccann", "w1_previous", "friction"]  # table unchanged

    _small_thresholds(monkeypatch)
    adata = make_adata(n_per_day=30, days=(0, 1, 2, 3))
    df = scwlm.tl.leave_one_out(adata, "day", n_dims=3, random_state=[0, 1], **ENGINE)
    m = adata.uns["wlm_loo"]["metrics"]
    assert m["w1_method"].tolist() == ["subsampled"] * 4 and m["w1_previous_method"].tolist() == ["subsampled"] * 4
    assert (m["w1_draw_se"] > 0).all() and m["w1_mccann_draw_se"].shape == (4,)
    # rows in table order; the baselines' spread does not depend on the seed
    assert m["w1_mccann_draw_se"][0] == m["w1_mccann_draw_se"][1] != m["w1_mccann_draw_se"][2]
    adata.write_h5ad(tmp_path / "loo.h5ad")
    rec = read_record(ad.read_h5ad(tmp_path / "loo.h5ad"), "wlm_loo")
    assert rec.metrics["w1_method"].tolist() == ["subsampled"] * 4
    assert rec.table["w1"].tolist() == df["w1"].tolist()


# ------------------------------------------------------------------------------ atlas-size defaults
def test_tl_never_sets_particles_per_batch_itself(monkeypatch):
    """particles_per_batch is the engine's default unless the caller gives it (never "all cells")."""
    import scwlm.api
    from scwlm.core.config import WLMConfig

    seen = []
    fit, fit_many = scwlm.api.fit, scwlm.api.fit_many

    def spy(real):
        def wrapper(*args, **kwargs):
            seen.append(dict(kwargs))
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(scwlm.api, "fit", spy(fit))
    monkeypatch.setattr(scwlm.api, "fit_many", spy(fit_many))
    adata = make_adata(n_per_day=12, days=(0, 1, 2))
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, holdout=1, **ENGINE)
    scwlm.tl.leave_one_out(adata, "day", n_dims=2, **ENGINE)
    assert len(seen) == 2 and all("particles_per_batch" not in kw for kw in seen)
    default = WLMConfig().particles_per_batch
    for key in ("wlm", "wlm_loo"):
        stored = adata.uns[key]["params"]["engine_config"]["particles_per_batch"]
        assert stored == ("None" if default is None else default)
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, particles_per_batch=8, **ENGINE)
    assert seen[-1]["particles_per_batch"] == 8
    assert adata.uns["wlm"]["params"]["engine_config"]["particles_per_batch"] == 8


def test_fit_mechanics_reads_obsm_only_and_allocates_no_cell_by_cell_arrays(monkeypatch):
    """No dense copy of .X (it is never read) and no N x N array outside the engine."""
    import tracemalloc

    n_per_day = 4000
    adata = make_adata(n_per_day=n_per_day, days=(0, 1, 2), n_pcs=5, n_genes=3, umap=False)

    def no_x(self):
        raise AssertionError("adata.X was read")

    monkeypatch.setattr(ad.AnnData, "X", property(no_x))
    # once small first: the first fit of a process imports modules (tens of MB of Python objects)
    scwlm.tl.fit_mechanics(make_adata(n_per_day=12, n_pcs=5, umap=False), "day", n_dims=5, **ENGINE)
    tracemalloc.start()
    try:
        scwlm.tl.fit_mechanics(adata, "day", n_dims=5, particles_per_batch=16, **ENGINE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n = 3 * n_per_day
    assert "wlm" in adata.uns
    # a handful of (n, 5) float64 copies (~0.5 MB each) at most; one N x N float64 array would be 1.15 GB
    assert peak < 40 * 2**20, peak
    assert peak < n * n * 8 / 20
