"""Time one training force evaluation and its backward pass: autograd against the analytic force.

What ``force_impl="auto"`` decides between (:data:`scwlm.core.potential.AUTO_ANALYTIC_PARTICLES`):
for each set size, the library's network (64 wide, 4 heads, 4 blocks) computes the forces of
``E`` models on ``N`` particles with ``create_graph=True`` and backpropagates a scalar of them
to the weights, as a training step does, with

- ``autograd``: reverse-mode autograd of the energy (training differentiates it again);
- ``analytic``: the hand-written gradient with the row-blocked attention kernels
  (:mod:`scwlm.core.attention`);
- ``unfused``: the same formula with its attention written as plain tensor operations.

The three alternate within every repetition (so a change in the machine's speed hits all of
them), and the table gives the median over repetitions and the ratio to autograd::

    python -m benchmarks.force_kernels                       # d = 2, E = 1 and 3, N = 256, 512, 1000
    python -m benchmarks.force_kernels --sizes 1024 --dim 5 --dropout 0.1

Only ratios within one run are comparable (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

IMPLS = ("autograd", "analytic", "unfused")


def time_force(net, x, impl: str, masks=None) -> float:
    """Seconds of one force evaluation with ``create_graph=True`` and the backward pass of ``sum(f**2)``."""
    import scwlm.core.potential as potential

    potential.FUSED_ATTENTION = impl != "unfused"
    try:
        t0 = time.perf_counter()
        f = net.forces(x, masks=masks, create_graph=True, impl="autograd" if impl == "autograd" else "analytic")
        f.square().sum().backward()
        return time.perf_counter() - t0
    finally:
        potential.FUSED_ATTENTION = True


def measure(n: int, models: int, dim: int, dropout: float, reps: int, seed: int = 0) -> dict[str, float]:
    """Median seconds per implementation (``reps`` alternating repetitions after one warm-up each)."""
    import torch

    from scwlm.core.potential import SetPotential

    gens = [torch.Generator().manual_seed(seed + e) for e in range(models)]
    net = SetPotential(dim, dropout=dropout, n_models=models, generators=gens)
    x = torch.randn(models, n, dim, generator=torch.Generator().manual_seed(seed))
    masks = net.sample_masks(n, [torch.Generator().manual_seed(seed + 1) for _ in range(models)], "cpu", torch.float32)
    times: dict[str, list[float]] = {k: [] for k in IMPLS}
    for impl in IMPLS:  # warm-up
        time_force(net, x, impl, masks)
    for r in range(reps):
        for impl in (IMPLS if r % 2 == 0 else IMPLS[::-1]):
            times[impl].append(time_force(net, x, impl, masks))
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.force_kernels", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1000], help="particles per set")
    p.add_argument("--models", nargs="+", type=int, default=[1, 3], help="models per ensemble")
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--reps", type=int, default=7)
    a = p.parse_args(argv)
    from .reproduce import machine_info

    m = machine_info()
    print(f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores); torch {m['torch']}; commit {m['commit']}.")
    print("Command: `python -m benchmarks.force_kernels " + " ".join(sys.argv[1:] if argv is None else argv) + "`\n")
    print("| particles | models | d | dropout | autograd s | analytic s | unfused s | autograd / analytic | autograd / unfused |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in a.sizes:
        for e in a.models:
            t = measure(n, e, a.dim, a.dropout, a.reps)
            print(f"| {n} | {e} | {a.dim} | {a.dropout} | {t['autograd']:.4f} | {t['analytic']:.4f} | {t['unfused']:.4f} "
                  f"| {t['autograd'] / t['analytic']:.2f} | {t['autograd'] / t['unfused']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
