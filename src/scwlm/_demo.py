"""The ``scwlm demo`` job: simulate a small system, fit WLM, forecast, write a figure and a W1 table."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

__all__ = ["run_demo"]


def run_demo(
    out: str | Path = "demo_out",
    *,
    n: int = 200,
    n_iter: int = 400,
    device: str = "cpu",
    random_state: int = 0,
    progress: bool = True,
) -> dict:
    """Fit WLM to a damped harmonic well and forecast its held-out future.

    ``n`` particles in the well :math:`\\ddot x = -x - 0.3\\,\\dot x` start as a Gaussian blob
    off-centre; 17 snapshots are taken every 0.4 time units. WLM is trained with the library's
    defaults on the first 11 (:math:`t \\le 4`) and rolled out from :math:`t_0` over all 17. Writes ``forecast.png``
    (observed vs predicted clouds, W1 over time, training curves), ``w1_table.md`` /
    ``w1_table.csv`` (W1 per time for WLM and two baselines: the last training snapshot carried
    forward, and constant-velocity extrapolation with the true velocities) and ``model/``.

    Returns
    -------
    dict
        The W1 values and summary numbers (also printed).

    Examples
    --------
    >>> run_demo("demo_out", n_iter=10, progress=False)  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import scwlm
    from scwlm.core.metrics import mean_se, wasserstein1

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = scwlm.datasets.harmonic_well(n=n, random_state=random_state)
    snaps, times, vels = ds
    n_train = ds.meta["n_train"]
    print(f"[scwlm demo] {n} particles in a damped harmonic well, {len(snaps)} snapshots; training on the first {n_train}")
    t0 = time.perf_counter()
    mech = scwlm.fit(  # the library's defaults: nothing tuned for this system
        snaps[:n_train], times[:n_train], vels[0], n_iter=n_iter, device=device, random_state=random_state,
        progress=progress,
    )
    fit_s = time.perf_counter() - t0
    pred = mech.rollout(snaps[0], vels[0], t0=float(times[0]), times=times)
    rows = []
    last = snaps[n_train - 1]
    for i in range(1, len(snaps)):
        dt = float(times[i] - times[n_train - 1])
        future = i >= n_train
        rows.append({
            "time": float(times[i]),
            "split": "forecast" if future else "train",
            "wlm": wasserstein1(pred[i], snaps[i]),
            "carry_forward": wasserstein1(last, snaps[i]) if future else np.nan,
            "constant_velocity": wasserstein1(last + dt * vels[n_train - 1], snaps[i]) if future else np.nan,
        })
    fut = [r for r in rows if r["split"] == "forecast"]
    summary = {
        "fit_seconds": fit_s,
        "friction": mech.friction,
        "train_w1": mean_se([r["wlm"] for r in rows if r["split"] == "train"]),
        "forecast_w1": mean_se([r["wlm"] for r in fut]),
        "carry_forward_w1": mean_se([r["carry_forward"] for r in fut]),
        "constant_velocity_w1": mean_se([r["constant_velocity"] for r in fut]),
    }

    def fmt(v: float) -> str:
        return "" if not np.isfinite(v) else f"{v:.3f}"

    lines = [
        "| t | split | WLM | carry forward | constant velocity |",
        "|---|---|---|---|---|",
        *[f"| {r['time']:.1f} | {r['split']} | {fmt(r['wlm'])} | {fmt(r['carry_forward'])} | {fmt(r['constant_velocity'])} |" for r in rows],
        "",
        "| mean +- SE over the forecast | WLM | carry forward | constant velocity |",
        "|---|---|---|---|",
        "| W1 | " + " | ".join(f"{m:.3f} +- {s:.3f}" for m, s in (summary["forecast_w1"], summary["carry_forward_w1"], summary["constant_velocity_w1"])) + " |",
        "",
        f"Training W1 (t1..t{n_train - 1}): {summary['train_w1'][0]:.3f} +- {summary['train_w1'][1]:.3f}; "
        f"learned friction {mech.friction:.3f} (true 0.3); {n_iter} iterations in {fit_s:.0f} s on {device}.",
        "Command: `scwlm demo` (`scwlm.datasets.harmonic_well(n=%d)`, random_state=%d)." % (n, random_state),
    ]
    (out / "w1_table.md").write_text("\n".join(lines) + "\n")
    with open(out / "w1_table.csv", "w") as fh:
        fh.write("time,split,wlm,carry_forward,constant_velocity\n")
        for r in rows:
            fh.write(f"{r['time']},{r['split']},{r['wlm']},{r['carry_forward']},{r['constant_velocity']}\n")
    mech.save(out / "model")

    shown = [0, 4, 8, n_train - 1, n_train + 2, len(snaps) - 1]
    fig = plt.figure(figsize=(15, 6.5), layout="constrained")
    grid = fig.add_gridspec(2, len(shown))
    lim = np.abs(np.concatenate(snaps)).max() * 1.1
    for j, i in enumerate(shown):
        ax = fig.add_subplot(grid[0, j])
        ax.scatter(*snaps[i].T, s=6, c="0.35", label="observed")
        ax.scatter(*pred[i].T, s=6, c="tab:orange", alpha=0.7, label="WLM")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"t = {times[i]:.1f}" + (" (forecast)" if i >= n_train else ""), color="tab:purple" if i >= n_train else "k")
        if j == 0:
            ax.legend(loc="lower left", fontsize=8)
    ax = fig.add_subplot(grid[1, :3])
    ts = [r["time"] for r in rows]
    ax.plot(ts, [r["wlm"] for r in rows], "o-", c="tab:orange", label="WLM (rollout from t0)")
    ax.plot(ts, [r["carry_forward"] for r in rows], "s--", c="0.4", label="last snapshot carried forward")
    ax.plot(ts, [r["constant_velocity"] for r in rows], "^:", c="tab:blue", label="constant velocity")
    ax.axvline(times[n_train - 1], c="tab:purple", lw=1)
    ax.set(xlabel="time", ylabel="W1 to observed", title="forecast error")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[1, 3:])
    ax.plot(mech.history["loss"], c="k", lw=0.8)
    ax.set(xlabel="iteration", ylabel="Sinkhorn loss", yscale="log", title="training")
    ax2 = ax.twinx()
    ax2.plot(mech.history["friction"], c="tab:red", lw=1)
    ax2.set_ylabel("friction $\\gamma$", color="tab:red")
    fig.savefig(out / "forecast.png", dpi=110)
    plt.close(fig)
    print("\n".join(lines))
    print(f"[scwlm demo] wrote {out / 'forecast.png'}, {out / 'w1_table.md'}, {out / 'w1_table.csv'} and {out / 'model'}")
    return {"rows": rows, **summary}
