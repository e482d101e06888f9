"""Kept against recomputed attention weights: a rollout's force evaluations and backward pass, interleaved in one process.

The analytic force's attention kernels either recompute the soft-max weights in the backward
passes or keep them (``keep_attention_weights``; :mod:`scwlm.core.attention`). Both give the
same numbers to the bit, so only time and memory differ, by about a tenth: less than the spread
between separate processes on a small shared machine (each ``benchmarks.speed`` row is its own
process). Here the three ways run one after the other, repetition after repetition, in one
process, on the same network and particles:

- ``recompute``: the weights recomputed in the backward passes;
- ``keep (pool)``: kept in buffers of a :class:`~scwlm.core.attention.WeightsPool`, reused from one
  repetition to the next (what training does);
- ``keep (fresh)``: kept in buffers allocated at every evaluation.

One repetition is what a training iteration does with the force: ``--steps`` evaluations of a
damped-leapfrog-like rollout of ``--particles`` particles, each differentiable, then one backward
pass through all of them. The network has the library's default shape (``hidden=64, heads=4,
blocks=4``). The median and minimum seconds per repetition are printed, with the command.

    python -m benchmarks.kept_weights --particles 1000 --dim 2 --steps 10          # Boids k = 10
    python -m benchmarks.kept_weights --particles 1024 --dim 5 --steps 4 --dropout 0.1  # EB-like
    python -m benchmarks.kept_weights --particles 102 --steps 10 --reps 40 --compiled   # Boids minibatch
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from typing import Any, Sequence

MODES = ("recompute", "keep (pool)", "keep (fresh)")


def measure(particles: int, dim: int, steps: int, dropout: float = 0.0, reps: int = 5, ffn: int = 512,
            seed: int = 0, hidden: int = 64, heads: int = 4, compiled: bool = False) -> dict[str, Any]:
    """Seconds per repetition of each mode (``reps`` timed repetitions after one warm-up each, interleaved).

    ``compiled``: the force compiled by ``torch.compile`` (:mod:`scwlm.core.compile`, inductor),
    whose graph allocates its own buffers: modes ``recompute`` and ``keep (fresh)`` only.
    """
    import torch

    from scwlm.core.attention import WeightsPool
    from scwlm.core.compile import compiled_forces
    from scwlm.core.potential import SetPotential

    torch.manual_seed(seed)
    net = SetPotential(dim, hidden=hidden, heads=heads, blocks=4, ffn=ffn, dropout=dropout, n_models=1,
                       generators=[torch.Generator().manual_seed(seed)])
    x0 = torch.randn(1, particles, dim, generator=torch.Generator().manual_seed(seed + 1))
    keep = {"recompute": False, "keep (pool)": WeightsPool(), "keep (fresh)": True}
    modes = ("recompute", "keep (fresh)") if compiled else MODES
    force = compiled_forces(net, "analytic") if compiled else net.forces
    losses: dict[str, float] = {}

    def rollout(mode: str) -> None:
        gen = [torch.Generator().manual_seed(seed + 2)]  # the same dropout masks in every mode
        x, v, total = x0.clone(), torch.zeros_like(x0), 0.0
        for _ in range(steps):
            masks = net.sample_masks(particles, gen, "cpu", torch.float32) if dropout else None
            kw = {} if compiled else {"impl": "analytic"}
            f = force(x.detach(), None, masks=masks, create_graph=True, keep_weights=keep[mode], **kw)
            v = 0.9 * v + 0.1 * f
            x = x + 0.1 * v
            total = total + x.square().mean()
        total.backward()
        losses[mode] = float(total.detach())

    times: dict[str, list[float]] = {m: [] for m in modes}
    for m in modes:  # warm-up (and compilation)
        rollout(m)
    for _ in range(reps):
        for m in modes:
            t0 = time.perf_counter()
            rollout(m)
            times[m].append(time.perf_counter() - t0)
    same = len({losses[m] for m in modes}) == 1
    return dict(particles=particles, dim=dim, steps=steps, dropout=dropout, reps=reps, same_result=same,
                hidden=hidden, heads=heads, compiled=compiled, seconds={m: times[m] for m in modes},
                median={m: statistics.median(times[m]) for m in modes}, min={m: min(times[m]) for m in modes})


def table(res: dict[str, Any], command: str) -> str:
    base = res["median"]["recompute"]
    lines = [f"Command: `{command}`", "",
             f"{res['particles']} particles in {res['dim']} dimensions, {res['steps']} force evaluations and one backward "
             f"pass per repetition, width {res['hidden']}, {res['heads']} heads, dropout {res['dropout']}"
             f"{', compiled force' if res['compiled'] else ''}, {res['reps']} repetitions per mode, interleaved; "
             f"the same result in every mode: {res['same_result']}.", "",
             "| mode | median s / repetition | min | speed-up of the median over recompute |", "|---|---|---|---|"]
    for m in res["median"]:
        lines.append(f"| {m} | {res['median'][m]:.3f} | {res['min'][m]:.3f} | {base / res['median'][m]:.2f}x |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--compiled", action="store_true", help="the force compiled by torch.compile (inductor)")
    a = ap.parse_args(argv)
    from benchmarks.reproduce import machine_info

    res = measure(a.particles, a.dim, a.steps, a.dropout, a.reps, a.ffn, hidden=a.hidden, heads=a.heads,
                  compiled=a.compiled)
    m = machine_info()
    command = "python -m benchmarks.kept_weights " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, {m['torch_threads']} torch threads); "
          f"torch {m['torch']}; commit {m['commit']}.")
    print(table(res, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
