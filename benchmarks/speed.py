"""Training throughput and memory of one WLM iteration, ours next to the authors' code.

Five workloads with the shapes and settings of the authors' cost table in ``docs/performance.md``
(fixed horizon k, float32, the paper's architecture of each workload; one iteration = rollout + Sinkhorn
losses + backward + AdamW (+ EMA)). Synthetic data of those sizes: the cost of an iteration does not
depend on the values.

Usage
-----
.. code-block:: bash

    python -m benchmarks.speed                               # all workloads, ours, CPU (or CUDA if present)
    python -m benchmarks.speed --authors-src /path/to/WLM    # also the authors' code, same workloads, same run
    python -m benchmarks.speed --ensemble 15                 # E = 15 models in one run vs one model (EB workload)
    python -m benchmarks.speed --append docs/performance.md  # append the table with machine, date, commit
    python -m benchmarks.speed --workloads eb_like boids_k10 --variants fp32 bf16 analytic compile geomloss nockpt warm
                                                             # the levers side by side, one row each

Every measurement runs in its own subprocess so that the peak memory (CUDA max allocated, or the
CPU peak resident set size) belongs to that measurement alone. Times are per iteration: median /
min / max over ``--iters`` iterations after ``--warmup`` warm-up iterations.

Variants (``--variants``; join several with ``+``, e.g. ``analytic+bf16``) are the speed levers of
our engine, see :data:`VARIANTS`. Levers that are not (yet) settings of ``WLMConfig`` (bf16
products, ``torch.compile`` of the force, warm-started Sinkhorn) are applied inside the worker
process by handing the trainer subclasses of ``SetPotential`` / ``SinkhornDivergence`` that pass
the option on (:func:`_install_levers`); every run also counts the Sinkhorn
ε-steps of each loss call (``eps_steps`` in the JSON, a column of the table), and records the
measured graph of one force evaluation (``kept_mb_per_step``, when ``checkpoint_steps="auto"``
measures it) and the checkpointed force evaluations per iteration (``checkpointed_per_iter``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: workload -> shapes and settings (the authors' cost table, docs/performance.md); times = training time grid, k = len(times) - 1
WORKLOADS: dict[str, dict[str, Any]] = {
    "oceans_small_interp": dict(
        N=111, d=2, times=[0, 2, 4, 6, 8], dt=1.0, friction="learnable", friction_lr=1e-3,
        config=dict(heads=1, hidden=256, ffn=64, time_features=16, weight_decay=1e-2, ema=0.9999, p=2),
        reported=dict(h200=0.285, cpu=0.315, memory="0.16 GB (GPU)"),
    ),
    "eb_like": dict(
        N=1024, d=5, times=[0, 1, 3, 4], dt=1.0, friction="learnable", friction_lr=1e-2,
        config=dict(heads=4, hidden=64, ffn=256, dropout=0.1, p=1, blur=1.25, weight_decay=1e-3, ema=0.999),
        reported=dict(h200=0.190, cpu=2.47, memory="2.0 GB (GPU)"),
    ),
    "gf_sde": dict(
        N=1000, d=2, times=list(range(10)), dt=1.0, friction="learnable", friction_lr=1e-2,
        config=dict(p=2, ema=0.999), reported=dict(h200=0.467, cpu=3.1, memory="2.5 GB (GPU) / 5 GB (CPU)"),
    ),
    "boids_k10": dict(
        N=1000, d=2, times=list(range(11)), dt=1.0, friction=0.0, friction_lr=1e-2,
        config=dict(p=1, ema=0.999), reported=dict(h200=0.382, cpu=3.3, memory="2.7 GB (GPU) / 5.6 GB (CPU)"),
    ),
    "boids_k49": dict(
        N=1000, d=2, times=list(range(50)), dt=1.0, friction=0.0, friction_lr=1e-2,
        config=dict(p=1, ema=0.999), reported=dict(h200=2.16, cpu=16.5, memory="13 GB (GPU) / ~25 GB (CPU, does not fit in 24 GB)"),
    ),
}


#: speed levers: WLMConfig overrides ("config"), options applied in the worker ("levers": force_precision,
#: loss_autocast, compile (torch.compile options), warm_start, fused_attention (False: the analytic
#: force's attention by plain tensor operations, as before the row-blocked kernels)), or a placeholder
#: row ("todo")
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "analytic": dict(config={"force_impl": "analytic"}),
    "autograd": dict(config={"force_impl": "autograd"}),
    "unfused": dict(config={"force_impl": "analytic"}, levers={"fused_attention": False}),
    "bf16": dict(levers={"force_precision": "bf16"}),
    "bf16loss": dict(levers={"loss_autocast": True}),
    "compile": dict(config={"compile_force": True}),  # the library's compiled training force, whatever "auto" says
    "nocompile": dict(config={"compile_force": False}),
    "compile-cg": dict(config={"force_impl": "analytic", "compile_force": False}, levers={"compile": {"mode": "reduce-overhead"}}),
    "geomloss": dict(config={"sinkhorn_backend": "geomloss"}),
    "recompute": dict(config={"keep_attention_weights": False}),  # attention weights recomputed in the backward pass
    "keep": dict(config={"keep_attention_weights": True}),
    "nockpt": dict(config={"checkpoint_steps": False}),
    "ckpt": dict(config={"checkpoint_steps": True}),
    "mem1": dict(config={"memory_budget_gb": 1.0}),
    "warm": dict(levers={"warm_start": True}),
    "cudagraph": dict(todo=(
        "TODO (not built): CUDA-graph capture of a whole training iteration. Needs a static iteration: "
        "the trainer builds host tensors every iteration (integrator steps, Sinkhorn schedules) and draws "
        "horizons/subsets on the host; capture also needs the weights and all tensors on the device, a fixed "
        "Sinkhorn diameter (already the case) and AdamW(capturable=True). The force alone is captured by the "
        "compile-cg variant (torch.compile mode='reduce-overhead')."
    )),
}


def parse_variant(name: str) -> dict[str, Any]:
    """The config overrides and levers of a variant name (``"a+b"`` merges variants ``a`` and ``b``).

    Examples
    --------
    >>> parse_variant("analytic+bf16")
    {'config': {'force_impl': 'analytic'}, 'levers': {'force_precision': 'bf16'}, 'todo': None}
    """
    out: dict[str, Any] = {"config": {}, "levers": {}, "todo": None}
    for part in name.split("+"):
        if part not in VARIANTS:
            raise ValueError(f"unknown variant {part!r}; known: {', '.join(VARIANTS)}")
        v = VARIANTS[part]
        out["config"].update(v.get("config", {}))
        out["levers"].update(v.get("levers", {}))
        out["todo"] = v.get("todo", out["todo"])
    return out


def _install_levers(levers: dict[str, Any]) -> dict[str, Any]:
    """Hand the trainer (in this worker process only) a potential and a divergence with the levers on.

    Returns the statistics the divergence and the compiled force fill in: ``steps`` (the
    ε-steps of every loss call) and ``compiled`` (the compiled forces), and ``restore``, which
    puts the trainer's own classes back.
    """
    import scwlm.core.trainer as trainer
    from scwlm.core.compile import compiled_forces
    from scwlm.core.divergence import SinkhornDivergence
    from scwlm.core.potential import SetPotential

    import scwlm.core.potential as potential
    import torch.utils.checkpoint as ckpt

    saved = (trainer.SinkhornDivergence, trainer.SetPotential, trainer.saved_tensor_bytes, ckpt.checkpoint,
             potential.FUSED_ATTENTION, trainer.RolloutLoss.keeps_weights)

    def restore() -> None:
        (trainer.SinkhornDivergence, trainer.SetPotential, trainer.saved_tensor_bytes, ckpt.checkpoint,
         potential.FUSED_ATTENTION, trainer.RolloutLoss.keeps_weights) = saved

    potential.FUSED_ATTENTION = levers.get("fused_attention", potential.FUSED_ATTENTION)

    stats: dict[str, Any] = {"steps": [], "compiled": [], "kept_bytes": [], "checkpointed": 0, "keeps": [],
                             "restore": restore}

    def counted_keeps(self, *args, **kwargs):  # whether a force evaluation keeps its attention weights
        keep = saved[5](self, *args, **kwargs)
        stats["keeps"].append(bool(keep))
        return keep

    def counted_bytes(*args, **kwargs):  # the measured graph of a force evaluation (checkpoint_steps="auto")
        out, n = saved[2](*args, **kwargs)
        stats["kept_bytes"].append(n)
        return out, n

    def counted_checkpoint(*args, **kwargs):
        stats["checkpointed"] += 1
        return saved[3](*args, **kwargs)

    trainer.saved_tensor_bytes, ckpt.checkpoint = counted_bytes, counted_checkpoint
    trainer.RolloutLoss.keeps_weights = counted_keeps

    class BenchDivergence(SinkhornDivergence):
        def __init__(self, *args, **kwargs):
            if levers.get("loss_autocast"):
                kwargs["autocast"] = True
            if levers.get("warm_start"):
                kwargs["warm_start"] = levers["warm_start"]
            super().__init__(*args, **kwargs)

        def __call__(self, *args, **kwargs):
            out = super().__call__(*args, **kwargs)
            stats["steps"].append(self.last_n_steps)
            return out

    trainer.SinkhornDivergence = BenchDivergence
    lever_precision, compile_opts = levers.get("force_precision"), levers.get("compile")
    if lever_precision is None and compile_opts is None:
        return stats

    class BenchPotential(SetPotential):
        def forces(self, x, t=None, *, masks=None, create_graph=False, impl="autograd", precision="float32",
                   keep_weights=False):
            prec = lever_precision or precision
            if compile_opts is not None:
                fn = self.__dict__.get("_bench_compiled")
                if fn is None or fn.impl != impl:
                    fn = compiled_forces(self, impl, precision=prec, **compile_opts)
                    self.__dict__["_bench_compiled"] = fn
                    stats["compiled"].append(fn)
                return fn(x, t, masks=masks, create_graph=create_graph)
            return super().forces(x, t, masks=masks, create_graph=create_graph, impl=impl, precision=prec,
                                  keep_weights=keep_weights)

    trainer.SetPotential = BenchPotential
    return stats


def ratio_table(runs: dict[str, dict]) -> str:
    """Same-run ratios of several runs: one row per run and workload (``runs``: name -> saved JSON).

    Each variant of ours is given as ``s/iter (speed-up over the authors' code of that run, peak GB)``;
    the speed-up is only computed within a run.

    Examples
    --------
    >>> run = {"machine": {"date": "d"}, "results": [
    ...     {"workload": "w", "impl": "authors", "median_s": 2.0, "peak_gb": 3.0},
    ...     {"workload": "w", "impl": "ours", "variant": "fp32", "median_s": 1.0, "peak_gb": 1.5}]}
    >>> print(ratio_table({"a.json": run}).splitlines()[-1])
    | a.json (d) | w | 2.000 s, 3.00 GB | fp32: 1.000 s (2.00x, 1.50 GB) |
    """
    lines = ["| run | workload | authors | ours (s/iter, speed-up over the authors in the same run, peak memory) |",
             "|---|---|---|---|"]
    for name, run in runs.items():
        by_workload: dict[tuple, list[dict]] = {}
        for r in run["results"]:
            if not r.get("error") and r.get("median_s"):
                by_workload.setdefault((r["workload"], r.get("round")), []).append(r)
        for (w, rnd), rs in by_workload.items():
            w = w if rnd is None else f"{w}, round {rnd}"
            auth = next((r for r in rs if r["impl"] == "authors"), None)
            cells = []
            for r in sorted((r for r in rs if r["impl"] == "ours"), key=lambda r: str(r.get("variant"))):
                ratio = f"{auth['median_s'] / r['median_s']:.2f}x, " if auth else ""
                cells.append(f"{r.get('variant') or 'ours'}: {r['median_s']:.3f} s ({ratio}{r['peak_gb']:.2f} GB)")
            a_cell = f"{auth['median_s']:.3f} s, {auth['peak_gb']:.2f} GB" if auth else "not run"
            lines.append(f"| {name} ({run['machine'].get('date', '?')}) | {w} | {a_cell} | {'; '.join(cells)} |")
    return "\n".join(lines)


def rounds_table(results: list[dict]) -> str:
    """Speed-ups over the authors' code per round of a ``--rounds`` run, and their median.

    Every speed-up divides the authors' s/iter by ours of the same round (the two measured one after
    the other); rounds are never mixed.

    Examples
    --------
    >>> rows = [{"workload": "w", "impl": "authors", "round": 1, "median_s": 2.0},
    ...         {"workload": "w", "impl": "ours", "variant": "fp32", "round": 1, "median_s": 1.0},
    ...         {"workload": "w", "impl": "ours", "variant": "fp32", "round": 2, "median_s": 1.0},
    ...         {"workload": "w", "impl": "authors", "round": 2, "median_s": 3.0}]
    >>> print(rounds_table(rows).splitlines()[-1])
    | w | fp32 | 2.50x | 2.00x, 3.00x | 1.000 / 1.000 | 2.000 / 3.000 |
    """
    ok = [r for r in results if r.get("round") and r.get("median_s") and "failed" not in r and r.get("ensemble", 1) == 1]
    authors = {(r["workload"], r["round"]): r["median_s"] for r in ok if r["impl"] == "authors"}
    series: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for r in sorted((r for r in ok if r["impl"] == "ours"), key=lambda r: r["round"]):
        a = authors.get((r["workload"], r["round"]))
        if a is not None:
            series.setdefault((r["workload"], str(r.get("variant") or "ours")), []).append((a / r["median_s"], r["median_s"], a))
    lines = ["| workload | variant | median speed-up | speed-up per round | ours s/iter per round | authors s/iter per round |",
             "|---|---|---|---|---|---|"]
    for (w, v), xs in series.items():
        lines.append(f"| {w} | {v} | {float(np.median([x[0] for x in xs])):.2f}x | " + ", ".join(f"{x[0]:.2f}x" for x in xs)
                     + " | " + " / ".join(f"{x[1]:.3f}" for x in xs) + " | " + " / ".join(f"{x[2]:.3f}" for x in xs) + " |")
    return "\n".join(lines) + "\n"


def synthetic(w: dict, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Drifting, spreading Gaussian clouds of the workload's size (values do not affect the cost)."""
    rng = np.random.default_rng(seed)
    snaps = [rng.normal(size=(w["N"], w["d"])) * (1.0 + 0.05 * i) + 0.1 * i for i in range(len(w["times"]))]
    return snaps, np.asarray(w["times"], dtype=float), rng.normal(size=(w["N"], w["d"])) * 0.1


def _peak_memory(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def run_ours(name: str, iters: int, warmup: int, device: str, extra: dict, ensemble: int = 1,
             variant: str | None = None, ops: int = 0) -> dict:
    """Time our trainer on a workload (``ensemble`` models in one vectorised run, with a variant's levers).

    ``extra`` are WLMConfig overrides (``--options``), applied after the variant's own; ``ops > 0``
    records the operators with the most self time (``res["ops"]``; the times are then under the profiler).
    """
    from scwlm.core.config import PAPER_SETTINGS, WLMConfig
    from scwlm.core.snapshots import as_snapshots
    from scwlm.core.trainer import Task, compiles_training_force, train
    from scwlm.mechanics import _resolve_device

    w = WORKLOADS[name]
    spec = parse_variant(variant or "fp32")
    if spec["todo"]:
        raise ValueError(f"variant {variant!r} is a placeholder, not a measurement: {spec['todo']}")
    dev = _resolve_device(device)
    snaps, times, v0 = synthetic(w)
    s = as_snapshots(snaps, times, v0)
    # the paper's settings (every particle of every snapshot, constant lr, ...), whatever the library defaults
    cfg = WLMConfig.from_kwargs(**{**PAPER_SETTINGS, **w["config"], "friction_lr": w["friction_lr"], "dt": w["dt"], "fixed_horizon": True,
                                   "progress": False, **spec["config"], **extra})
    friction = None if w["friction"] == "learnable" else float(w["friction"])
    tasks = [Task(s, seed=i, friction=friction) for i in range(ensemble)]
    if cfg.compile_force == "auto":
        # decided as for a fit of the length the library's rule asks for, not for the few iterations timed
        # here: the row shows what a real fit of these settings computes
        from scwlm.core.config import AUTO_COMPILE_MIN_ITER

        cfg = cfg.replace(compile_force=compiles_training_force(cfg, tasks, AUTO_COMPILE_MIN_ITER, dev))
    stamps = _Stamps(warmup, ops)
    stats = _install_levers(spec["levers"])

    def tick(it: int, *_: Any) -> None:
        _sync(dev)
        stamps.append(time.perf_counter())

    try:
        fit: dict[str, Any] = {}
        per = _time_iterations(dev, lambda: fit.setdefault("result", train(tasks, cfg, n_iter=warmup + iters, device=dev,
                                                                           callback=tick)), stamps, warmup)
    finally:
        stats["restore"]()
    res = _summary(per, dev, name, "ours", extra, ensemble)
    res["ops"] = stamps.operators()
    steps = [st for st in stats["steps"] if st is not None]
    timed = steps[warmup:] or steps  # one loss call per iteration
    res["eps_steps"] = float(np.mean(timed)) if timed else None
    res["eps_steps_first"] = steps[0] if steps else None
    res["loss_calls"] = len(stats["steps"])
    # step checkpointing: the measured graph of one force evaluation, and checkpointed evaluations per iteration
    res["kept_mb_per_step"] = stats["kept_bytes"][0] / 2**20 if stats["kept_bytes"] else None
    res["checkpointed_per_iter"] = stats["checkpointed"] / max(1, len(stats["steps"]))
    # the attention weights kept for the backward pass (keep_attention_weights): the share of force
    # evaluations that kept them, and their measured bytes per evaluation ("auto" measures both graphs)
    res["weights_kept"] = float(np.mean(stats["keeps"])) if stats["keeps"] else None
    if len(stats["kept_bytes"]) >= 2:
        res["kept_weights_mb_per_step"] = (stats["kept_bytes"][1] - stats["kept_bytes"][0]) / 2**20
    if variant is not None:
        res["variant"] = variant
        res["levers"] = spec["levers"]
        res["config_overrides"] = spec["config"]
    if "compile_seconds" in fit["result"].info:  # the library's compiled training force (compile_force)
        res["compile_s"] = [fit["result"].info["compile_seconds"]]
        res["compiled"] = fit["result"].info["compile"].startswith("torch.compile of the analytic force: first call")
        res["compile_note"] = fit["result"].info["compile"]
    if stats["compiled"]:
        res["compile_s"] = [c.compile_seconds for c in stats["compiled"]]
        res["compiled"] = all(c.compiled for c in stats["compiled"])
        res["compile_note"] = "; ".join(c.note for c in stats["compiled"])
    return res


class _Stamps(list):
    """Per-iteration time stamps; with ``ops > 0`` also the operator profile (torch.profiler) of the
    iterations after the warm-up, started when the warm-up's last stamp is appended."""

    def __init__(self, warmup: int, ops: int = 0) -> None:
        super().__init__()
        self.warmup, self.ops, self._prof = warmup, int(ops), None

    def append(self, t: float) -> None:
        super().append(t)
        if self.ops and self._prof is None and len(self) == max(1, self.warmup):
            from torch.profiler import ProfilerActivity, profile

            import torch

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
            self._prof = profile(activities=acts)
            self._prof.__enter__()

    def operators(self) -> list[dict] | None:
        """The ``ops`` operators with the most self time, per profiled iteration (``None`` without ``ops``)."""
        if self._prof is None:
            return None
        self._prof.__exit__(None, None, None)
        n = max(1, len(self) - max(1, self.warmup))
        rows = sorted(self._prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in rows) or 1.0
        return [{"op": e.key, "self_s_per_iter": e.self_cpu_time_total / 1e6 / n, "share": e.self_cpu_time_total / total,
                 "calls_per_iter": e.count / n} for e in rows[: self.ops]]


def ops_table(results: list[dict]) -> str:
    """Markdown: the operator profiles of the results measured with ``--ops``, side by side per workload."""
    out = []
    for r in results:
        if not r.get("ops"):
            continue
        out.append(f"\n**{r['workload']}, {r['impl']} {r.get('variant') or ''}** (self CPU time per iteration, under the profiler)\n")
        out.append("| operator | s/iter | share | calls/iter |\n|---|---|---|---|")
        out += [f"| `{o['op']}` | {o['self_s_per_iter']:.3f} | {100 * o['share']:.1f} % | {o['calls_per_iter']:.0f} |" for o in r["ops"]]
    return "\n".join(out)


def _time_iterations(dev, run: Any, stamps: list[float], warmup: int) -> np.ndarray:
    """Run ``run()`` — which appends ``time.perf_counter()`` to ``stamps`` after each (synchronised)
    iteration — from a fresh peak-memory count, and return the per-iteration times after ``warmup``."""
    import torch

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _sync(dev)
    t0 = time.perf_counter()
    run()
    return np.diff([t0] + stamps)[warmup:]


def _summary(per: np.ndarray, dev, name: str, impl: str, extra: dict, ensemble: int) -> dict:
    import torch

    return {
        "workload": name, "impl": impl, "ensemble": ensemble, "options": extra,
        "median_s": float(np.median(per)), "min_s": float(per.min()), "max_s": float(per.max()), "iters": int(per.size),
        "peak_gb": _peak_memory(dev), "device": str(dev),
        "device_name": torch.cuda.get_device_name(0) if dev.type == "cuda" else _cpu_name(),
        "threads": torch.get_num_threads(),
    }


def use_authors_code(src: str) -> None:
    """Make the authors' modules importable from ``src`` (their unused ``dice`` module stubbed if it
    does not import)."""
    sys.path.insert(0, os.path.abspath(src))
    if "dice" not in sys.modules:
        try:
            import dice  # noqa: F401
        except Exception:
            stub = types.ModuleType("dice")
            stub.get_s_derivatives = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("dice stub"))
            sys.modules["dice"] = stub


def run_authors(name: str, iters: int, warmup: int, device: str, src: str, ops: int = 0) -> dict:
    """Time the authors' training loop (``train_rollout_anchor_p0_randk`` with ``fixed_k``) on a workload.

    ``src`` is a checkout of github.com/guanton/WLM (nothing of it is part of this repository). Their
    model, integrator (``leapfrog_auto``), loss (``compute_loss``, one GeomLoss call per marginal)
    and loop are used unchanged; only EMA (kept in their ``train.py``, which needs wandb) is redone
    here as the same state-dict update, and their unused ``dice`` module is stubbed.
    """
    import torch

    use_authors_code(src)
    from mechanics import BundleVelocityProvider  # type: ignore
    from potential_energy_models import BatchedSimpleAttentionFlow, make_accel_from_potential  # type: ignore
    from rollout import LearnableFriction, train_rollout_anchor_p0_randk  # type: ignore

    from scwlm.core.divergence import blur_heuristic
    from scwlm.mechanics import _resolve_device

    w = WORKLOADS[name]
    dev = _resolve_device(device)
    snaps, times, v0 = synthetic(w)
    c = w["config"]
    torch.manual_seed(0)
    model = BatchedSimpleAttentionFlow(
        D=w["d"], hidden_dim=c.get("hidden", 64), num_flow_layers=c.get("blocks", 4), num_heads=c.get("heads", 4),
        dropout=c.get("dropout", 0.0), use_time=bool(c.get("time_features", 0)), d_time=c.get("time_features", 16) or 16,
        ffn_dim=c.get("ffn", 512),
    ).to(dev)
    X = torch.tensor(np.stack(snaps, 1)[None], dtype=torch.float32, device=dev)  # (1, N, T, d)
    V = torch.zeros_like(X)
    V[0, :, 0] = torch.tensor(v0, dtype=torch.float32)
    tg = torch.tensor(times, dtype=torch.float32, device=dev)
    groups: list[dict] = [{"params": model.parameters(), "lr": 1e-4, "weight_decay": c.get("weight_decay", 1e-4)}]
    if w["friction"] == "learnable":
        fr = LearnableFriction(1.0).to(dev)
        groups.append({"params": [fr.theta], "lr": w["friction_lr"], "weight_decay": 0.0})
        friction = fr
    else:
        friction = float(w["friction"])
    opt = torch.optim.AdamW(groups)
    blur = c.get("blur") or blur_heuristic([torch.tensor(s) for s in snaps], generator=torch.Generator().manual_seed(0))
    accel = make_accel_from_potential(model, create_graph=True)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    decay = c.get("ema", 0.999)
    stamps = _Stamps(warmup, ops)

    def ema_update(*_):
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(decay).add_(v, alpha=1.0 - decay)
        _sync(dev)
        stamps.append(time.perf_counter())

    import contextlib
    import io

    def run() -> None:
        for _ in range(warmup + iters):
            with contextlib.redirect_stdout(io.StringIO()):  # the loop prints a line per call
                train_rollout_anchor_p0_randk(
                    X, tg, accel, opt, w["dt"], num_epochs=1, max_train_steps=len(times) - 1, substeps_per_dt=1,
                    kernel_blur=float(blur), particles_per_batch=None, vel_provider=BundleVelocityProvider(V, tg),
                    friction=friction, geom_p=c.get("p", 2), geom_scaling=0.9, epoch_callback=ema_update, fixed_k=True,
                )

    per = _time_iterations(dev, run, stamps, warmup)
    res = _summary(per, dev, name, "authors", {}, 1)
    res["ops"] = stamps.operators()
    return res


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    extra = json.loads(args.options or "{}")
    if args.impl == "ours":
        res = run_ours(args.worker, args.iters, args.warmup, args.device, extra, ensemble=args.ensemble,
                       variant=args.variant, ops=args.ops)
    else:
        res = run_authors(args.worker, args.iters, args.warmup, args.device, args.authors_src, ops=args.ops)
    print("RESULT " + json.dumps(res), flush=True)


def _subprocess(name: str, impl: str, a: argparse.Namespace, options: dict | None = None, ensemble: int = 1,
                iters: int | None = None, variant: str | None = None) -> dict:
    """Run one measurement in a worker process; a failure (or timeout) is returned as a ``failed`` row."""
    cmd = [sys.executable, "-m", "benchmarks.speed", "--worker", name, "--impl", impl, "--iters", str(iters or a.iters),
           "--warmup", str(a.warmup), "--device", a.device, "--ensemble", str(ensemble), "--options", json.dumps(options or {})]
    if variant is not None:
        cmd += ["--variant", variant]
    if a.authors_src:
        cmd += ["--authors-src", a.authors_src]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    if a.ops:
        cmd += ["--ops", str(a.ops)]
    env = dict(os.environ)
    if a.thp:
        env.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    t0 = time.perf_counter()
    failed = {"workload": name, "impl": impl, "ensemble": ensemble, "options": options or {}}
    if variant is not None:
        failed["variant"] = variant
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent,
                              timeout=a.timeout)
    except subprocess.TimeoutExpired:
        print(f"[speed] {impl} {name} {variant or ''} timed out after {a.timeout:g} s", file=sys.stderr)
        return {**failed, "failed": f"timed out after {a.timeout:g} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["wall_s"] = time.perf_counter() - t0
            return res
    print(f"[speed] {impl} {name} {variant or ''} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
    last = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return {**failed, "failed": f"exit {proc.returncode}: {last[-1][:200] if last else 'no output'}"}


def table(results: list[dict], machine: dict) -> str:
    """The Markdown table of a run (the variant table when any row has a variant or an ε-step count)."""
    if any("variant" in r or "eps_steps" in r or "failed" in r or r.get("impl") == "todo" for r in results):
        return _variant_table(results, machine)
    lines = [
        f"Measured {machine['date']} on {machine['cpu']} ({machine['cores']} cores, {machine['threads']} torch threads)"
        f"{', GPU ' + machine['cuda'] if machine['cuda'] else ''}; torch {machine['torch']}; commit {machine['commit']}.",
        f"Command: `{machine['command']}`", "",
        "| workload | impl | device | iters | median s/iter | min | max | peak memory (GB) | authors' code, same run | speed-up vs same run | authors' code, reported (H200 / 2-core CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    authors = {r["workload"]: r for r in results if r["impl"] == "authors"}
    for r in results:
        if r["impl"] == "authors":
            continue
        rep = WORKLOADS[r["workload"]]["reported"]
        a = authors.get(r["workload"])
        label = r["impl"] + (f" (E={r['ensemble']})" if r["ensemble"] > 1 else "") + (f" {r['options']}" if r["options"] else "")
        same = f"{a['median_s']:.3f} s/iter ({a['iters']} its), {a['peak_gb']:.2f} GB" if a else "not run"
        speed = f"{a['median_s'] / r['median_s']:.2f}x" if a else "–"
        lines.append(
            f"| {r['workload']} | {label} | {r['device']} | {r['iters']} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | {r['peak_gb']:.2f} | "
            f"{same} | {speed} | {rep['h200']} / {rep['cpu']} s/iter; {rep['memory']} |"
        )
    return "\n".join(lines) + "\n"


def _variant_table(results: list[dict], machine: dict) -> str:
    """One row per measurement: authors' rows, every variant of ours, failures and TODO placeholders."""
    machine = {k: "?" for k in ("date", "cpu", "cores", "threads", "torch", "commit", "command")} | dict(machine)
    lines = [
        f"Measured {machine['date']} on {machine['cpu']} ({machine['cores']} cores, {machine['threads']} torch threads)"
        f"{', GPU ' + machine['cuda'] if machine.get('cuda') else ''}; torch {machine['torch']}; commit {machine['commit']}.",
        f"Command: `{machine['command']}`", "",
        "Only ratios within one run are comparable. ε-steps: Sinkhorn ε-scaling iterations per loss call "
        "(timed iterations; the first call in parentheses when it differs). Kept graph: the bytes autograd keeps for one force "
        "evaluation, measured (`checkpoint_steps=\"auto\"`), and the evaluations per iteration recomputed in the backward "
        "pass (step checkpointing); \"weights kept\": the attention kernels kept their soft-max weights for the backward "
        "pass (`keep_attention_weights`), measured bytes added per evaluation.", "",
        "| workload | impl | variant | device | iters | median s/iter | min | max | peak memory (GB) | kept graph MB / step; checkpointed / iter | ε-steps / loss call | "
        "vs ours fp32, same run | authors' code, same run | speed-up vs authors, same run | authors' code, reported (H200 / 2-core CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ok = [r for r in results if "failed" not in r and r.get("impl") != "todo"]
    authors = {(r["workload"], r.get("device"), r.get("round")): r for r in ok if r["impl"] == "authors"}
    def key(r: dict) -> tuple:
        return (r["workload"], r.get("ensemble", 1), r.get("device"), json.dumps(r.get("options") or {}, sort_keys=True),
                r.get("round"))

    base = {key(r): r for r in ok if r["impl"] == "ours" and r.get("variant", "fp32") == "fp32"}
    for r in results:
        wl = r.get("workload", "(all)")
        ens = r.get("ensemble", 1)
        label = r.get("impl", "ours") + (f" (E={ens})" if ens > 1 else "") + (f" {r['options']}" if r.get("options") else "") + (
            f", round {r['round']}" if r.get("round") else "")
        variant = r.get("variant", "–" if r.get("impl") == "authors" else "fp32")
        if r.get("impl") == "todo":
            lines.append(f"| {wl} | ours | {variant} | – | – | – | – | – | – | – | – | – | – | – | {r['todo']} |")
            continue
        if "failed" in r:
            lines.append(f"| {wl} | {label} | {variant} | – | – | – | – | – | – | – | – | – | – | – | FAILED: {r['failed']} |")
            continue
        rep = WORKLOADS[wl]["reported"]
        reported = f"{rep['h200']} / {rep['cpu']} s/iter; {rep['memory']}"
        steps = r.get("eps_steps")
        first = r.get("eps_steps_first")
        steps_txt = "–" if steps is None else f"{steps:.1f}" + (f" ({first})" if first is not None and first != steps else "")
        if r.get("compile_s"):
            steps_txt += "; compile " + ", ".join("–" if c is None else f"{c:.1f} s" for c in r["compile_s"]) + (
                "" if r.get("compiled", True) else " (fell back to eager)")
        kept = r.get("kept_mb_per_step")
        kept_txt = "–" if "checkpointed_per_iter" not in r else (
            ("–" if kept is None else f"{kept:.0f}") + f"; {r['checkpointed_per_iter']:.1f}")
        if r.get("weights_kept"):  # attention weights kept by (the share of) the force evaluations
            w_mb = r.get("kept_weights_mb_per_step")
            kept_txt += "; weights kept" + ("" if w_mb is None else f" (+{w_mb:.{0 if w_mb >= 10 else 1}f} MB / step)") + (
                "" if r["weights_kept"] == 1 else f" in {100 * r['weights_kept']:.0f} %")
        if r["impl"] == "authors":
            vs_base = same = speed = "–"
        else:
            b = base.get(key(r))
            vs_base = f"{b['median_s'] / r['median_s']:.2f}x" if b and b is not r else "–"
            a = authors.get((wl, r.get("device"), r.get("round")))
            same = f"{a['median_s']:.3f} s/iter ({a['iters']} its), {a['peak_gb']:.2f} GB" if a else "not run"
            speed = f"{a['median_s'] / r['median_s']:.2f}x" if a else "–"
        lines.append(
            f"| {wl} | {label} | {variant} | {r['device']} | {r['iters']} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
            f"{r['max_s']:.3f} | {r['peak_gb']:.2f} | {kept_txt} | {steps_txt} | {vs_base} | {same} | {speed} | {reported} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n")[0])
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--authors-src", default=None, help="checkout of github.com/guanton/WLM to time their code too")
    p.add_argument("--options", default=None, help="JSON dict of WLMConfig overrides for our runs, e.g. '{\"force_impl\": \"analytic\"}'")
    p.add_argument("--authors-iters", type=int, default=None, help="iterations for the authors' code (default: --iters)")
    p.add_argument("--authors-workloads", nargs="+", default=None, choices=list(WORKLOADS),
                   help="workloads to time the authors' code on (default: all; on CPU all but boids_k49, which "
                        "needs about 25 GB there according to docs/performance.md)")
    p.add_argument("--variants", nargs="+", default=None, metavar="VARIANT",
                   help="speed levers of ours, one row each (join with '+'): " + ", ".join(VARIANTS)
                        + " (default: the plain configuration, without a variant column)")
    p.add_argument("--ensemble", type=int, default=0, help="also time E models in one run (and one model) on --ensemble-workload")
    p.add_argument("--ensemble-iters", type=int, default=None, help="iterations for the ensemble runs (default: --iters)")
    p.add_argument("--ensemble-workload", default="eb_like", choices=list(WORKLOADS))
    p.add_argument("--ensemble-variants", nargs="+", default=None, metavar="VARIANT",
                   help="variants of the ensemble runs (default: --variants)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every workload R times, the authors' code and ours alternating in order (authors first "
                        "in odd rounds, ours first in even ones), and add a table of the speed-ups of each round and "
                        "their median: on a shared machine one process can run 1.2x slower than the next")
    p.add_argument("--ops", type=int, default=0, metavar="N",
                   help="also profile the timed iterations (torch.profiler) and print the N operators with the most "
                        "self time per measurement (the times of such a run are under the profiler)")
    p.add_argument("--thp", action=argparse.BooleanOptionalAction, default=False,
                   help="set THP_MEM_ALLOC_ENABLE=1 for the workers (large CPU tensors on transparent huge pages). Off by "
                        "default: on the 2-core machine of docs/performance.md it made both implementations 1.2-2.3x "
                        "slower (direct compaction on page faults)")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--append", default=None, help="append the table to this Markdown file")
    p.add_argument("--json", default=None, help="also write the raw results as JSON (rewritten after every measurement)")
    p.add_argument("--render", nargs="+", default=None, metavar="JSON",
                   help="only render the table of earlier runs saved with --json (several files are merged)")
    p.add_argument("--ratios", nargs="+", default=None, metavar="JSON",
                   help="only summarise earlier runs saved with --json, one row per run and workload: the "
                        "authors' and every variant's s/iter and peak memory, and each variant's speed-up over "
                        "the authors' code of the same run (runs are never mixed)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--impl", default="ours", help=argparse.SUPPRESS)
    p.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.rounds < 1:
        p.error(f"--rounds must be at least 1, got {a.rounds}")
    for v in (a.variants or []) + (a.ensemble_variants or []):
        try:
            parse_variant(v)
        except ValueError as exc:
            p.error(str(exc))
    if a.worker:
        _worker(a)
        return 0
    if a.ratios:
        print(ratio_table({f: json.loads(Path(f).read_text()) for f in a.ratios}))
        return 0
    if a.render:
        runs = [json.loads(Path(f).read_text()) for f in a.render]
        # the first run that measured something describes the machine (placeholder files may not)
        machine = dict(next((r["machine"] for r in runs if "date" in r["machine"]), runs[0]["machine"]))
        machine["command"] = "; ".join(r["machine"]["command"] for r in runs)
        text = table([res for r in runs for res in r["results"]], machine)
        print(text)
        if a.append:
            with open(a.append, "a") as fh:
                fh.write("\n" + text)
        return 0
    from .reproduce import machine_info

    import torch

    machine = machine_info()
    machine["threads"] = a.threads or torch.get_num_threads()
    machine["command"] = "python -m benchmarks.speed " + " ".join(sys.argv[1:] if argv is None else argv)
    options = json.loads(a.options or "{}")
    results: list[dict] = []

    def record(res: dict) -> None:
        results.append(res)
        if a.json:
            Path(a.json).write_text(json.dumps({"machine": machine, "results": results}, indent=2))
        tag = f"{res['workload']:20s} {res['impl']:8s} {res.get('variant', ''):12s}" + (
            f" E={res['ensemble']}" if res.get("ensemble", 1) > 1 else "")
        if "failed" in res:
            print(f"[speed] {tag} FAILED: {res['failed']}", flush=True)
        elif res.get("impl") != "todo":
            steps = res.get("eps_steps")
            print(f"[speed] {tag} median {res['median_s']:.3f} s/iter (min {res['min_s']:.3f}, max {res['max_s']:.3f}), "
                  f"peak {res['peak_gb']:.2f} GB" + ("" if steps is None else f", {steps:.1f} eps-steps/loss call"), flush=True)

    variants = a.variants or [None]
    todo = [v for v in variants if v is not None and parse_variant(v)["todo"]]
    runnable = [v for v in variants if v not in todo]
    authors_on = a.authors_workloads
    if authors_on is None:
        cuda = a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available())
        authors_on = list(WORKLOADS) if cuda else [w for w in WORKLOADS if w != "boids_k49"]
    for rnd in range(1, a.rounds + 1):
        for name in a.workloads:
            jobs = [dict(impl="authors", options=None, iters=a.authors_iters)] if a.authors_src and name in authors_on else []
            jobs += [dict(impl="ours", options=options, variant=v) for v in runnable]
            for job in (jobs if rnd % 2 else jobs[::-1]):  # alternate the order: drift hits both sides alike
                res = _subprocess(name, a=a, **job)
                record(res if a.rounds == 1 else {**res, "round": rnd})
    if a.ensemble:
        ens_variants = a.ensemble_variants or runnable
        for v in ens_variants:
            if v is not None and parse_variant(v)["todo"]:
                continue
            for E in (1, a.ensemble):
                done = any(r.get("workload") == a.ensemble_workload and r.get("impl") == "ours" and r.get("ensemble") == E
                           and r.get("variant") == v and "failed" not in r for r in results)
                if E == 1 and done and a.ensemble_iters in (None, a.iters):
                    continue  # already measured above, same iterations
                record(_subprocess(a.ensemble_workload, "ours", a, options, ensemble=E, iters=a.ensemble_iters, variant=v))
    for v in todo:
        record({"workload": "(all)", "impl": "todo", "variant": v, "todo": parse_variant(v)["todo"]})
    text = table(results, machine)
    if a.rounds > 1:
        text += "\n" + rounds_table(results)
    if a.ops:
        text += "\n" + ops_table(results)
    print(text)
    if a.append:
        with open(a.append, "a") as fh:
            fh.write("\n" + text)
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
