"""Atlas scale: a 200k-cell AnnData through ``tl.fit_mechanics`` + ``tl.rollout`` with default settings.

The case of issue 12 ("Atlas-size defaults"): a synthetic time course of 5 time points x 40,000
cells with a 30-column basis (``obsm["X_pca"]``), velocities (``obsm["velocity_pca"]``) and
``obs["day"]``, fitted with ``scwlm.tl.fit_mechanics(adata, "day", holdout=2, n_iter=30,
n_dims=30)`` and otherwise default settings, then ``scwlm.tl.rollout`` of every cell of the first
time point. The same is run on a reference of 5 x 1,000 cells (5k cells). Each size runs in its
own subprocess, so that its peak resident set size is its own.

Measured per size: time per training iteration (median over the iterations after the first,
from a callback after every optimizer step, as :mod:`benchmarks.speed` does), the training,
evaluation (held-out :math:`W_1` of the model and the McCann / previous-snapshot baselines) and
rollout wall times, and the peak RSS: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` for the
whole process and, per phase, the largest RSS seen by a background sampler (every 20 ms).
Targets (issue 12): peak RSS <= 4 GB on CPU and time per iteration within 1.5x of the 5k-cell
run.

The data: a mixture of 6 Gaussians in the first two basis coordinates that rotates and drifts
with time (velocities: the time derivative of that motion plus noise), and isotropic noise of
decreasing scale in the remaining coordinates. Its values do not affect the cost.

Usage
-----
.. code-block:: bash

    python -m benchmarks.atlas                                   # 200k cells and the 5k reference, CPU
    python -m benchmarks.atlas --json benchmarks/results/atlas.json
    python -m benchmarks.atlas --cells-per-time 1000 --reference-cells-per-time 0   # one size only
    python -m benchmarks.atlas --device cuda                     # on a GPU (peak GPU memory reported too)
    python -m benchmarks.atlas --set particles_per_batch=512     # any WLMConfig setting (default: none)

The JSON holds the command line, the machine, the settings and one record per size, and the
ratios of the targets. Nothing is timed by the test suite at these sizes (tests/test_atlas.py
runs the script at a tiny size only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from scwlm.cli import parse_settings

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------- the data
def synthetic_atlas(cells_per_time: int = 40_000, n_times: int = 5, n_pcs: int = 30, seed: int = 0):
    """A synthetic time course as an AnnData without ``X``: ``obs["day"]`` (0..n_times-1),
    ``obsm["X_pca"]`` ``(n, n_pcs)`` and ``obsm["velocity_pca"]`` (float32, as scanpy stores them).

    Examples
    --------
    >>> a = synthetic_atlas(cells_per_time=10, n_times=3, n_pcs=4)
    >>> a.n_obs, a.obsm["X_pca"].shape, a.obsm["velocity_pca"].shape, sorted(set(a.obs["day"]))
    (30, (30, 4), (30, 4), [0, 1, 2])
    """
    import anndata as ad
    import pandas as pd

    if n_pcs < 2:
        raise ValueError(f"n_pcs must be >= 2, got {n_pcs}")
    rng = np.random.default_rng(seed)
    n = int(cells_per_time) * int(n_times)
    day = np.repeat(np.arange(n_times), cells_per_time)
    k = 6
    comp = rng.integers(k, size=n)
    base_angle = 2 * np.pi * np.arange(k) / k
    radius = 3.0 + 0.5 * np.arange(k) / k
    omega, drift = 0.35, np.array([0.8, 0.3])  # rotation per day, drift per day
    angle = base_angle[comp] + omega * day
    X = np.empty((n, n_pcs), dtype=np.float32)
    V = np.empty((n, n_pcs), dtype=np.float32)
    X[:, 0] = radius[comp] * np.cos(angle) + drift[0] * day + 0.4 * rng.standard_normal(n)
    X[:, 1] = radius[comp] * np.sin(angle) + drift[1] * day + 0.4 * rng.standard_normal(n)
    V[:, 0] = -omega * radius[comp] * np.sin(angle) + drift[0] + 0.1 * rng.standard_normal(n)
    V[:, 1] = omega * radius[comp] * np.cos(angle) + drift[1] + 0.1 * rng.standard_normal(n)
    scales = np.linspace(1.0, 0.2, n_pcs - 2, dtype=np.float32)
    X[:, 2:] = rng.standard_normal((n, n_pcs - 2), dtype=np.float32) * scales
    V[:, 2:] = 0.05 * rng.standard_normal((n, n_pcs - 2), dtype=np.float32)
    obs = pd.DataFrame({"day": day}, index=pd.Index([f"c{i}" for i in range(n)], dtype=str))
    return ad.AnnData(obs=obs, obsm={"X_pca": X, "velocity_pca": V})


# ---------------------------------------------------------------------------------- measuring
def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the peak so far
        return _maxrss_bytes()


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)  # bytes on macOS, KiB on Linux


class RssSampler:
    """Largest RSS seen per phase by a background thread (``interval`` seconds between samples)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        rss = _rss_bytes()
        if rss > self.peaks.get(self.phase, 0):
            self.peaks[self.phase] = rss

    def enter(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        self.sample()

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def run_one(cells_per_time: int, *, n_times: int = 5, n_pcs: int = 30, n_dims: int = 30, n_iter: int = 30,
            holdout: int = 2, device: str = "cpu", settings: dict | None = None, seed: int = 0,
            threads: int = 0) -> dict:
    """Build the atlas, fit it with ``tl.fit_mechanics`` and roll out all cells of the first time point.

    Returns the measurements of this process (see the module docstring).
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    import scwlm
    import scwlm.api as api
    import scwlm.tl._fit as tl_fit
    from scwlm.mechanics import Mechanics

    settings = dict(settings or {})
    settings.setdefault("progress", False)
    stamps: list[float] = []
    spans: dict[str, float] = {"train_s": 0.0, "evaluation_s": 0.0}
    dev_type = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                            ("cpu" if device == "auto" else device)).type

    def sync() -> None:
        if dev_type == "cuda":
            torch.cuda.synchronize()

    def tick(it: int, *_: Any) -> None:
        sync()
        stamps.append(time.perf_counter())

    train, evaluate, baselines = api.train, Mechanics.evaluate, tl_fit.interpolation_baselines

    def timed_train(*args, **kwargs):  # the engine's own callback hook, for per-iteration times
        sampler.enter("train")
        t0 = time.perf_counter()
        stamps.append(t0)
        try:
            return train(*args, callback=tick, **kwargs)
        finally:
            spans["train_s"] += time.perf_counter() - t0
            sampler.enter("evaluation")

    def timed(fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spans["evaluation_s"] += time.perf_counter() - t0
        return wrapper

    out: dict[str, Any] = {"cells_per_time": int(cells_per_time), "n_times": int(n_times),
                           "n_cells": int(cells_per_time) * int(n_times), "n_pcs": int(n_pcs), "n_dims": int(n_dims),
                           "n_iter": int(n_iter), "holdout": int(holdout), "device": device, "settings": settings}
    with RssSampler() as sampler:
        sampler.enter("data")
        t0 = time.perf_counter()
        adata = synthetic_atlas(cells_per_time, n_times, n_pcs, seed)
        out["data_s"] = time.perf_counter() - t0
        if dev_type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        api.train, Mechanics.evaluate, tl_fit.interpolation_baselines = timed_train, timed(evaluate), timed(baselines)
        try:
            sampler.enter("prepare")
            t0 = time.perf_counter()
            scwlm.tl.fit_mechanics(adata, "day", holdout=holdout, n_iter=n_iter, n_dims=n_dims, device=device,
                                   **settings)
            out["fit_s"] = time.perf_counter() - t0
        finally:
            api.train, Mechanics.evaluate, tl_fit.interpolation_baselines = train, evaluate, baselines
        sampler.enter("rollout")
        first, last = adata.uns["wlm"]["params"]["time_labels"][[0, -1]].tolist()
        t0 = time.perf_counter()
        pred = scwlm.tl.rollout(adata, "wlm", source=first, targets=[last])
        sync()
        out["rollout_s"] = time.perf_counter() - t0
        sampler.enter("end")
    per = np.diff(stamps)
    steady = per[1:] if per.size > 1 else per  # the first iteration includes one-off set-up
    m = adata.uns["wlm"]["metrics"]
    out.update({
        "time_per_iter_s": float(np.median(steady)) if steady.size else float("nan"),
        "time_per_iter_min_s": float(steady.min()) if steady.size else float("nan"),
        "time_per_iter_max_s": float(steady.max()) if steady.size else float("nan"),
        "first_iter_s": float(per[0]) if per.size else float("nan"),
        "iters_timed": int(steady.size),
        "train_s": spans["train_s"], "evaluation_s": spans["evaluation_s"],
        "rollout_cells": int(pred.n_obs),
        "peak_rss_gb": _maxrss_bytes() / 2**30,
        "peak_rss_by_phase_gb": {k: v / 2**30 for k, v in sampler.peaks.items()},
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30 if dev_type == "cuda" else None,
        "particles_per_batch": adata.uns["wlm"]["params"]["engine_config"].get("particles_per_batch"),
        "w1": np.asarray(m["w1"]).tolist(), "w1_method": [str(x) for x in m["w1_method"]],
        "w1_mccann": np.asarray(m["w1_mccann"]).tolist(), "w1_mccann_method": [str(x) for x in m["w1_mccann_method"]],
        "w1_previous": np.asarray(m["w1_previous"]).tolist(),
        "rollout_chunk_size": m["rollout_chunk_size"] if not isinstance(m["rollout_chunk_size"], np.generic)
        else m["rollout_chunk_size"].item(),
        "threads": torch.get_num_threads(),
    })
    ppb = out["particles_per_batch"]
    out["particles_per_batch"] = ppb.item() if isinstance(ppb, np.generic) else ppb
    return out


# ----------------------------------------------------------------------------------- driver
def _child_args(a: argparse.Namespace, cells: int) -> list[str]:
    args = ["--cells-per-time", str(cells), "--n-times", str(a.n_times), "--n-pcs", str(a.n_pcs), "--n-dims",
            str(a.n_dims), "--n-iter", str(a.n_iter), "--holdout", str(a.holdout), "--device", a.device,
            "--seed", str(a.seed), "--threads", str(a.threads)]
    if a.set:
        args += ["--set", *a.set]
    return args


def _subprocess(a: argparse.Namespace, cells: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.atlas", "--worker", *_child_args(a, cells)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=a.timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["process_wall_s"] = time.perf_counter() - t0
            return res
    return {"cells_per_time": cells, "failed": True, "returncode": proc.returncode, "stderr": proc.stderr[-4000:]}


def _machine() -> dict:
    try:
        sys.path.insert(0, str(ROOT))
        from benchmarks.reproduce import machine_info

        return machine_info()
    except Exception as exc:  # noqa: BLE001 - the measurement matters more than its label
        return {"error": f"{type(exc).__name__}: {exc}"}


def _summary(res: dict) -> str:
    if res.get("failed"):
        return f"[atlas] {res['cells_per_time']} cells per time: FAILED (exit {res['returncode']})\n{res['stderr']}"
    return (f"[atlas] {res['n_cells']:,} cells ({res['n_times']} x {res['cells_per_time']:,}): "
            f"{res['time_per_iter_s']:.3f} s/iter (median of {res['iters_timed']}), train {res['train_s']:.1f} s, "
            f"evaluation {res['evaluation_s']:.1f} s ({', '.join(res['w1_method'])}), rollout of "
            f"{res['rollout_cells']:,} cells {res['rollout_s']:.1f} s, peak RSS {res['peak_rss_gb']:.2f} GB")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.atlas", description=__doc__.split("\n")[0])
    p.add_argument("--cells-per-time", type=int, default=40_000, help="cells per time point (default 40,000: 200k cells)")
    p.add_argument("--reference-cells-per-time", type=int, default=1000,
                   help="cells per time point of the reference run (default 1,000: 5k cells; 0 skips it)")
    p.add_argument("--n-times", type=int, default=5)
    p.add_argument("--n-pcs", type=int, default=30, help="columns of obsm['X_pca']")
    p.add_argument("--n-dims", type=int, default=30, help="n_dims of fit_mechanics")
    p.add_argument("--n-iter", type=int, default=30)
    p.add_argument("--holdout", type=int, default=2, help="held-out time point (a day label)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="WLMConfig settings passed to fit_mechanics (default: none, i.e. the defaults)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--timeout", type=float, default=6 * 3600, help="seconds per size")
    p.add_argument("--in-process", action="store_true",
                   help="run the sizes in this process, one after the other (quick checks; the peak RSS is then "
                        "that of the process so far, not of each size alone)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    for name in ("cells_per_time", "n_times", "n_pcs", "n_dims", "n_iter"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(a, name)}")
    if a.reference_cells_per_time < 0:
        p.error(f"--reference-cells-per-time must be >= 0, got {a.reference_cells_per_time}")
    try:
        settings = parse_settings(a.set)
    except ValueError as exc:
        p.error(str(exc))
    if a.worker:
        res = run_one(a.cells_per_time, n_times=a.n_times, n_pcs=a.n_pcs, n_dims=a.n_dims, n_iter=a.n_iter,
                      holdout=a.holdout, device=a.device, settings=settings, seed=a.seed, threads=a.threads)
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    command = "python -m benchmarks.atlas " + " ".join(sys.argv[1:] if argv is None else argv)
    sizes = [a.cells_per_time] + ([a.reference_cells_per_time] if a.reference_cells_per_time else [])
    report: dict[str, Any] = {"command": command.strip(), "machine": _machine(), "settings": settings, "runs": []}
    if a.in_process:
        report["in_process"] = True
    for cells in sizes:
        if a.in_process:
            res = run_one(cells, n_times=a.n_times, n_pcs=a.n_pcs, n_dims=a.n_dims, n_iter=a.n_iter,
                          holdout=a.holdout, device=a.device, settings=settings, seed=a.seed, threads=a.threads)
        else:
            res = _subprocess(a, cells)
        report["runs"].append(res)
        print(_summary(res), flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=2))
    runs = report["runs"]
    ok = [r for r in runs if not r.get("failed")]
    if ok:
        main_run = runs[0]
        report["targets"] = {"peak_rss_gb_max": 4.0, "time_per_iter_ratio_max": 1.5}
        if not main_run.get("failed"):
            report["peak_rss_gb"] = main_run["peak_rss_gb"]
            report["peak_rss_ok"] = main_run["peak_rss_gb"] <= 4.0
        if len(runs) == 2 and not any(r.get("failed") for r in runs):
            ratio = runs[0]["time_per_iter_s"] / runs[1]["time_per_iter_s"]
            report["time_per_iter_ratio"] = ratio
            report["time_per_iter_ratio_ok"] = ratio <= 1.5
            print(f"[atlas] time per iteration {runs[0]['n_cells']:,} vs {runs[1]['n_cells']:,} cells: {ratio:.2f}x "
                  f"(target <= 1.5x); peak RSS {runs[0]['peak_rss_gb']:.2f} GB (target <= 4 GB)", flush=True)
    print(json.dumps(report, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))
    return 0 if len(ok) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
