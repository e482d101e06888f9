"""Chunked rollouts (Mechanics.rollout / evaluate, tl.rollout): a rollout of a subset is the rollout of
that subset as a population; one chunk is bit for bit the unchunked rollout."""

import numpy as np
import pytest
import torch

import scwlm
from scwlm.core.protocols import interpolate
from scwlm.core.snapshots import as_snapshots
from scwlm.mechanics import ROLLOUT_CHUNK_SIZE, rollout_chunks

from test_pp import make_adata

TINY = dict(hidden=8, heads=1, blocks=1, ffn=8, progress=False, device="cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="module")
def mech():
    rng = np.random.default_rng(0)
    snaps = [rng.normal(size=(40, 3)) + t for t in range(3)]
    torch.set_num_threads(1)
    return scwlm.fit(snaps, [0.0, 1.0, 2.0], n_iter=2, **TINY)


def _cloud(n, d=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), 0.3 * rng.normal(size=(n, d))


# --------------------------------------------------------------------------------- the partition
def test_rollout_chunks_is_a_balanced_seeded_random_partition():
    assert ROLLOUT_CHUNK_SIZE == 5000
    assert [c.tolist() for c in rollout_chunks(7, chunk_size=None)] == [list(range(7))]
    assert [c.tolist() for c in rollout_chunks(7, chunk_size=7)] == [list(range(7))]
    chunks = rollout_chunks(1001, chunk_size=100, random_state=3)
    assert len(chunks) == 11 and {len(c) for c in chunks} <= {91, 92}  # no small remainder
    assert np.array_equal(np.sort(np.concatenate(chunks)), np.arange(1001))
    assert all((np.diff(c) > 0).all() for c in chunks)  # sorted inside a chunk
    # not contiguous blocks: every chunk spans the whole range of rows
    assert all(c.min() < 100 and c.max() > 900 for c in chunks)
    again = rollout_chunks(1001, chunk_size=100, random_state=3)
    assert all(np.array_equal(a, b) for a, b in zip(chunks, again))
    other = rollout_chunks(1001, chunk_size=100, random_state=4)
    assert not all(np.array_equal(a, b) for a, b in zip(chunks, other))


@pytest.mark.parametrize("bad, match", [
    (dict(chunk_size=0), "chunk_size must be a positive integer"),
    (dict(chunk_size=2.5), "chunk_size must be a positive integer"),
    (dict(chunk_size="10"), "chunk_size must be a positive integer"),
    (dict(chunk_size=True), "chunk_size must be a positive integer"),
    (dict(random_state=-1), "random_state must be a non-negative integer"),
    (dict(random_state=0.5), "random_state must be a non-negative integer"),
])
def test_bad_chunk_arguments_name_the_argument(mech, bad, match):
    x, _ = _cloud(12)
    with pytest.raises(ValueError, match=match):
        mech.rollout(x, t0=0.0, times=[1.0], **bad)
    with pytest.raises(ValueError, match=match):
        rollout_chunks(12, **{"chunk_size": 5, **bad})


# ----------------------------------------------------------------------- (a) one chunk: unchanged
def test_chunk_size_at_least_n_is_bit_identical_to_all_at_once(mech):
    x, v = _cloud(50)
    times = [0.3, 1.0, 1.7]  # off-grid times too (partial steps)
    ref = mech.rollout(x, v, t0=0.0, times=times, chunk_size=None)
    for cs in (50, 51, 10_000, ROLLOUT_CHUNK_SIZE):
        assert np.array_equal(mech.rollout(x, v, t0=0.0, times=times, chunk_size=cs), ref)
    assert np.array_equal(mech.rollout(x, v, t0=0.0, times=times), ref)  # the default (50 <= 5,000)
    # the seed is irrelevant with one chunk
    assert np.array_equal(mech.rollout(x, v, t0=0.0, times=times, chunk_size=50, random_state=9), ref)


# ------------------------------------------------------------- (b) each chunk: its own population
def test_each_chunk_is_the_rollout_of_that_chunk_alone(mech):
    x, v = _cloud(53)
    times = [0.5, 2.0]
    out = mech.rollout(x, v, t0=0.0, times=times, chunk_size=10, random_state=2)
    assert out.shape == (2, 53, 3)
    chunks = rollout_chunks(53, chunk_size=10, random_state=2)
    assert len(chunks) == 6
    for idx in chunks:
        alone = mech.rollout(x[idx], v[idx], t0=0.0, times=times, chunk_size=None)
        assert np.array_equal(out[:, idx], alone)
    # the population matters: chunks are not the cells of the all-at-once rollout
    assert not np.allclose(out, mech.rollout(x, v, t0=0.0, times=times, chunk_size=None))
    # another seed, another partition, another (equally valid) result
    assert not np.array_equal(out, mech.rollout(x, v, t0=0.0, times=times, chunk_size=10, random_state=3))


def test_evaluate_passes_chunking_to_the_protocol(mech):
    rng = np.random.default_rng(5)
    snaps = [rng.normal(size=(30, 3)) + t for t in range(3)]
    vels = [0.1 * rng.normal(size=(30, 3)) for _ in range(3)]
    times = [0.0, 1.0, 2.0]
    ev = mech.evaluate(snaps, times, vels, protocol="interpolate", holdout=[1], chunk_size=8, random_state=1)

    def simulate(x0, v0, t0, tt):
        return mech.rollout(x0, v0, t0=t0, times=tt, chunk_size=8, random_state=1)

    ref = interpolate(simulate, as_snapshots(snaps, times, vels), [1])
    assert ev["w1"] == ref["w1"]
    whole = mech.evaluate(snaps, times, vels, protocol="interpolate", holdout=[1], chunk_size=None)
    assert whole["w1"] == mech.evaluate(snaps, times, vels, protocol="interpolate", holdout=[1])["w1"]
    assert whole["w1"] != ev["w1"]
    fc = mech.evaluate(snaps, times, vels, n_train=2, chunk_size=8)
    assert np.isfinite(fc["w1"][1:]).all()
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        mech.evaluate(snaps, times, vels, n_train=2, chunk_size=-3)


# ----------------------------------------------------------- (c) memory: bounded by one chunk
def test_a_large_rollout_never_puts_more_than_a_chunk_into_attention(mech, monkeypatch):
    net = mech.network
    seen = []
    forces = net.forces

    def spy(x, *args, **kwargs):
        seen.append(x.shape[1])
        return forces(x, *args, **kwargs)

    monkeypatch.setattr(net, "forces", spy)
    x, v = _cloud(6000)
    out = mech.rollout(x, v, t0=0.0, times=[1.0], chunk_size=1000)
    assert out.shape == (1, 6000, 3) and np.isfinite(out).all()
    assert seen and max(seen) == 1000 and len(set(seen)) == 1  # 6 chunks of exactly 1,000


# ----------------------------------------------------------------------------- tl.rollout passes it
def test_tl_rollout_passes_chunk_size_and_records_it(tmp_path):
    import anndata as ad

    adata = make_adata(n_per_day=24)
    scwlm.tl.fit_mechanics(adata, "day", n_dims=3, n_iter=2, **TINY)
    mech = scwlm.tl.get_mechanics(adata)
    whole = scwlm.tl.rollout(adata, source=0, targets=[2], key_added="whole")
    assert adata.uns["wlm"]["rollouts"]["whole"]["chunk_size"] == ROLLOUT_CHUNK_SIZE
    parts = scwlm.tl.rollout(adata, source=0, targets=[2], chunk_size=5, random_state=1, key_added="parts")
    assert adata.uns["wlm"]["rollouts"]["parts"]["chunk_size"] == 5
    nochunk = scwlm.tl.rollout(adata, source=0, targets=[2], chunk_size=None, key_added="none")
    assert adata.uns["wlm"]["rollouts"]["none"]["chunk_size"] == "None"
    assert np.array_equal(whole.obsm["X_pca"], nochunk.obsm["X_pca"])
    # the chunked one is the array API's chunked rollout of the same standardised cells
    p = adata.uns["wlm"]
    mean, std = p["standardization"]["mean"], p["standardization"]["std"]
    day0 = adata.obs["day"].to_numpy() == 0
    x0 = (adata.obsm["X_pca"][day0, :3] - mean) / std
    v0 = adata.obsm["velocity_pca"][day0, :3] / std
    ref = mech.rollout(x0, v0, t0=0.0, times=[2.0], chunk_size=5, random_state=1)[0] * std + mean
    assert np.array_equal(parts.obsm["X_pca"], ref)
    assert not np.allclose(parts.obsm["X_pca"], whole.obsm["X_pca"])
    # recorded and read back after an h5ad round trip
    from scwlm.tl._store import read_record

    adata.write_h5ad(tmp_path / "a.h5ad")
    back = read_record(ad.read_h5ad(tmp_path / "a.h5ad"), "wlm")
    assert back.rollouts["parts"].chunk_size == 5 and back.rollouts["none"].chunk_size is None
    assert back.rollouts["whole"].chunk_size == ROLLOUT_CHUNK_SIZE
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        scwlm.tl.rollout(adata, source=0, targets=[2], chunk_size=0)
