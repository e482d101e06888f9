"""The paper's four experiments (five tables) as runnable definitions.

Every experiment function takes ``(profile, seed, device, n_iter)`` and returns a list of result
records (plain dicts): what was trained, with which settings and iteration count, how long it took,
and the W1 numbers of WLM (EMA weights, exact W1, the paper's protocol) next to baselines computed
on the same data in the same run. Paper numbers live in :data:`PAPER` (from the paper's tables;
docs/method.md) and are only ever *printed beside* ours, never used in a computation.

Profiles
    ``paper``: the paper's settings and iteration counts (meant for a GPU).
    ``quick``: the same experiments, reduced so that all five finish in about 45 min on 2 CPU cores;
    every reduction is listed in :data:`QUICK_CHANGES` and recorded in each result.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Callable

import numpy as np

import scwlm
from scwlm import datasets as D
from scwlm.core.config import PAPER_SETTINGS
from scwlm.core.baselines import constant_velocity, interpolation_baselines
from scwlm.core.metrics import mean_se, wasserstein1

__all__ = ["EXPERIMENTS", "PAPER", "QUICK_CHANGES", "BUDGET", "BUDGET_SECONDS", "PROFILES", "settings"]

# ----------------------------------------------------------------------------- paper numbers
#: W1 numbers of the paper (Tables 1-4, 6); "best other" = best method other than WLM in that column
PAPER: dict[str, dict[str, Any]] = {
    "gf_sde": {
        "wlm_learnable": {"paired": (0.062, 0.137), "unpaired": (0.068, 0.246)},
        "wlm_zero_friction": {"paired": (0.119, 0.255), "unpaired": (0.119, 0.346)},
        "best_other": {"paired": ("nn-APPEX", 0.080, 0.131), "unpaired": ("nn-APPEX", 0.102, 0.260)},
        "per_sde_learnable": {  # Table 6: (paired train, paired test, unpaired train, unpaired test)
            "bohachevsky": (0.0388, 0.0488, 0.0660, 0.0907),
            "oakley_ohagan": (0.0415, 0.0509, 0.0430, 0.0734),
            "quadratic": (0.0339, 0.0488, 0.0391, 0.0555),
            "styblinski_tang": (0.1164, 0.3983, 0.1147, 0.7091),
            "wavy_plateau": (0.0770, 0.1383, 0.0750, 0.3002),
        },
    },
    "oceans_interp": {
        "wlm": {"t2": 0.039, "t4": 0.028, "t6": 0.083, "t8": 0.050},
        "best_other": {"t2": ("Curly-FM*", 0.019), "t4": ("Curly-FM*", 0.045), "t6": ("Curly-FM*", 0.027), "t8": ("Curly-FM*", 0.030)},
        "best_other_no_reference": {"t2": ("Snap-MMD*", 0.051), "t4": ("OT-MFM", 0.056), "t6": ("OT-MFM", 0.052), "t8": ("OT-MFM", 0.070)},
    },
    "oceans_forecast": {
        "wlm": {"from_t0": 0.180, "from_t10": 0.065},
        "best_other": {"from_t0": ("Snap-MMD*", 0.896), "from_t10": ("Snap-MMD*", 0.473)},
    },
    "eb_loo": {"wlm": (0.704, 0.021), "best_other": ("OT-MFM", 0.713)},
    "boids": {"wlm": {"train": 0.496, "forecast": 1.309}, "best_other": {"train": ("nn-APPEX", 2.467), "forecast": ("nn-APPEX", 3.078)}},
}

# ----------------------------------------------------------------------------- settings
_PAPER_SETTINGS: dict[str, dict[str, Any]] = {
    # appendix C (docs/method.md, "Paper settings and numbers to beat"); everything not listed is
    # the paper's general setting (scwlm.core.config.PAPER_SETTINGS)
    "gf_sde": dict(n_iter=100_000, config=dict(), eval_substeps=1),
    "oceans_interp": dict(
        n_iter=50_000,
        config=dict(heads=1, hidden=256, ffn=64, time_features=16, weight_decay=1e-2, friction_lr=1e-3, ema=0.9999, dt=1.0),
    ),
    "oceans_forecast": dict(
        n_iter=50_000, config=dict(heads=1, hidden=256, ffn=64, weight_decay=1e-3, friction_lr=1e-3, ema=0.9999),
    ),
    "eb_loo": dict(
        n_iter=10_000,
        config=dict(p=1, blur=1.25, ffn=256, dropout=0.1, weight_decay=1e-3, particles_per_batch=1024, ema=0.999, dt=1.0),
    ),
    "boids": dict(n_iter=30_000, config=dict(p=1, ema=0.999)),
}

#: what the quick profile changes, per experiment (recorded with every quick result)
QUICK_CHANGES: dict[str, dict[str, Any]] = {
    # how each reduction was chosen (the sweeps and their W1): benchmarks/results/sweeps.md
    "gf_sde": dict(n_iter=200, config=dict(lr=1e-3, particles_per_batch=128, hidden=32, ffn=128)),
    "oceans_interp": dict(n_iter=500, config=dict(lr=1e-3)),
    "oceans_forecast": dict(n_iter=250, config=dict(lr=3e-4, grad_clip=1.0, particles_per_batch=128, friction_init=0.1)),
    "eb_loo": dict(n_iter=800, config=dict(lr=2e-3, particles_per_batch=256, blur=0.5, dropout=0.0, friction_init=5.0)),
    "boids": dict(n_iter=600, config=dict(lr=1e-3, particles_per_batch=100, horizon_ramp=300)),
}


#: the budget profile: the library's defaults, plus only what describes an experiment's data or
#: physics (the loss exponent the paper uses for the data, time dependence, the time-grid step);
#: the iteration count is scwlm.fit's default. Each model must train in BUDGET_SECONDS on 2 CPU cores.
BUDGET: dict[str, dict[str, Any]] = {
    "gf_sde": dict(config=dict(), eval_substeps=1),
    "oceans_interp": dict(config=dict(time_features=16, dt=1.0)),
    "oceans_forecast": dict(config=dict()),
    "eb_loo": dict(config=dict(p=1, dt=1.0)),
    "boids": dict(config=dict(p=1)),
}
BUDGET_SECONDS = 600.0

PROFILES = ("paper", "quick", "budget")


def settings(experiment: str, profile: str) -> dict[str, Any]:
    """Iteration count, engine config and evaluation substeps of an experiment under a profile.

    ``paper`` and ``quick`` start from the paper's settings (:meth:`scwlm.WLMConfig.paper`; the
    quick profile keeps the EMA warm-up its records were made with), ``budget`` from the library's
    defaults.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {PROFILES}")
    if profile == "budget":
        b = BUDGET[experiment]
        return {"n_iter": None, "config": dict(b["config"]), "eval_substeps": b.get("eval_substeps", 5)}
    base = _PAPER_SETTINGS[experiment]
    config = {**PAPER_SETTINGS, **({"ema_warmup": True} if profile == "quick" else {}), **base["config"]}
    out = {"n_iter": base["n_iter"], "config": config, "eval_substeps": base.get("eval_substeps", 5)}
    if profile == "quick":
        q = QUICK_CHANGES[experiment]
        out["n_iter"] = q["n_iter"]
        out["config"].update(q["config"])
        out["quick_changes"] = q
    return out


def _fit_kwargs(st: dict, n_iter: int | None, device: str) -> dict[str, Any]:
    n = n_iter or st["n_iter"] or inspect.signature(scwlm.fit).parameters["n_iter"].default
    out: dict[str, Any] = dict(n_iter=int(n), device=device, progress=True, eval_substeps=st["eval_substeps"])
    out.update(st["config"])
    return out


def _record(experiment: str, variant: str, profile: str, seed: int, st: dict, kw: dict, wall: float, mech, metrics: dict, baselines: dict) -> dict:
    return {
        "experiment": experiment,
        "variant": variant,
        "profile": profile,
        "seed": int(seed),
        "n_iter": int(kw["n_iter"]),
        "settings": {k: v for k, v in kw.items() if k not in ("progress",)},
        "quick_changes": st.get("quick_changes"),
        "wall_s": float(wall),
        "friction": float(mech.friction),
        "metrics": metrics,
        "baselines": baselines,
    }


# ----------------------------------------------------------------------------- experiments
def gf_sde(profile: str, seed: int, device: str, n_iter: int | None = None) -> list[dict]:
    """Table 1 / 6: five gradient-flow SDEs, paired and unpaired; WLM with learnable friction
    (v0 = 0) and with zero friction and the analytic probability-flow v0; forecast protocol
    (train on the first 10 snapshots, forecast the other 11)."""
    st = settings("gf_sde", profile)
    kw = _fit_kwargs(st, n_iter, device)
    records = []
    datasets, meta = [], []
    for pot in D.GF_POTENTIALS:
        for paired in (True, False):
            ds = D.gradient_flow_sde(pot, paired=paired, random_state=seed)
            datasets.append(ds)
            meta.append((pot, "paired" if paired else "unpaired"))
    n_train = datasets[0].meta["n_train"]
    # both variants of all ten data sets in one vectorised run
    tasks, frictions, names = [], [], []
    for ds, (pot, setting) in zip(datasets, meta):
        s, t, v = ds
        tasks.append((s[:n_train], t[:n_train], None))
        frictions.append("learnable")
        names.append((pot, setting, "learnable_friction"))
        tasks.append((s[:n_train], t[:n_train], v[0]))
        frictions.append(0.0)
        names.append((pot, setting, "zero_friction_analytic_v0"))
    t0 = time.perf_counter()
    ens = scwlm.fit_many(tasks, random_state=seed, friction=frictions, **kw)
    wall = time.perf_counter() - t0
    for mech, (pot, setting, variant), task in zip(ens, names, tasks):
        ds = datasets[[m for m in meta].index((pot, setting))]
        s, t, v = ds
        vel = [task[2]] + [None] * (len(s) - 1)
        ev = mech.evaluate(s, t, vel, n_train=n_train)
        carry = [wasserstein1(s[n_train - 1], s[i]) for i in range(n_train, len(s))]
        metrics = {"train": ev["train_mean"], "train_se": ev["train_se"], "forecast": ev["test_mean"], "forecast_se": ev["test_se"], "w1": ev["w1"]}
        baselines = {"carry_forward_forecast": mean_se(carry)[0]}
        rec = _record("gf_sde", f"{variant}/{setting}/{pot}", profile, seed, st, kw, wall / len(ens), mech, metrics, baselines)
        rec.update(potential=pot, setting=setting, wlm_variant=variant)
        records.append(rec)
    return records


def oceans_interp(profile: str, seed: int, device: str, n_iter: int | None = None) -> list[dict]:
    """Table 2 (left): small vortex, train on t1,t3,t5,t7,t9, interpolate t2,t4,t6,t8 (each from
    the previous observed time with its measured velocities)."""
    st = settings("oceans_interp", profile)
    kw = _fit_kwargs(st, n_iter, device)
    ds = D.ocean_vortex("small")
    s, t, v = ds
    holdout = ds.meta["holdout"]
    train = [i for i in range(len(s)) if i not in holdout]
    t0 = time.perf_counter()
    mech = scwlm.fit([s[i] for i in train], t[train], v[0], random_state=seed, **kw)
    wall = time.perf_counter() - t0
    ev = mech.evaluate(s, t, v, protocol="interpolate", holdout=holdout)
    metrics, base = {}, {}
    for h, w in zip(holdout, ev["w1"]):
        name = f"t{h + 1}"  # the paper numbers times from 1
        metrics[name] = w
        b = interpolation_baselines(s, t, h, holdout)  # between the observed neighbours h - 1 and h + 1
        base[f"mccann_{name}"] = b["w1_mccann"]
        base[f"previous_{name}"] = b["w1_previous"]
    metrics["mean"] = float(np.mean(ev["w1"]))
    base["mccann_mean"] = float(np.mean([base[f"mccann_t{h + 1}"] for h in holdout]))
    base["previous_mean"] = float(np.mean([base[f"previous_t{h + 1}"] for h in holdout]))
    return [_record("oceans_interp", "wlm", profile, seed, st, kw, wall, mech, metrics, base)]


def oceans_forecast(profile: str, seed: int, device: str, n_iter: int | None = None) -> list[dict]:
    """Table 2 (right): big vortex, train on the first 10 snapshots, forecast the 11th from t0
    (one rollout over the whole course) and from t10 (one interval from the last training snapshot
    with its velocities)."""
    st = settings("oceans_forecast", profile)
    kw = _fit_kwargs(st, n_iter, device)
    ds = D.ocean_vortex("big")
    s, t, v = ds
    n_train = ds.meta["n_train"]
    t0 = time.perf_counter()
    mech = scwlm.fit(s[:n_train], t[:n_train], v[0], random_state=seed, **kw)
    wall = time.perf_counter() - t0
    ev = mech.evaluate(s, t, v, n_train=n_train)
    last = n_train - 1
    from_last = mech.rollout(s[last], v[last], t0=float(t[last]), times=[float(t[-1])])[0]
    metrics = {"from_t0": ev["w1"][-1], "from_t10": wasserstein1(from_last, s[-1]), "train": ev["train_mean"]}
    base = {
        "carry_forward": wasserstein1(s[last], s[-1]),
        "constant_velocity_from_t10": wasserstein1(constant_velocity(s[last], v[last], t[-1] - t[last]), s[-1]),
        "constant_velocity_from_t0": wasserstein1(constant_velocity(s[0], v[0], t[-1] - t[0]), s[-1]),
    }
    return [_record("oceans_forecast", "wlm", profile, seed, st, kw, wall, mech, metrics, base)]


def eb_loo(profile: str, seed: int, device: str, n_iter: int | None = None) -> list[dict]:
    """Table 3: embryoid body, leave-one-out for the interior days 1, 2, 3 (one model each, all
    trained in one vectorised run), each evaluated from the previous day with its RNA velocity."""
    st = settings("eb_loo", profile)
    kw = _fit_kwargs(st, n_iter, device)
    ds = D.embryoid_body(n_pcs=5)
    s, t, v = ds
    holdouts = ds.meta["holdouts"]
    tasks = []
    for h in holdouts:
        keep = [i for i in range(len(s)) if i != h]
        tasks.append(([s[i] for i in keep], t[keep], v[0]))
    t0 = time.perf_counter()
    ens = scwlm.fit_many(tasks, random_state=seed, **kw)
    wall = time.perf_counter() - t0
    records = []
    for mech, h in zip(ens, holdouts):
        ev = mech.evaluate(s, t, v, protocol="interpolate", holdout=[h])
        b = interpolation_baselines(s, t, h, [h])
        metrics = {"w1": ev["w1"][0]}
        base = {"mccann": b["w1_mccann"], "previous": b["w1_previous"]}
        rec = _record("eb_loo", f"holdout{h}", profile, seed, st, kw, wall / len(ens), mech, metrics, base)
        rec.update(holdout=h, data_file=ds.meta.get("file"), subset=bool(ds.meta.get("subset")), n_cells=ds.meta.get("n_cells"))
        records.append(rec)
    return records


def boids(profile: str, seed: int, device: str, n_iter: int | None = None) -> list[dict]:
    """Table 4: Boids, 1000 agents, train on the first 50 snapshots (t <= 24.5), forecast the next
    51; gamma = 0, true v0; W1 averaged over the training times and over the forecast times."""
    st = settings("boids", profile)
    kw = _fit_kwargs(st, n_iter, device)
    ds = D.boids(random_state=seed)
    s, t, v = ds
    n_train = ds.meta["n_train"]
    t0 = time.perf_counter()
    mech = scwlm.fit(s[:n_train], t[:n_train], v[0], friction=0.0, random_state=seed, **kw)
    wall = time.perf_counter() - t0
    ev = mech.evaluate(s, t, v, n_train=n_train)
    last = n_train - 1
    fut = range(n_train, len(s))
    metrics = {"train": ev["train_mean"], "train_se": ev["train_se"], "forecast": ev["test_mean"], "forecast_se": ev["test_se"]}
    base = {
        "carry_forward": float(np.mean([wasserstein1(s[last], s[i]) for i in fut])),
        "constant_velocity_from_t49": float(np.mean([wasserstein1(constant_velocity(s[last], v[last], t[i] - t[last]), s[i]) for i in fut])),
        "constant_velocity_from_t0": float(np.mean([wasserstein1(constant_velocity(s[0], v[0], t[i] - t[0]), s[i]) for i in fut])),
    }
    return [_record("boids", "wlm", profile, seed, st, kw, wall, mech, metrics, base)]


EXPERIMENTS: dict[str, Callable[..., list[dict]]] = {
    "gf_sde": gf_sde,
    "oceans_interp": oceans_interp,
    "oceans_forecast": oceans_forecast,
    "eb_loo": eb_loo,
    "boids": boids,
}
