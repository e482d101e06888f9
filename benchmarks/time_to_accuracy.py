"""Time to accuracy: held-out W1 against wall-clock training seconds, ours next to the authors' code.

Three arms per system, trained one after another in one process on the same machine:

``defaults``
    ``scwlm`` with its library defaults (the budget profile of :mod:`benchmarks.experiments`:
    defaults plus what describes the data), at ``scwlm.fit``'s default iteration count.
``paper``
    ``scwlm`` with the paper's settings (:meth:`scwlm.WLMConfig.paper` plus the experiment's
    appendix-C settings, the paper profile), cut off by the time budget.
``authors``
    the authors' code (github.com/guanton/WLM, a local copy given by ``--authors-src``, never part
    of this repository) with the paper's settings of the experiment: their model, integrator, loss
    and training loop (``train_rollout_anchor_p0_randk``, random horizon, anchored at t0), their EMA
    update (no warm-up) and their friction parametrisation.

Every arm is evaluated at training-clock marks (about 1.4x apart, and at the end): the clock
stops, the EMA weights are rolled out with the interpolation protocol (each held-out time from the
previous observed time with its measured velocities, ``substeps`` leapfrog steps per unit of time,
the authors' model with their own ``leapfrog_auto``) and scored with the exact W1, then the clock
resumes. Evaluation time is not counted.

Usage
-----
.. code-block:: bash

    python -m benchmarks.time_to_accuracy --authors-src /path/to/WLM --seconds 240 \\
        --json benchmarks/results/time_to_accuracy.json --plot docs/_static/time_to_accuracy.png

Systems: the small vortex interpolation (t2, t4, t6, t8 held out; needs nothing) and the EB
leave-one-out of day 2 (one of the three holdouts, to keep the run short; needs the EB data in
``SCWLM_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from typing import Any, Sequence

import numpy as np

#: system -> experiment of benchmarks.experiments, the held-out indices (None: the data set's own)
SYSTEMS: dict[str, dict[str, Any]] = {
    "oceans_interp": dict(experiment="oceans_interp", holdout=None, substeps=5),
    "eb_loo": dict(experiment="eb_loo", holdout=[2], substeps=5),
}
ARMS = ("defaults", "paper", "authors")


class _Stop(Exception):
    """Raised from the training callback when the time budget is spent."""


class _Clock:
    """Training seconds, with evaluations excluded; says when the next evaluation mark is passed."""

    def __init__(self, seconds: float, first: float = 2.0, ratio: float = 1.4) -> None:
        self.seconds, self.elapsed, self._since = float(seconds), 0.0, time.perf_counter()
        self._marks = list(np.minimum(first * ratio ** np.arange(64), seconds)) + [seconds]

    def tick(self) -> tuple[bool, bool]:
        """``(evaluate now, budget spent)`` after an iteration."""
        now = time.perf_counter()
        self.elapsed += now - self._since
        self._since = now
        due = False
        while self._marks and self.elapsed >= self._marks[0]:
            self._marks.pop(0)
            due = True
        return due, self.elapsed >= self.seconds

    def after_iteration(self, evaluate, last: bool) -> None:
        """Call ``evaluate()`` (off the clock) at a mark, at the end of the budget or after the last
        iteration; raise :class:`_Stop` once the budget is spent."""
        due, spent = self.tick()
        if due or spent or last:
            evaluate()
            self._since = time.perf_counter()
        if spent:
            raise _Stop


def load(system: str) -> dict[str, Any]:
    """Snapshots, times, velocities, held-out and training indices of a system."""
    from scwlm import datasets as D

    sysdef = SYSTEMS[system]
    ds = D.ocean_vortex("small") if sysdef["experiment"] == "oceans_interp" else D.embryoid_body(n_pcs=5)
    s, t, v = ds
    holdout = list(sysdef["holdout"] or ds.meta["holdout"])
    train = [i for i in range(len(s)) if i not in holdout]
    return dict(s=list(s), t=np.asarray(t, dtype=float), v=list(v), holdout=holdout, train=train, substeps=sysdef["substeps"])


def run_ours(system: str, arm: str, seconds: float, seed: int, iterations: int | None = None,
             overrides: dict | None = None, data: dict | None = None) -> dict[str, Any]:
    """Train ``scwlm`` (``arm`` = "defaults" or "paper") for ``seconds`` and evaluate along the way.

    ``iterations`` replaces the arm's iteration count (then the run ends there, or at ``seconds``);
    ``overrides`` are WLMConfig settings applied on top of the arm's; ``data`` is :func:`load`'s
    result (loaded here when not given).
    """
    from benchmarks.experiments import _fit_kwargs, settings
    from scwlm.api import _snapshots
    from scwlm.core.config import WLMConfig
    from scwlm.core.trainer import Task, train
    from scwlm.mechanics import Mechanics

    d = data or load(system)
    st = settings(SYSTEMS[system]["experiment"], "budget" if arm == "defaults" else "paper")
    kw = {**_fit_kwargs(st, None, "cpu"), **(overrides or {})}
    n_iter = int(iterations or kw.pop("n_iter"))
    kw.pop("n_iter", None)
    for k in ("device", "progress", "eval_substeps"):
        kw.pop(k, None)
    cfg = WLMConfig.from_kwargs(**kw, progress=False, eval_substeps=d["substeps"])
    snaps, source = _snapshots([d["s"][i] for i in d["train"]], d["t"][d["train"]], d["v"][0])
    clock, curve = _Clock(seconds), []

    def callback(it: int, current) -> None:
        def evaluate() -> None:
            mech = Mechanics.from_train_result(current(), 0, cfg, extra_info={
                "train_times": snaps.times.tolist(), "friction_mode": "learnable", "velocities": source})
            ev = mech.evaluate(d["s"], d["t"], d["v"], protocol="interpolate", holdout=d["holdout"])
            curve.append(dict(seconds=clock.elapsed, iteration=it + 1, w1=[float(w) for w in ev["w1"]],
                              w1_mean=float(np.mean(ev["w1"])), friction=float(mech.friction)))

        clock.after_iteration(evaluate, last=it + 1 == n_iter)

    try:
        train([Task(snaps, seed=seed)], cfg, n_iter=n_iter, device="cpu", callback=callback)
    except _Stop:
        pass
    return dict(system=system, arm=arm, seed=seed, n_iter=n_iter, settings=kw, curve=curve)


def run_authors(system: str, seconds: float, seed: int, src: str, iterations: int | None = None,
                overrides: dict | None = None, data: dict | None = None) -> dict[str, Any]:
    """Train the authors' code with the paper's settings for ``seconds`` and evaluate along the way
    (``iterations``, ``overrides`` and ``data`` as for :func:`run_ours`; the overrides must be settings
    their loop has: lr, friction_lr, friction_init, weight_decay, ema, blur, p, particles_per_batch, dt)."""
    import contextlib
    import io

    import torch

    from benchmarks.speed import use_authors_code

    use_authors_code(src)
    from mechanics import BundleVelocityProvider, leapfrog_auto  # type: ignore
    from potential_energy_models import BatchedSimpleAttentionFlow, make_accel_from_potential  # type: ignore
    from rollout import LearnableFriction, train_rollout_anchor_p0_randk  # type: ignore

    from benchmarks.experiments import settings
    from scwlm.core.divergence import blur_heuristic
    from scwlm.core.metrics import wasserstein1
    from scwlm.core.protocols import previous_observed

    d = data or load(system)
    st = settings(SYSTEMS[system]["experiment"], "paper")
    c = {**st["config"], **(overrides or {})}
    n_iter = int(iterations or st["n_iter"])
    torch.manual_seed(seed)
    np.random.seed(seed)
    dim = d["s"][0].shape[1]
    model = BatchedSimpleAttentionFlow(
        D=dim, hidden_dim=c["hidden"], num_flow_layers=c["blocks"], num_heads=c["heads"], dropout=c["dropout"],
        use_time=bool(c.get("time_features")), d_time=c.get("time_features") or 16, ffn_dim=c["ffn"],
    )
    tr = d["train"]
    n_max = max(d["s"][i].shape[0] for i in tr)
    X = torch.full((1, n_max, len(tr), dim), float("nan"))
    for j, i in enumerate(tr):
        X[0, : d["s"][i].shape[0], j] = torch.as_tensor(d["s"][i], dtype=torch.float32)
    V = torch.full_like(X, float("nan"))
    V[0, : d["s"][tr[0]].shape[0], 0] = torch.as_tensor(d["v"][tr[0]], dtype=torch.float32)
    tg = torch.tensor(d["t"][tr], dtype=torch.float32)
    dt = float(c.get("dt") or np.min(np.diff(d["t"][tr])))
    fr = LearnableFriction(float(c["friction_init"]))
    opt = torch.optim.AdamW([
        {"params": model.parameters(), "lr": c["lr"], "weight_decay": c["weight_decay"]},
        {"params": [fr.theta], "lr": c["friction_lr"], "weight_decay": 0.0},
    ])
    pts = [torch.as_tensor(d["s"][i]) for i in tr]
    blur = float(c.get("blur") or blur_heuristic(pts, generator=torch.Generator().manual_seed(0)))
    accel = make_accel_from_potential(model, create_graph=True)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    decay = float(c["ema"])
    ppb = c.get("particles_per_batch")
    clock, curve = _Clock(seconds), []
    state = {"it": 0}

    def evaluate() -> None:
        net = copy.deepcopy(model)
        net.load_state_dict(ema)
        net.eval()
        acc = make_accel_from_potential(net, create_graph=False)
        gamma = fr.value()
        w1 = []
        for h in d["holdout"]:
            p = previous_observed(h, d["holdout"])
            gap = float(d["t"][h] - d["t"][p])
            steps = max(1, int(round(gap / dt * d["substeps"])))
            x0 = torch.as_tensor(d["s"][p], dtype=torch.float32)[None]
            v0 = torch.as_tensor(d["v"][p], dtype=torch.float32)[None]
            x, _ = leapfrog_auto(x0, v0, acc, gap / steps, steps, friction=gamma, t_start=float(d["t"][p]))
            w1.append(float(wasserstein1(x[0].detach().numpy(), d["s"][h])))
        curve.append(dict(seconds=clock.elapsed, iteration=state["it"], w1=w1, w1_mean=float(np.mean(w1)), friction=gamma))

    def after_step(*_: Any) -> None:
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(decay).add_(v, alpha=1.0 - decay)
        state["it"] += 1
        clock.after_iteration(evaluate, last=state["it"] == n_iter)

    model.train()
    try:
        for _ in range(n_iter):
            with contextlib.redirect_stdout(io.StringIO()):  # their loop prints a line per call
                train_rollout_anchor_p0_randk(
                    X, tg, accel, opt, dt, num_epochs=1, max_train_steps=len(tr) - 1, substeps_per_dt=1,
                    kernel_blur=blur, particles_per_batch=ppb, vel_provider=BundleVelocityProvider(V, tg),
                    friction=fr, geom_p=int(c["p"]), geom_scaling=float(c["scaling"]), epoch_callback=after_step,
                )
    except _Stop:
        pass
    return dict(system=system, arm="authors", seed=seed, n_iter=n_iter, settings=dict(c, blur=blur, dt=dt), curve=curve)


def baselines(system: str, data: dict | None = None) -> dict[str, float]:
    """McCann's interpolation and the previous observed time, mean over the held-out times."""
    from scwlm.core.baselines import interpolation_baselines

    d = data or load(system)
    out = [interpolation_baselines(d["s"], d["t"], h, d["holdout"]) for h in d["holdout"]]
    return {"mccann": float(np.mean([b["w1_mccann"] for b in out])), "previous": float(np.mean([b["w1_previous"] for b in out]))}


def plot(results: list[dict], base: dict[str, dict], path: str) -> None:
    """One panel per system: mean held-out W1 against training seconds, baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(r["system"] for r in results))
    fig, axes = plt.subplots(1, len(systems), figsize=(5.2 * len(systems), 3.8), squeeze=False)
    style = {"defaults": ("C0", "scwlm, defaults"), "paper": ("C1", "scwlm, paper preset"), "authors": ("C3", "authors' code, paper settings")}
    for ax, sys_ in zip(axes[0], systems):
        labelled = set()
        for r in results:
            if r["system"] != sys_ or not r["curve"]:
                continue
            col, label = style[r["arm"]]
            label = None if r["arm"] in labelled else label
            labelled.add(r["arm"])
            ax.plot([p["seconds"] for p in r["curve"]], [p["w1_mean"] for p in r["curve"]], "o-", ms=3, color=col, label=label)
        for name, ls in (("mccann", "--"), ("previous", ":")):
            ax.axhline(base[sys_][name], color="0.4", ls=ls, lw=1, label="McCann" if name == "mccann" else "previous time")
        ax.set_xscale("log")
        ax.set_xlabel("training wall-clock (s), 2 CPU cores")
        ax.set_ylabel("held-out W1 (mean)")
        ax.set_title({"oceans_interp": "small vortex, interpolation t2-t8", "eb_loo": "EB, day 2 held out"}.get(sys_, sys_))
        ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(results: list[dict], base: dict[str, dict]) -> str:
    """Markdown: per system and arm, the W1 at the last mark, the best W1 and when the arm first
    beat McCann."""
    rows = ["| system | arm | seed | iterations | training s | final W1 | best W1 | first below McCann (s) | McCann |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        cur = r["curve"]
        if not cur:
            continue
        mc = base[r["system"]]["mccann"]
        below = next((p["seconds"] for p in cur if p["w1_mean"] < mc), None)
        rows.append(f"| {r['system']} | {r['arm']} | {r['seed']} | {cur[-1]['iteration']} | {cur[-1]['seconds']:.0f} | {cur[-1]['w1_mean']:.3f} | "
                    f"{min(p['w1_mean'] for p in cur):.3f} | {'–' if below is None else f'{below:.0f}'} | {mc:.3f} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--seconds", type=float, default=240.0, help="training seconds per arm (evaluation excluded)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--iterations", type=int, default=None,
                   help="train every arm for this many iterations (equal-iteration comparison; --seconds still caps)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting applied to the paper and authors arms (e.g. lr=1e-3); repeatable")
    p.add_argument("--authors-src", default=None, help="local copy of github.com/guanton/WLM (needed for the authors arm)")
    p.add_argument("--json", default=None, help="write the curves here")
    p.add_argument("--plot", default=None, help="write the figure here (PNG)")
    a = p.parse_args(argv)
    arms = [x for x in a.arms if x != "authors" or a.authors_src]
    if "authors" in a.arms and not a.authors_src:
        print("[time_to_accuracy] no --authors-src: the authors arm is skipped", file=sys.stderr)
    import torch

    from benchmarks.atlas import parse_settings

    try:
        overrides = parse_settings(a.set)
    except ValueError as exc:
        p.error(str(exc))
    results, base = [], {}
    for system in a.systems:
        data = load(system)
        base[system] = baselines(system, data)
        for seed in a.seeds:
            for arm in arms:
                t0 = time.perf_counter()
                if arm == "authors":
                    r = run_authors(system, a.seconds, seed, a.authors_src, a.iterations, overrides, data)
                else:
                    r = run_ours(system, arm, a.seconds, seed, a.iterations, overrides if arm == "paper" else None, data)
                r["wall_s"] = time.perf_counter() - t0
                last = r["curve"][-1] if r["curve"] else {}
                print(f"[time_to_accuracy] {system} {arm} seed {seed}: {last.get('iteration')} iterations in "
                      f"{last.get('seconds', 0):.0f} s, W1 {last.get('w1_mean', float('nan')):.3f} "
                      f"{[round(w, 3) for w in last.get('w1', [])]} (McCann {base[system]['mccann']:.3f})", flush=True)
                results.append(r)
    from benchmarks.reproduce import machine_info

    out = {"results": results, "baselines": base, "seconds": a.seconds, "seeds": a.seeds, "iterations": a.iterations,
           "overrides": overrides, "threads": torch.get_num_threads(), "machine": machine_info(),
           "command": "python -m benchmarks.time_to_accuracy " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(table(results, base))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)
    if a.plot:
        plot(results, base, a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
