"""Atlas scale: baselines on bounded subsamples for large snapshots, and benchmarks/atlas.py at a tiny size.

Nothing here is timed: the benchmark runs at a tiny size only, to check that it works end to end.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scwlm.core import baselines
from scwlm.core.baselines import interpolation_baselines, mccann_interpolation
from scwlm.core.metrics import wasserstein1, wasserstein1_scalable
from scwlm.core.protocols import interpolate
from scwlm.core.snapshots import as_snapshots

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import atlas  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


def _snaps(n=(30, 25, 35), d=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(k, d)) + t for t, k in enumerate(n)], [0.0, 1.0, 2.5]


# ------------------------------------------------------------------------------------ baselines
def test_small_snapshots_give_the_exact_baselines_bit_for_bit():
    snaps, times = _snaps()
    b = interpolation_baselines(snaps, times, 1, [1])
    frac = (times[1] - times[0]) / (times[2] - times[0])
    pts, w = mccann_interpolation(snaps[0], snaps[2], frac)
    assert b["w1_mccann"] == float(wasserstein1(pts, snaps[1], x_weights=w))  # the formula before subsampling
    assert b["w1_previous"] == float(wasserstein1(snaps[0], snaps[1]))
    assert (b["w1_mccann_method"], b["w1_previous_method"], b["w1_mccann_se"], b["w1_previous_se"]) == \
        ("exact", "exact", 0.0, 0.0)
    assert b["w1_settings"] == {"max_points": 5000, "subsample": 5000, "n_draws": 5, "seed": 0}
    assert (b["start"], b["end"], b["fraction"]) == (0, 2, frac)


def test_large_snapshots_are_subsampled_bounded_and_seeded(monkeypatch):
    snaps, times = _snaps(n=(60, 70, 50))
    sizes = []
    mccann, w1 = baselines.mccann_interpolation, baselines.wasserstein1

    def spy_mccann(x, y, s):
        sizes.append(("mccann", len(x), len(y)))
        return mccann(x, y, s)

    def spy_w1(x, y, **kw):
        sizes.append(("w1", len(x), len(y)))
        return w1(x, y, **kw)

    monkeypatch.setattr(baselines, "mccann_interpolation", spy_mccann)
    monkeypatch.setattr(baselines, "wasserstein1", spy_w1)
    kw = dict(w1_max_points=40, w1_subsample=40, w1_draws=4, w1_seed=3, progress=False)
    b = interpolation_baselines(snaps, times, 1, [1], **kw)
    assert b["w1_mccann_method"] == "subsampled" and b["w1_previous_method"] == "subsampled"
    assert b["w1_mccann_se"] > 0 and b["w1_previous_se"] > 0
    assert b["w1_settings"] == {"max_points": 40, "subsample": 40, "n_draws": 4, "seed": 3}
    assert [s for s in sizes if s[0] == "mccann"] == [("mccann", 40, 40)] * 4  # both clouds subsampled
    # McCann's support on 40 + 40 points has at most 79 points; the held-out side is a subsample of 40
    assert all(n <= 79 and m == 40 for kind, n, m in sizes if kind == "w1")
    assert interpolation_baselines(snaps, times, 1, [1], **kw) == b  # seeded
    assert interpolation_baselines(snaps, times, 1, [1], **{**kw, "w1_seed": 4})["w1_mccann"] != b["w1_mccann"]
    # the previous-snapshot baseline is the protocol's estimator with the protocol's seed (w1_seed, h):
    # a model that does not move scores exactly as the previous snapshot, on the same held-out draws
    ref = wasserstein1_scalable(snaps[0], snaps[1], max_points=40, subsample=40, n_draws=4, seed=(3, 1))
    assert (b["w1_previous"], b["w1_previous_se"]) == (ref.value, ref.se)

    def stay(x0, v0, t0, tt):
        return np.stack([x0.numpy()] * len(tt))

    ev = interpolate(stay, as_snapshots(snaps, times), [1], w1_max_points=40, w1_subsample=40, w1_draws=4, w1_seed=3,
                     progress=False)
    assert ev["w1"] == [b["w1_previous"]]


def test_only_the_large_side_is_subsampled():
    snaps, times = _snaps(n=(20, 30, 80))  # only the end snapshot is larger than max_points
    b = interpolation_baselines(snaps, times, 1, [1], w1_max_points=40, w1_draws=3, progress=False)
    assert b["w1_previous_method"] == "exact" and b["w1_previous"] == float(wasserstein1(snaps[0], snaps[1]))
    assert b["w1_mccann_method"] == "subsampled" and b["w1_settings"]["subsample"] == 40


@pytest.mark.parametrize("bad, match", [
    (dict(w1_max_points=0), "w1_max_points must be a positive integer"),
    (dict(w1_draws=1.5), "w1_draws must be a positive integer"),
    (dict(w1_subsample=1), "w1_subsample must be an integer >= 2"),
    (dict(w1_seed=-1), "w1_seed must be a non-negative integer"),
])
def test_bad_baseline_settings_name_the_argument(bad, match):
    snaps, times = _snaps()
    with pytest.raises(ValueError, match=match):
        interpolation_baselines(snaps, times, 1, [1], **bad)


# ------------------------------------------------------------------------------------- benchmark
TINY = ["--cells-per-time", "200", "--reference-cells-per-time", "100", "--n-iter", "2", "--threads", "1",
        "--set", "hidden=8", "heads=1", "blocks=1", "ffn=8"]


def test_atlas_benchmark_runs_at_a_tiny_size(tmp_path, capsys):
    out = tmp_path / "atlas.json"
    assert atlas.main(TINY + ["--in-process", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"] == "python -m benchmarks.atlas " + " ".join(TINY + ["--in-process", "--json", str(out)])
    assert report["settings"] == {"hidden": 8, "heads": 1, "blocks": 1, "ffn": 8} and report["in_process"]
    big, ref = report["runs"]
    assert (big["n_cells"], ref["n_cells"], big["n_dims"], big["n_pcs"]) == (1000, 500, 30, 30)
    for r in (big, ref):
        assert r["iters_timed"] == 1 and r["time_per_iter_s"] > 0 and r["evaluation_s"] > 0 and r["rollout_s"] > 0
        assert r["peak_rss_gb"] > 0 and {"train", "evaluation", "rollout"} <= set(r["peak_rss_by_phase_gb"])
        assert r["w1_method"] == ["exact"] and r["w1_mccann_method"] == ["exact"] and np.isfinite(r["w1"]).all()
        assert r["rollout_chunk_size"] == 5000
    assert big["rollout_cells"] == 200 and "time_per_iter_ratio" in report and "peak_rss_ok" in report
    assert "[atlas] 1,000 cells (5 x 200)" in capsys.readouterr().out


def test_atlas_data_and_worker_plumbing(monkeypatch):
    a = atlas.synthetic_atlas(cells_per_time=50, n_times=3, n_pcs=6, seed=1)
    assert a.X is None and a.obs["day"].tolist() == [0] * 50 + [1] * 50 + [2] * 50
    assert a.obsm["X_pca"].shape == (150, 6) and a.obsm["X_pca"].dtype == np.float32
    assert np.isfinite(a.obsm["velocity_pca"]).all()
    assert atlas.parse_settings(["hidden=8", "blur=1.25", "dt=None", "ema_warmup=false", "integrator=paper"]) == \
        {"hidden": 8, "blur": 1.25, "dt": None, "ema_warmup": False, "integrator": "paper"}
    with pytest.raises(ValueError, match="--set expects KEY=VALUE"):
        atlas.parse_settings(["hidden"])
    # each size runs in its own worker process, which prints one RESULT line
    calls, real_run = [], subprocess.run

    def fake_run(cmd, **kw):
        if "benchmarks.atlas" not in cmd:  # git, for the machine record
            return real_run(cmd, **kw)
        calls.append(cmd)
        cells = int(cmd[cmd.index("--cells-per-time") + 1])
        res = {"cells_per_time": cells, "n_cells": 5 * cells, "n_times": 5, "time_per_iter_s": cells / 1000,
               "iters_timed": 29, "train_s": 1.0, "evaluation_s": 1.0, "w1_method": ["exact"], "rollout_cells": cells,
               "rollout_s": 1.0, "peak_rss_gb": 1.0}
        return subprocess.CompletedProcess(cmd, 0, stdout="noise\nRESULT " + json.dumps(res) + "\n", stderr="")

    monkeypatch.setattr(atlas.subprocess, "run", fake_run)
    assert atlas.main(["--n-iter", "30", "--set", "p=1"]) == 0
    assert [c[c.index("--cells-per-time") + 1] for c in calls] == ["40000", "1000"]
    assert all(c[1:4] == ["-m", "benchmarks.atlas", "--worker"] and c[-2:] == ["--set", "p=1"] for c in calls)
    assert "--n-dims" in calls[0] and calls[0][calls[0].index("--n-dims") + 1] == "30"
    monkeypatch.setattr(atlas.subprocess, "run", lambda cmd, **kw: real_run(cmd, **kw) if "benchmarks.atlas" not in cmd
                        else subprocess.CompletedProcess(cmd, 1, stdout="", stderr="MemoryError"))
    assert atlas.main(["--reference-cells-per-time", "0"]) == 1
    with pytest.raises(SystemExit):
        atlas.main(["--cells-per-time", "0"])
