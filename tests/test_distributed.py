"""Multi-process training (scwlm.distributed): 2-process gloo runs on CPU, bad launches.

As PyTorch's and scvi-tools' CPU tests of distributed code do, the workers are started with
``torch.multiprocessing`` (spawn) on 127.0.0.1 and a free port, with the gloo backend; every
wait is bounded (process-group timeouts, a deadline on joining the workers). The single-process
references are computed here, in the test process.
"""

import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import scwlm
import scwlm.distributed as sd
from scwlm.core import trainer as tr
from scwlm.core.config import WLMConfig
from scwlm.core.divergence import SinkhornDivergence, blur_heuristic, point_cloud_diameter
from scwlm.core.snapshots import as_snapshots

TINY = dict(hidden=8, heads=1, blocks=1, ffn=8, progress=False)
WORLD = 2
DEADLINE_S = 120  # the longest a 2-process test may run before its workers are stopped


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    snaps = [rng.normal(size=(n, 2)) + np.array([0.5 * t, 0.0]) for t in range(3)]
    return snaps, [0.0, 1.0, 2.0]


def _adata(seed=0):
    """A tiny time course: 4 days x 30 cells, a 2-column X_pca with velocities."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    days = np.repeat(np.arange(4), 30)
    obs = pd.DataFrame({"day": days}, index=[f"c{i}" for i in range(days.size)])
    adata = ad.AnnData(np.zeros((days.size, 1), dtype=np.float32), obs=obs)
    adata.obsm["X_pca"] = rng.normal(size=(days.size, 2)) + np.outer(days, [0.5, 0.0])
    adata.obsm["velocity_pca"] = np.tile([0.5, 0.0], (days.size, 1)) + 0.1 * rng.normal(size=(days.size, 2))
    return adata


# 2 interior holdouts x 2 seeds = 4 models; 16 particles <= 30 cells: every member draws as many as alone
LOO_KW = dict(random_state=[0, 1], n_dims=2, n_iter=2, particles_per_batch=16, device="cpu", **TINY)

ENSEMBLE_KW = dict(random_state=[0, 1, 2, 3], n_iter=3, particles_per_batch=16, dropout=0.1, **TINY)
# warm_start=0: the one-process reference below replays the main loop only (the warm start is tested apart)
DATA_KW = dict(random_state=5, n_iter=3, particles_per_batch=16, dropout=0.1, grad_clip=1.0, warm_start=0, **TINY)


# ---------------------------------------------------------------------------- workers (spawned)
def _states(models):
    return [m.to_state() for m in (models if isinstance(models, list) else [models])]


def _worker(rank: int, scenario: str, port: int, tmp: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    tmp = Path(tmp)
    info = sd.init_process_group("cpu", init_timeout=60, timeout=60)
    assert (info.rank, info.world_size, info.backend) == (rank, WORLD, "gloo")
    snaps, times = _data()
    out: dict = {}
    if scenario == "ensemble":
        ens = sd.fit(snaps, times, mode="ensemble", device="cpu", out=tmp / "ens", **ENSEMBLE_KW)
        out["ensemble"] = _states(ens)
        many = sd.fit_many([(snaps, times), (snaps[:2], times[:2])], mode="ensemble", random_state=[7, 8],
                           n_iter=2, particles_per_batch=16, device="cpu", **TINY)
        out["many"] = _states(many)
        # rank 1 fails: every rank raises, nothing is written
        real = tr.train
        if rank == 1:
            def failing(*args, **kwargs):
                raise ValueError("boom on purpose")
            sd._trainer.train = failing
        try:
            sd.fit(snaps, times, mode="ensemble", device="cpu", out=tmp / "fail", **ENSEMBLE_KW)
        except sd.DistributedTrainingError as err:
            out["failure"] = (str(err), sorted(err.failures))
        finally:
            sd._trainer.train = real
    elif scenario == "tl":
        adata = _adata()
        df = scwlm.tl.leave_one_out(adata, "day", **LOO_KW)
        out["uns"], out["table"], out["keys"] = adata.uns["wlm_loo"], df, list(adata.uns)
    elif scenario == "data":
        mech = sd.fit(snaps, times, mode="data", device="cpu", out=tmp / "dp", **DATA_KW)
        out["data"] = _states(mech)
        # the linear warm start takes the same (all-reduced) steps and the same decision on every rank
        warm = sd.fit(snaps, times, mode="data", device="cpu", **{**DATA_KW, "warm_start": 4, "quadratic": True})
        out["warm"] = (_states(warm), warm.info["warm_start"])
        # rank 1 fails in the middle of training (iteration 1, before its backward pass)
        real = tr.RolloutLoss.__call__
        if rank == 1:
            def failing(self, it):
                if it == 1:
                    raise RuntimeError("rank-1 rollout failed on purpose")
                return real(self, it)
            tr.RolloutLoss.__call__ = failing
        try:
            sd.fit(snaps, times, mode="data", device="cpu", out=tmp / "fail", **DATA_KW)
        except sd.DistributedTrainingError as err:
            out["failure"] = (str(err), sorted(err.failures))
        finally:
            tr.RolloutLoss.__call__ = real
    with open(tmp / f"{scenario}_rank{rank}.pkl", "wb") as f:
        pickle.dump(out, f)
    sd.shutdown()  # both ranks leave together
    assert not torch.distributed.is_initialized()


def _spawn(scenario: str, tmp: Path) -> list[dict]:
    port = _free_port()
    ctx = mp.start_processes(_worker, args=(scenario, port, str(tmp)), nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not ctx.join(timeout=5):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD}-process {scenario!r} run did not finish within {DEADLINE_S} s")
    finally:
        for p in ctx.processes:  # the workers started here, if still alive
            if p.is_alive():
                p.terminate()
    out = []
    for r in range(WORLD):
        with open(tmp / f"{scenario}_rank{r}.pkl", "rb") as f:
            out.append(pickle.load(f))
    return out


def _max_diff(state_a, state_b) -> float:
    wa, wb = state_a["weights"], state_b["weights"]
    assert wa.keys() == wb.keys()
    return max(float(np.max(np.abs(np.asarray(wa[k]) - np.asarray(wb[k])))) for k in wa)


# ---------------------------------------------------------------------------- ensemble mode
def test_two_ranks_ensemble_equals_single_process(tmp_path):
    res = _spawn("ensemble", tmp_path)
    snaps, times = _data()
    single = scwlm.fit(snaps, times, **ENSEMBLE_KW)
    ref = [m.to_state() for m in single]
    for r in range(WORLD):
        got = res[r]["ensemble"]
        assert len(got) == 4
        for g, s, seed in zip(got, ref, [0, 1, 2, 3]):
            assert _max_diff(g, s) <= 1e-6  # same weights as one process with the same seeds
            assert np.allclose(g["history"]["loss"], s["history"]["loss"], rtol=1e-5, atol=1e-7)
            assert '"seed": %d' % seed in g["meta"]
    # rank 0 wrote the ensemble, nothing else is left next to it
    saved = scwlm.load(tmp_path / "ens")
    assert len(saved) == 4 and _max_diff(saved[3].to_state(), ref[3]) <= 1e-6
    # fit_many: the data sets split across ranks, equal to one process
    many = scwlm.fit_many([(snaps, times), (snaps[:2], times[:2])], random_state=[7, 8], n_iter=2,
                          particles_per_batch=16, **TINY)
    for g, s in zip(res[0]["many"], many):
        assert _max_diff(g, s.to_state()) <= 1e-6
    # a failing rank: every rank stops with a message naming it, and no model files
    for r in range(WORLD):
        message, failed = res[r]["failure"]
        assert failed == [1] and "rank 1" in message and "boom on purpose" in message
    assert not (tmp_path / "fail").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# ---------------------------------------------------------------------------- the AnnData layer
def _assert_same(a, b, where="uns"):
    """Nested .uns entries equal: numbers within 1e-6, strings exact (JSON strings compared parsed)."""
    import json

    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, str):
        assert isinstance(b, str), where
        if a[:1] in "{[" and a[-1:] in "}]":
            _assert_same(json.loads(a), json.loads(b), where)
        else:
            assert a == b, where
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif a is None or isinstance(a, bool):
        assert a == b, where
    else:
        x, y = np.asarray(a), np.asarray(b)
        assert x.shape == y.shape and x.dtype == y.dtype, where
        if x.dtype.kind in "fc":
            assert np.allclose(x, y, rtol=0, atol=1e-6, equal_nan=True), f"{where}: {np.max(np.abs(x - y))}"
        else:
            assert np.array_equal(x, y), where


def test_two_ranks_leave_one_out_writes_the_single_process_entry(tmp_path):
    res = _spawn("tl", tmp_path)
    adata = _adata()
    df = scwlm.tl.leave_one_out(adata, "day", **LOO_KW)
    ref = adata.uns["wlm_loo"]
    assert len(ref["model_keys"]) == 4
    for r in range(WORLD):  # every rank holds the same entry, equal to one process
        got = res[r]["uns"]
        _assert_same(got, ref)
        assert _max_diff(got["models"]["holdout_2_seed_1"], ref["models"]["holdout_2_seed_1"]) <= 1e-6
        assert np.allclose(res[r]["table"][["w1", "friction"]], df[["w1", "friction"]], rtol=0, atol=1e-6)
        assert res[r]["keys"] == list(adata.uns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tl_rank0.pkl", "tl_rank1.pkl"]  # tl wrote no files


def test_tl_without_a_launcher_is_the_plain_fit(clean_env):
    adata = _adata()
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, n_iter=2, random_state=3, particles_per_batch=16, device="cpu", **TINY)
    snaps = [adata.obsm["X_pca"][adata.obs["day"].to_numpy() == d] for d in range(4)]
    got = adata.uns["wlm"]["model"]
    st = adata.uns["wlm"]["standardization"]
    vel = [adata.obsm["velocity_pca"][adata.obs["day"].to_numpy() == d] / st["std"] for d in range(4)]
    ref = scwlm.fit([(x - st["mean"]) / st["std"] for x in snaps], [0, 1, 2, 3], vel, n_iter=2, random_state=3,
                    particles_per_batch=16, device="cpu", **TINY).to_state()
    assert _max_diff(got, ref) == 0.0 and got["meta"] == ref["meta"]
    # under torchrun one model cannot be split across ranks: a clear error before training
    _launch(clean_env, RANK=0, WORLD_SIZE=2, MASTER_ADDR="127.0.0.1", MASTER_PORT=_free_port())
    with pytest.raises(sd.DistributedSetupError, match="1 ensemble members"):
        scwlm.tl.fit_mechanics(adata, "day", n_dims=2, n_iter=2, key_added="wlm2", device="cpu", **TINY)
    assert "wlm2" not in adata.uns


# ---------------------------------------------------------------------------- data mode
def _mean_of_rank_losses(snaps, times, cfg: WLMConfig, seed: int, n_iter: int, world: int):
    """One process minimising the mean of the ``world`` ranks' minibatch losses, written out by hand.

    Every rank's loss uses the same horizon and dropout masks (copies of the model's generators
    taken before the iteration) and its own particle stream (rank r > 0: seeded by seed and r);
    one backward pass of the mean, then clipping, AdamW and EMA as in the engine.
    """
    task = tr.Task(as_snapshots(snaps, times), seed, None)
    dtype, dev = torch.float32, torch.device("cpu")
    data = tr.TrainingData([task], cfg, dev, dtype)
    blurs = [blur_heuristic(task.snapshots.points, generator=torch.Generator().manual_seed(0))]
    diams = [point_cloud_diameter(task.snapshots.points)]
    div = SinkhornDivergence(p=cfg.p, blur=blurs[0], scaling=cfg.scaling, diameter=diams[0], backend=cfg.sinkhorn_backend)
    state = tr.TrainingState([task], cfg, task.snapshots.dim, dev, dtype, n_iter)
    gens = [state.generators] + [[torch.Generator()] for _ in range(1, world)]
    dev_gens = [state.device_generators] + [[torch.Generator()] for _ in range(1, world)]
    losses = [
        tr.RolloutLoss(cfg, state.network, state.friction, data, div, generators=gens[r], device_generators=dev_gens[r],
                       blurs=blurs, diameters=diams,
                       subset_generators=None if r == 0 else [torch.Generator().manual_seed(seed * 1_000_003 + r)])
        for r in range(world)
    ]
    history = []
    for it in range(n_iter):
        for r in range(1, world):
            gens[r][0].set_state(state.generators[0].get_state())
            dev_gens[r][0].set_state(state.device_generators[0].get_state())
        per_rank = [loss(it) for loss in losses]
        mean = sum(per_rank) / world
        assert bool(state.step(mean))
        state.apply(it)
        history.append(float(mean.detach()))
    info = dict(dt=data.dt, step=data.h, blur=blurs, diameter=diams, n_iter=n_iter, seeds=[seed], dim=2)
    return scwlm.Mechanics.from_train_result(state.result(info), 0, cfg), np.asarray(history), per_rank


def test_two_ranks_data_parallel_equal_one_process_minimising_the_mean_loss(tmp_path):
    res = _spawn("data", tmp_path)
    snaps, times = _data()
    kw = dict(DATA_KW)
    seed, n_iter = kw.pop("random_state"), kw.pop("n_iter")
    ref, ref_loss, last = _mean_of_rank_losses(snaps, times, WLMConfig.from_kwargs(**kw), seed, n_iter, WORLD)
    assert not torch.allclose(last[0], last[1])  # the ranks really saw different particles
    got = [res[r]["data"][0] for r in range(WORLD)]
    assert _max_diff(got[0], got[1]) == 0.0  # identical weights on every rank
    assert _max_diff(got[0], ref.to_state()) <= 1e-5
    assert np.allclose(got[0]["history"]["loss"], ref_loss, rtol=1e-5, atol=1e-6)  # the mean over ranks
    assert '"data_parallel": {"world_size": 2, "particles_per_rank": 16}' in got[0]["meta"]
    # ... and it differs from a single process on one minibatch of 16 (the relation is not trivial)
    alone = scwlm.fit(snaps, times, **DATA_KW)
    assert _max_diff(got[0], alone.to_state()) > 1e-5
    assert (tmp_path / "dp" / "state.pt").is_file()
    (w0, ws0), (w1, ws1) = res[0]["warm"], res[1]["warm"]
    assert ws0 == ws1 and ws0["linear_loss"] < ws0["free_flight_loss"] and _max_diff(w0[0], w1[0]) == 0.0
    # a rank failing mid-training stops both with a message naming it, and no model files
    for r in range(WORLD):
        message, failed = res[r]["failure"]
        assert failed == [1] and "rank 1" in message and "failed on purpose" in message
    assert not (tmp_path / "fail").exists()


# ---------------------------------------------------------------------------- the launcher and the CLI
def test_torchrun_command_line(tmp_path):
    snaps, times = _data(n=30)
    np.savez(tmp_path / "data.npz", positions=np.stack(snaps), times=np.asarray(times))
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    cmd = [str(torchrun), "--nnodes", "1", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "scwlm", "fit", str(tmp_path / "data.npz"),
           "--out", str(tmp_path / "model"), "--seeds", "0", "1", "--n-iter", "2", "--device", "cpu"]
    cmd += [a for k, v in TINY.items() for a in ("--set", f"{k}={str(v).lower()}")]
    env = dict(os.environ, OMP_NUM_THREADS="1", SCWLM_DIST_INIT_TIMEOUT="60", SCWLM_DIST_TIMEOUT="60")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DEADLINE_S, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("saved to") == 1  # rank 0 alone reports
    ens = scwlm.load(tmp_path / "model")
    single = scwlm.fit(snaps, times, random_state=[0, 1], n_iter=2, **TINY)
    assert len(ens) == 2 and all(_max_diff(a.to_state(), b.to_state()) <= 1e-6 for a, b in zip(ens, single))


# ---------------------------------------------------------------------------- bad launches (one process)
RENDEZVOUS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@pytest.fixture
def clean_env(monkeypatch):
    for v in RENDEZVOUS:
        monkeypatch.delenv(v, raising=False)
    assert not dist.is_initialized()
    yield monkeypatch
    assert not dist.is_initialized()  # no test here may reach the rendezvous


def _launch(monkeypatch, **env):
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))


def test_missing_rendezvous_variables_error_before_training(clean_env, tmp_path, monkeypatch):
    snaps, times = _data()
    monkeypatch.setattr(sd._trainer, "train", lambda *a, **k: pytest.fail("training started"))
    _launch(clean_env, RANK=0, WORLD_SIZE=2)
    with pytest.raises(sd.DistributedSetupError, match="MASTER_ADDR, MASTER_PORT are not set"):
        sd.fit(snaps, times, random_state=[0, 1], out=tmp_path / "m", n_iter=2, **TINY)
    clean_env.delenv("WORLD_SIZE")
    with pytest.raises(sd.DistributedSetupError, match="RANK is set but WORLD_SIZE is not"):
        sd.fit(snaps, times, n_iter=2, **TINY)
    _launch(clean_env, WORLD_SIZE=2, RANK=2, MASTER_ADDR="127.0.0.1", MASTER_PORT=29500)
    with pytest.raises(sd.DistributedSetupError, match="RANK=2 must lie in 0..WORLD_SIZE-1"):
        sd.fit(snaps, times, random_state=[0, 1], n_iter=2, **TINY)
    assert not (tmp_path / "m").exists()


def test_world_size_must_divide_the_ensemble(clean_env, tmp_path, monkeypatch):
    snaps, times = _data()
    monkeypatch.setattr(sd._trainer, "train", lambda *a, **k: pytest.fail("training started"))
    _launch(clean_env, RANK=0, WORLD_SIZE=2, MASTER_ADDR="127.0.0.1", MASTER_PORT=_free_port())
    with pytest.raises(sd.DistributedSetupError, match="3 ensemble members cannot be split evenly across WORLD_SIZE=2"):
        sd.fit(snaps, times, random_state=[0, 1, 2], out=tmp_path / "m", n_iter=2, **TINY)
    with pytest.raises(sd.DistributedSetupError, match="1 ensemble members"):
        sd.fit(snaps, times, random_state=0, n_iter=2, **TINY)
    with pytest.raises(sd.DistributedSetupError, match="random_state=None"):
        sd.fit(snaps, times, random_state=[None, None], n_iter=2, **TINY)
    with pytest.raises(sd.DistributedSetupError, match="mode must be one of"):
        sd.fit(snaps, times, random_state=[0, 1], mode="model", n_iter=2, **TINY)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(sd.DistributedSetupError, match="exists and is neither an empty folder nor a saved scwlm model"):
        sd.fit(snaps, times, random_state=[0, 1], out=tmp_path / "full", n_iter=2, **TINY)
    assert not (tmp_path / "m").exists() and (tmp_path / "full" / "x").read_text() == "keep me"


def test_more_ranks_than_gpus_is_an_error(clean_env, monkeypatch):
    snaps, times = _data()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    _launch(clean_env, RANK=0, WORLD_SIZE=2, LOCAL_RANK=0, LOCAL_WORLD_SIZE=2, MASTER_ADDR="127.0.0.1",
            MASTER_PORT=_free_port())
    with pytest.raises(sd.DistributedSetupError, match="LOCAL_WORLD_SIZE=2 ranks on this node but only 1 GPU"):
        sd.fit(snaps, times, random_state=[0, 1], device="cuda", n_iter=2, **TINY)
    with pytest.raises(sd.DistributedSetupError, match="pass device='cuda'"):
        sd.fit(snaps, times, random_state=[0, 1], device="cuda:1", n_iter=2, **TINY)


def test_rendezvous_times_out_with_a_clear_message(clean_env):
    _launch(clean_env, RANK=0, WORLD_SIZE=2, MASTER_ADDR="127.0.0.1", MASTER_PORT=_free_port())
    with pytest.raises(sd.DistributedSetupError, match="could not join the 2-rank job .* within 1 s"):
        sd.init_process_group("cpu", init_timeout=1, timeout=5)
    # members that may draw other numbers of particles than in one process are flagged first
    snaps, times = _data()
    with pytest.warns(UserWarning, match="can differ from the single-process ensemble"):
        with pytest.raises(sd.DistributedSetupError, match="could not join"):
            sd.fit([snaps[0], snaps[1][:30], snaps[2]], times, random_state=[0, 1], init_timeout=1, n_iter=2, **TINY)


def test_not_launched_is_the_single_process_fit(clean_env, tmp_path):
    snaps, times = _data()
    assert not sd.launched()
    one = sd.fit(snaps, times, random_state=3, n_iter=2, out=tmp_path / "one", **TINY)
    ref = scwlm.fit(snaps, times, random_state=3, n_iter=2, **TINY)
    assert isinstance(one, scwlm.Mechanics) and _max_diff(one.to_state(), ref.to_state()) == 0.0
    assert _max_diff(scwlm.load(tmp_path / "one").to_state(), ref.to_state()) == 0.0
    # a saved model at out is replaced (only once the new one is written)
    sd.fit(snaps, times, random_state=[3, 4], n_iter=2, out=tmp_path / "one", **TINY)
    assert len(scwlm.load(tmp_path / "one")) == 2 and [p.name for p in tmp_path.iterdir()] == ["one"]
    # WORLD_SIZE=1 (torchrun --nproc-per-node 1) is one process too
    _launch(clean_env, RANK=0, WORLD_SIZE=1)
    ens = sd.fit(snaps, times, random_state=[3, 4], n_iter=2, mode="data", **TINY)
    assert len(ens) == 2 and _max_diff(ens[0].to_state(), ref.to_state()) == 0.0


def test_split_members():
    assert sd.split_members(6, 3) == [range(0, 2), range(2, 4), range(4, 6)]
    with pytest.raises(sd.DistributedSetupError, match=r"e\.g\. 6\) or launch 1 or 5"):
        sd.split_members(5, 3)
