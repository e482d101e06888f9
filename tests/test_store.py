"""The ``adata.uns`` format (scwlm.tl._store): records, old files, and the AnnData bugs of issues 10/11.

Each test marked "fails on 64cf8ec" reproduces a bug of that commit (or needs the record types).
"""

from pathlib import Path

import anndata as ad
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import scwlm  # noqa: E402
from scwlm.core.metrics import wasserstein1  # noqa: E402

from test_pp import assert_unchanged, make_adata, snapshot  # noqa: E402

ENGINE = dict(hidden=8, heads=1, blocks=1, ffn=8, progress=False, n_iter=2, device="cpu")
LEGACY = Path(__file__).parent / "data" / "legacy_64cf8ec.h5ad"
SRC = Path(scwlm.__file__).parent


@pytest.fixture(autouse=True)
def _one_thread_and_close():
    torch.set_num_threads(1)
    yield
    plt.close("all")


def _slash_adata():
    adata = make_adata(n_per_day=12, days=(0, 1, 2))
    stages = np.array(["d0/a", "d1/b", "d2/c"])
    adata.obs["stage"] = pd.Categorical(stages[adata.obs["day"].to_numpy()], categories=list(stages), ordered=True)
    return adata


# ------------------------------------------------------------------------------------ old files
def test_a_file_written_by_64cf8ec_still_loads(tmp_path):
    """tests/data/legacy_64cf8ec.h5ad was written by the old code (tests/data/make_legacy_h5ad.py)."""
    from scwlm.tl._store import FitRecord, LeaveOneOutRecord, read_record

    old = ad.read_h5ad(LEGACY)
    assert "kind" not in old.uns["wlm"] and "format_version" not in old.uns["wlm"]  # really the old layout
    fit, loo = read_record(old, "wlm"), read_record(old, "wlm_loo")
    assert isinstance(fit, FitRecord) and fit.format_version == 1 and fit.params.holdouts == ["1"]
    assert isinstance(loo, LeaveOneOutRecord) and loo.params.holdouts == ["2"] and loo.seeds == [0, 1]
    assert loo.model_keys == ["holdout_2_seed_0", "holdout_2_seed_1"]

    # models: the fit, each leave-one-out model, and one whose label holds "/" (unreadable on 64cf8ec)
    mech = scwlm.tl.get_mechanics(old, "wlm")
    assert mech.dim == 2 and mech.friction == pytest.approx(float(old.uns["wlm"]["friction"]))
    m1 = scwlm.tl.get_mechanics(old, "wlm_loo", holdout=2, seed=1)
    assert m1.info["train_times"] == [0.0, 1.0, 3.0]
    assert scwlm.tl.get_mechanics(old, "slash_loo", holdout="d1/b").info["train_times"] == [0.0, 2.0, 3.0]

    # the recorded rollout is read back, and rolling out again gives the cells the old code wrote: the same
    # rows (NaN where a cell is not predicted), values equal to float32 round-off (the file was written on
    # another CPU, whose kernels round differently; bit-identity holds only on one machine)
    pred = scwlm.tl.rollout(old, "wlm", source=0, targets=[1, 2], key_added="again")
    back = ad.read_h5ad(LEGACY)
    for t in ("1", "2"):
        new_cells, old_cells = old.obsm[f"again_{t}"], back.obsm[f"wlm_rollout_{t}"]
        assert np.array_equal(np.isnan(new_cells), np.isnan(old_cells))
        assert np.allclose(new_cells, old_cells, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert pred.n_obs == 20
    assert scwlm.tl.observed_cells(old, "wlm").n_obs == old.n_obs
    scwlm.tl.rollout(old, "slash_loo", source="d0/a", targets=["d1/b"])

    # plots of every kind of entry
    fig = scwlm.pl.rollout(old, "wlm", return_fig=True)  # the recorded rollout of the old file
    assert [a.get_title() for a in fig.axes] == ["day 0 (start)", "day 1", "day 2"]
    fig = scwlm.pl.holdout(old, "wlm", return_fig=True)
    assert "held-out day 1" in fig.axes[0].get_title() and "W1 = " in fig.axes[0].get_title()
    fig = scwlm.pl.holdout(old, "wlm_loo", seed=1, return_fig=True)
    w1 = float(np.asarray(back.uns["wlm_loo"]["results"]["w1"])[1])
    assert f"W1 = {w1:.3g}" in fig.axes[0].get_title()
    fig = scwlm.pl.loss(old, "wlm_loo", smooth=0, return_fig=True)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["holdout 2, seed 0", "holdout 2, seed 1"]
    assert scwlm.pl.holdout(old, "slash_loo", return_fig=True) is not None
    scwlm.pl.friction(old, "wlm", return_fig=True)
    # and the updated file is written in the current format
    old.write_h5ad(tmp_path / "new.h5ad")
    new = ad.read_h5ad(tmp_path / "new.h5ad")
    assert "again" in new.uns["wlm"]["rollouts"] and "wlm_rollout" in new.uns["wlm"]["rollouts"]


# ---------------------------------------------------------------------------------- the records
def test_records_round_trip_with_kind_and_version(tmp_path):
    from scwlm.tl._store import FORMAT_VERSION, FitRecord, LeaveOneOutRecord, read_record, record_from_uns

    adata = make_adata(n_per_day=12, days=(0, 1, 2))
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, holdout=1, **ENGINE)
    scwlm.tl.leave_one_out(adata, "day", n_dims=2, random_state=[0, 1], **ENGINE)
    scwlm.tl.rollout(adata, source=0, targets=[1, 2], n_cells=4)
    fit, loo = adata.uns["wlm"], adata.uns["wlm_loo"]
    assert fit["kind"] == "fit" and loo["kind"] == "leave_one_out"
    assert fit["format_version"] == FORMAT_VERSION == loo["format_version"]
    # one name for the held-out labels in both kinds
    assert fit["params"]["holdouts"].tolist() == ["1"] and loo["params"]["holdouts"].tolist() == ["1"]
    assert "holdout" not in fit["params"] and "holdout" not in loo["params"]
    assert loo["model_keys"].tolist() == ["holdout_1_seed_0", "holdout_1_seed_1"]
    rec = fit["rollouts"]["wlm_rollout"]
    assert rec["kind"] == "rollout" and rec["substeps"] == 5

    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    for key, cls in (("wlm", FitRecord), ("wlm_loo", LeaveOneOutRecord)):
        r = read_record(back, key)
        assert isinstance(r, cls) and r.format_version == FORMAT_VERSION
        again = record_from_uns(r.to_uns(), key)  # to_uns / from_uns are inverse
        assert again.params.labels == r.params.labels and np.array_equal(again.mean, r.mean)
        assert sorted(again.rollouts) == sorted(r.rollouts)
    pd.testing.assert_frame_equal(read_record(back, "wlm_loo").table, read_record(adata, "wlm_loo").table)

    newer = dict(adata.uns["wlm"], format_version=FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match="newer than this scwlm reads"):
        record_from_uns(newer, "wlm")
    with pytest.raises(ValueError, match="kind 'other'"):
        record_from_uns(dict(adata.uns["wlm"], kind="other"), "wlm")
    adata.uns["junk"] = {"a": 1}
    with pytest.raises(ValueError, match=r"adata.uns\['junk'\] was not written by scwlm.tl"):
        scwlm.tl.get_mechanics(adata, "junk")


def test_pl_reads_through_the_records_only():
    for f in (SRC / "pl").glob("*.py"):
        text = f.read_text()
        assert '"models" in' not in text and '"model" not in' not in text and 'uns[key]["params"]' not in text, f
    for f in (SRC / "tl").glob("*.py"):
        if f.name != "_store.py":
            text = f.read_text()
            assert "out.uns[" not in text and "adata.uns[key] =" not in text, f  # writers go through _store


# ------------------------------------------------------------------------ bug 2: "/" in time labels
def test_time_labels_with_a_slash(tmp_path):
    """Fails on 64cf8ec: KeyError 'holdout_d1/b_seed_0' (h5ad_safe rewrote the key, the lookup did not)."""
    adata = _slash_adata()
    df = scwlm.tl.leave_one_out(adata, "stage", n_dims=2, random_state=[0, 1], **ENGINE)
    assert df["holdout"].tolist() == ["d1/b", "d1/b"]
    m_default = scwlm.tl.get_mechanics(adata, "wlm_loo")
    m1 = scwlm.tl.get_mechanics(adata, "wlm_loo", holdout="d1/b", seed=1)
    assert m1.info["train_times"] == [0.0, 2.0] and m_default.info["train_times"] == [0.0, 2.0]
    pred = scwlm.tl.rollout(adata, "wlm_loo", source="d0/a", targets=["d1/b", "d2/c"], n_cells=4)
    assert "wlm_loo_rollout_d1_b" in adata.obsm and set(pred.obs["stage"]) == {"d1/b", "d2/c"}
    fig = scwlm.pl.holdout(adata, "wlm_loo", seed=1, return_fig=True)
    assert "held-out stage d1/b" in fig.axes[0].get_title()
    scwlm.pl.rollout(adata, "wlm_loo", return_fig=True)
    # ... and after a round trip through h5ad
    adata.write_h5ad(tmp_path / "s.h5ad")
    back = ad.read_h5ad(tmp_path / "s.h5ad")
    x0 = np.random.default_rng(0).normal(size=(5, 2))
    m1_back = scwlm.tl.get_mechanics(back, "wlm_loo", holdout="d1/b", seed=1)
    assert np.array_equal(m1_back.rollout(x0, t0=0.0, times=[1.0]), m1.rollout(x0, t0=0.0, times=[1.0]))
    scwlm.tl.rollout(back, "wlm_loo", source="d0/a", targets="d1/b")
    # a fit holding the label out works too
    scwlm.tl.fit_mechanics(adata, "stage", n_dims=2, holdout="d1/b", **ENGINE)
    assert adata.uns["wlm"]["metrics"]["holdout"].tolist() == ["d1/b"]
    assert scwlm.pl.holdout(adata, return_fig=True) is not None


# --------------------------------------------------------------- bug 5: substeps follow the model
def test_rollout_and_holdout_default_to_the_models_eval_substeps():
    """Fails on 64cf8ec: tl.rollout / pl.holdout used substeps=5 while the stored W1 used eval_substeps."""
    adata = make_adata(n_per_day=12, days=(0, 1, 2))
    del adata.obsm["X_umap"]
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, holdout=1, eval_substeps=1, **ENGINE)
    mech = scwlm.tl.get_mechanics(adata)
    assert mech.config.eval_substeps == 1
    st = adata.uns["wlm"]["standardization"]
    day = adata.obs["day"].to_numpy()
    X = adata.obsm["X_pca"][:, :2]
    x0, v0 = (X[day == 0] - st["mean"]) / st["std"], adata.obsm["velocity_pca"][day == 0, :2] / st["std"]
    one = mech.rollout(x0, v0, t0=0.0, times=[1.0], substeps=1)[0]
    five = mech.rollout(x0, v0, t0=0.0, times=[1.0], substeps=5)[0]
    assert not np.allclose(one, five)  # the setting matters here

    scwlm.tl.rollout(adata, source=0, targets=1)
    assert np.allclose(adata.obsm["wlm_rollout_1"][day == 0], one * st["std"] + st["mean"])
    assert adata.uns["wlm"]["rollouts"]["wlm_rollout"]["substeps"] == 1
    # the picture of pl.holdout is the prediction its title's W1 was computed from
    fig = scwlm.pl.holdout(adata, return_fig=True)  # PCA fallback: predictions drawn as they are
    drawn = fig.axes[0].collections[2].get_offsets()
    assert np.allclose(drawn, one * st["std"] + st["mean"])
    stored = float(adata.uns["wlm"]["metrics"]["w1"][0])
    assert stored == pytest.approx(wasserstein1(one, (X[day == 1] - st["mean"]) / st["std"]))
    # an explicit value still wins
    scwlm.tl.rollout(adata, source=0, targets=1, substeps=5, key_added="five")
    assert np.allclose(adata.obsm["five_1"][day == 0], five * st["std"] + st["mean"])
    with pytest.raises(ValueError, match="substeps must be a positive integer or None"):
        scwlm.tl.rollout(adata, source=0, targets=1, substeps=0)


# ----------------------------------------------------------------- issue 11 item 11: obs_names, key
@pytest.mark.parametrize("call", ["fit_mechanics", "leave_one_out", "rollout"])
def test_duplicate_obs_names_are_rejected(call):
    """Fails on 64cf8ec: duplicate names were accepted and tl.rollout wrote duplicate output names."""
    adata = make_adata(n_per_day=12, days=(0, 1, 2))
    if call == "rollout":
        scwlm.tl.fit_mechanics(adata, "day", n_dims=2, **ENGINE)
    names = list(adata.obs_names)
    names[5] = names[20]
    adata.obs_names = names
    snap = snapshot(adata)
    with pytest.raises(ValueError, match=r"scwlm.tl.%s needs unique adata.obs_names.*'cell20'.*obs_names_make_unique"
                                         % call):
        if call == "rollout":
            scwlm.tl.rollout(adata, source=0, targets=1)
        else:
            getattr(scwlm.tl, call)(adata, "day", n_dims=2, **ENGINE)
    assert_unchanged(adata, snap)


def test_refitting_a_key_removes_the_old_models_rollouts():
    """Fails on 64cf8ec: obsm[f"{key}_rollout_..."] of the replaced model stayed behind."""
    adata = make_adata(n_per_day=12, days=(0, 1, 2))
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, **ENGINE)
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, key_added="other", **ENGINE)
    scwlm.tl.rollout(adata, source=0, targets=[1, 2])
    scwlm.tl.rollout(adata, "other", source=0, targets=[1])
    assert {"wlm_rollout_1", "wlm_rollout_2", "other_rollout_1"} <= set(adata.obsm)
    # the same rollout key again, with fewer targets: the dropped target goes
    scwlm.tl.rollout(adata, source=0, targets=[2])
    assert "wlm_rollout_1" not in adata.obsm and "wlm_rollout_2" in adata.obsm
    # a new model under the same key: its predecessor's rollouts go, other fits' stay
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, random_state=1, **ENGINE)
    assert "wlm_rollout_2" not in adata.obsm and "rollouts" not in adata.uns["wlm"]
    assert "other_rollout_1" in adata.obsm and "other_rollout" in adata.uns["other"]["rollouts"]
    assert {"X_pca", "X_umap", "velocity_pca"} <= set(adata.obsm)
    # copy=True leaves the original (and its rollouts) alone
    scwlm.tl.rollout(adata, source=0, targets=[1])
    out = scwlm.tl.fit_mechanics(adata, "day", n_dims=2, copy=True, **ENGINE)
    assert "wlm_rollout_1" in adata.obsm and "wlm_rollout_1" not in out.obsm
    # leave_one_out replaces its key the same way
    scwlm.tl.leave_one_out(adata, "day", n_dims=2, **ENGINE)
    scwlm.tl.rollout(adata, "wlm_loo", source=0, targets=[1])
    scwlm.tl.leave_one_out(adata, "day", n_dims=2, **ENGINE)
    assert "wlm_loo_rollout_1" not in adata.obsm and "wlm_rollout_1" in adata.obsm


# ------------------------------------------------------------------------------ shared doc fragments
def test_doc_fragments_are_filled_in():
    from scwlm._docs import _doc_params, doc_copy

    for mod in (scwlm.tl, scwlm.pl):
        for name in mod.__all__:
            doc = getattr(mod, name).__doc__
            assert "{doc_" not in doc, f"{mod.__name__}.{name}"
    assert scwlm.tl.fit_mechanics.__doc__.count("Work on (and return) a copy") == 1
    assert "Work on (and return) a copy" in scwlm.tl.leave_one_out.__doc__

    with pytest.raises(ValueError, match="no {doc_copy} placeholder"):
        @_doc_params(doc_copy=doc_copy)
        def f():
            """Nothing to fill."""


# ----------------------------------------------------------------- W1 method and rollout chunk size
def test_entries_without_w1_methods_or_chunk_size_still_load(tmp_path):
    """Files written before the evaluation recorded how W1 was computed (and before chunked
    rollouts) read as before; new entries round-trip through the records and h5ad."""
    from scwlm.tl._store import LeaveOneOutRecord, read_record, record_from_uns

    old = ad.read_h5ad(LEGACY)
    fit, loo = read_record(old, "wlm"), read_record(old, "wlm_loo")
    assert "w1_method" not in fit.metrics and fit.w1("1") == pytest.approx(float(old.uns["wlm"]["metrics"]["w1"][0]))
    assert loo.metrics is None and "metrics" not in loo.to_uns()
    assert fit.rollouts["wlm_rollout"].chunk_size is None  # rolled out all at once by the old code
    assert scwlm.tl.get_mechanics(old, "wlm_loo", holdout=2, seed=0).dim == 2

    adata = make_adata(n_per_day=12, days=(0, 1, 2, 3))
    scwlm.tl.leave_one_out(adata, "day", n_dims=2, holdouts=[1, 2], **ENGINE)
    scwlm.tl.rollout(adata, "wlm_loo", source=0, targets=[1], chunk_size=5)
    rec = read_record(adata, "wlm_loo")
    assert isinstance(rec, LeaveOneOutRecord) and rec.metrics["w1_method"].tolist() == ["exact", "exact"]
    again = record_from_uns(rec.to_uns(), "wlm_loo")
    assert again.metrics["w1_method"].tolist() == ["exact", "exact"] and again.rollouts["wlm_loo_rollout"].chunk_size == 5
    adata.write_h5ad(tmp_path / "new.h5ad")
    back = read_record(ad.read_h5ad(tmp_path / "new.h5ad"), "wlm_loo")
    assert back.metrics["w1_settings"]["max_points"] == 5000 and back.rollouts["wlm_loo_rollout"].chunk_size == 5
    # an entry of this format from before these keys existed: drop them, it still reads
    entry = dict(adata.uns["wlm_loo"])
    del entry["metrics"]
    entry["rollouts"] = {k: {kk: vv for kk, vv in v.items() if kk != "chunk_size"} for k, v in entry["rollouts"].items()}
    plain = record_from_uns(entry, "wlm_loo")
    assert plain.metrics is None and plain.rollouts["wlm_loo_rollout"].chunk_size is None
