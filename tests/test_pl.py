"""scwlm.pl: every plot draws without error on the Agg backend and returns what it documents."""

import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import scwlm  # noqa: E402
from scwlm.pl._potential import insertion_energy  # noqa: E402

from test_pp import assert_unchanged, make_adata, snapshot  # noqa: E402

ENGINE = dict(hidden=8, heads=1, blocks=1, ffn=8, progress=False, n_iter=3, device="cpu")


@pytest.fixture(autouse=True, scope="module")
def _one_thread_module():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _one_thread_and_close():
    torch.set_num_threads(1)
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted():
    adata = make_adata()
    scwlm.tl.fit_mechanics(adata, "day", n_dims=3, holdout=1, **ENGINE)
    scwlm.tl.rollout(adata, source=0, targets=[1, 2], n_cells=10)
    return adata


@pytest.fixture(scope="module")
def mech2d():
    rng = np.random.default_rng(0)
    snaps = [rng.normal(size=(25, 2)) * 0.5 + [0.5 * t, 0.0] for t in range(3)]
    return scwlm.fit(snaps, [0.0, 1.0, 2.0], **ENGINE), snaps


def test_pl_never_selects_a_backend():
    for f in Path(scwlm.pl.__file__).parent.glob("*.py"):
        assert "matplotlib.use(" not in f.read_text(), f


# ------------------------------------------------------------------------------------ training curves
def test_loss_and_friction(fitted, mech2d, tmp_path, monkeypatch):
    fig = scwlm.pl.loss(fitted, return_fig=True, show=False)
    assert isinstance(fig, Figure) and fig.axes[0].get_xlabel() == "iteration"
    assert len(fig.axes[0].lines) == 1 and len(fig.axes[0].lines[0].get_ydata()) == 3
    _, ax = plt.subplots()
    assert scwlm.pl.friction(fitted, ax=ax) is ax
    assert scwlm.pl.loss(fitted) is None  # Agg: nothing shown, nothing returned
    # several models overlaid: a list of Mechanics, an ensemble
    m0 = scwlm.tl.get_mechanics(fitted)
    fig = scwlm.pl.friction([m0, mech2d[0]], return_fig=True)
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_legend() is not None
    ens = scwlm.fit(mech2d[1], [0.0, 1.0, 2.0], random_state=[0, 1], **ENGINE)
    fig = scwlm.pl.loss(ens, smooth=2, return_fig=True)
    assert len(fig.axes[0].lines) == 4  # raw (faint) + smoothed per model
    # save: a path, or True -> figures/<name>.png in the working directory
    scwlm.pl.loss(mech2d[0], save=tmp_path / "loss.pdf")
    assert (tmp_path / "loss.pdf").stat().st_size > 0
    monkeypatch.chdir(tmp_path)
    scwlm.pl.friction(fitted, save=True)
    assert (tmp_path / "figures" / "friction.png").stat().st_size > 0
    with pytest.raises(KeyError, match="available uns keys"):
        scwlm.pl.loss(fitted, key="nope")


def test_loss_of_a_leave_one_out_result():
    adata = make_adata(n_per_day=15, days=(0, 1, 2, 3))
    scwlm.tl.leave_one_out(adata, "day", n_dims=2, random_state=[0, 1], **ENGINE)
    fig = scwlm.pl.loss(adata, "wlm_loo", smooth=0, return_fig=True)
    assert len(fig.axes[0].lines) == 4
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "holdout 1, seed 0"
    # the held-out plot works on leave-one-out results as well
    fig = scwlm.pl.holdout(adata, "wlm_loo", holdout=2, seed=1, return_fig=True)
    assert "held-out day 2" in fig.axes[0].get_title()


# ---------------------------------------------------------------------------------------- holdout
def test_holdout_on_umap_and_pca_fallback(fitted):
    snap = snapshot(fitted)
    fig = scwlm.pl.holdout(fitted, return_fig=True)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "UMAP1" and ax.get_ylabel() == "UMAP2"
    assert "UMAP" in ax.get_title() and "NN regression" in ax.get_title()
    n_day = int((fitted.obs["day"] == 0).sum())
    offsets = [c.get_offsets().shape[0] for c in ax.collections]
    assert offsets == [60, 30, n_day]  # other times, observed held-out day, predicted from day 0
    assert_unchanged(fitted, snap)  # plotting never writes

    no_umap = fitted.copy()
    del no_umap.obsm["X_umap"]
    fig = scwlm.pl.holdout(no_umap, return_fig=True)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "PC1" and ax.get_ylabel() == "PC2"
    assert "X_umap not found" in ax.get_title() and "UMAP" not in ax.get_xlabel()
    _, ax2 = plt.subplots()
    assert scwlm.pl.holdout(fitted, holdout="1", ax=ax2, n_cells=5) is ax2
    with pytest.raises(ValueError, match="was not held out"):
        scwlm.pl.holdout(fitted, holdout=2)
    plain = make_adata()
    scwlm.tl.fit_mechanics(plain, "day", n_dims=2, **ENGINE)
    with pytest.raises(ValueError, match="no held-out time point"):
        scwlm.pl.holdout(plain)


# ---------------------------------------------------------------------------------------- rollout
def test_rollout_plots_from_anndata_and_arrays(fitted, mech2d):
    snap = snapshot(fitted)
    fig = scwlm.pl.rollout(fitted, return_fig=True)  # the rollout recorded by tl.rollout
    assert len(fig.axes) == 3 and fig.axes[1].get_title() == "day 1"
    assert fig.axes[1].collections[1].get_offsets().shape[0] == 10  # the 10 simulated cells
    # simulate on the fly (nothing written) and draw on the UMAP
    fig = scwlm.pl.rollout(fitted, source=1, targets=[2, 2.5], basis="X_umap", return_fig=True)
    assert [a.get_title() for a in fig.axes] == ["day 1 (start)", "day 2", "day 2.5 (not observed)"]
    assert fig.axes[0].get_xlabel() == "UMAP1"
    assert_unchanged(fitted, snap)
    with pytest.raises(KeyError, match="no rollout 'other'"):
        scwlm.pl.rollout(fitted, rollout_key="other")

    # plain arrays, any 2-D basis
    mech, snaps = mech2d
    pred = np.concatenate([snaps[0][None], mech.rollout(snaps[0], t0=0.0, times=[1.0, 2.0])])
    fig = scwlm.pl.rollout_arrays(snaps, pred, times=[0, 1, 2], return_fig=True)
    assert len(fig.axes) == 3 and fig.axes[2].get_title() == "t = 2"
    _, axes = plt.subplots(1, 3)
    out = scwlm.pl.rollout_arrays([snaps[0], None, snaps[2]], predicted=pred, ax=axes)
    assert list(out) == list(axes)
    with pytest.raises(ValueError, match="aligned"):
        scwlm.pl.rollout_arrays(snaps[:2], predicted=pred)


def test_rollout_and_animate_array_input_of_the_anndata_functions_is_deprecated(mech2d, tmp_path):
    mech, snaps = mech2d
    pred = np.concatenate([snaps[0][None], mech.rollout(snaps[0], t0=0.0, times=[1.0, 2.0])])
    with pytest.warns(DeprecationWarning, match="rollout_arrays"):
        fig = scwlm.pl.rollout(snaps, predicted=pred, times=[0, 1, 2], return_fig=True)
    assert len(fig.axes) == 3 and fig.axes[2].get_title() == "t = 2"
    with pytest.warns(DeprecationWarning, match="rollout_arrays"):
        fig = scwlm.pl.rollout(list(snaps), times=[0, 1, 2], ncols=2, return_fig=True)
    assert len(fig.axes) == 3
    with pytest.warns(DeprecationWarning, match="animate_arrays"):
        out = scwlm.pl.animate(pred, tmp_path / "old.gif", observed=snaps, times=[0, 1, 2])
    assert out.stat().st_size > 0
    # the two kinds of input keep separate signatures
    with pytest.raises(TypeError, match="predicted"):
        scwlm.pl.rollout(make_adata(), predicted=pred)
    with pytest.raises(TypeError, match="observed"):
        scwlm.pl.animate(make_adata(), tmp_path / "x.gif", observed=snaps)


# -------------------------------------------------------------------------------------- potential
def test_potential_landscape(mech2d):
    mech, snaps = mech2d
    fig = scwlm.pl.potential(mech, reference=snaps[0], resolution=6, return_fig=True)
    ax = fig.axes[0]
    assert len(ax.collections) >= 2  # filled contours, reference points and arrows
    assert any(type(c).__name__ == "Quiver" for c in ax.collections)
    fig = scwlm.pl.potential(mech, xlim=(-2, 2), ylim=(-1, 1), resolution=5, return_fig=True)
    assert fig.axes[0].get_xlim() == (-2.0, 2.0)
    # the landscape is the energy change of inserting one probe into the reference population
    y = np.array([[0.3, -0.2]])
    e = insertion_energy(mech, y, snaps[0], None)[0]
    assert e == pytest.approx(mech.potential(np.vstack([snaps[0], y])) - mech.potential(snaps[0]), rel=1e-6)
    assert insertion_energy(mech, y, None, None)[0] == pytest.approx(mech.potential(y))
    three = scwlm.fit([s @ np.ones((2, 3)) for s in snaps], [0.0, 1.0, 2.0], **ENGINE)
    with pytest.raises(ValueError, match="dimension 3"):
        scwlm.pl.potential(three)


# ---------------------------------------------------------------------------------------- animate
def test_animate_writes_gifs(fitted, mech2d, tmp_path):
    from PIL import Image

    mech, snaps = mech2d
    frames = mech.rollout(snaps[0], t0=0.0, times=[0.0, 0.5, 1.0, 2.0])
    out = scwlm.pl.animate_arrays(frames, tmp_path / "roll.gif", fps=2)
    assert out == tmp_path / "roll.gif" and out.stat().st_size > 0
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == 4
    side = scwlm.pl.animate_arrays(frames, tmp_path / "side.gif", observed=[snaps[0], None, snaps[1], snaps[2]],
                                   times=[0, 0.5, 1, 2])
    assert side.stat().st_size > 0
    from_adata = scwlm.pl.animate(fitted, tmp_path / "adata.gif")
    with Image.open(from_adata) as im:
        assert im.n_frames == 3  # start, day 1, day 2
    with pytest.raises(ValueError, match=r"\(T, n, d\)"):
        scwlm.pl.animate_arrays(np.zeros((3, 2)), tmp_path / "bad.gif")
