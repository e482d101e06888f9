"""Time one training force evaluation and its backward pass: autograd against the analytic force.

What ``force_impl="auto"`` decides between (:data:`scwlm.core.potential.AUTO_ANALYTIC_PARTICLES`):
for each set size, the library's network (64 wide, 4 heads, 4 blocks) computes the forces of
``E`` models on ``N`` particles with ``create_graph=True`` and backpropagates a scalar of them
to the weights, as a training step does, with

- ``autograd``: reverse-mode autograd of the energy (training differentiates it again);
- ``analytic``: the hand-written gradient with the row-blocked attention kernels
  (:mod:`scwlm.core.attention`);
- ``unfused``: the same formula with its attention written as plain tensor operations;
- ``compiled``: the analytic force under ``torch.compile`` (inductor), as ``compile_force`` runs it
  in training (:mod:`scwlm.core.compile`); its first call, which compiles, is the warm-up and is
  printed as the compile time (not in the table: ``--impls`` without it skips the compilation).

The three alternate within every repetition (so a change in the machine's speed hits all of
them), and the table gives the median over repetitions and the ratio to autograd::

    python -m benchmarks.force_kernels                       # d = 2, E = 1 and 3, N = 256, 512, 1000
    python -m benchmarks.force_kernels --sizes 1024 --dim 5 --dropout 0.1

``--eval`` times the force as evaluation and rollouts compute it instead (no graph, no backward
pass), and ``--impls`` restricts the paths, so that the peak resident memory printed at the end
belongs to one path: ``python -m benchmarks.force_kernels --eval --sizes 5000 --dim 30 --models 1
--impls analytic`` (then ``--impls autograd``).

Only ratios within one run are comparable (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

IMPLS = ("autograd", "analytic", "unfused", "compiled")
#: the implementations run unless --impls says otherwise (compiling costs tens of seconds per shape)
DEFAULT_IMPLS = ("autograd", "analytic", "unfused")


def time_force(net, x, impl: str, masks=None, train: bool = True) -> float:
    """Seconds of one force evaluation with ``create_graph=True`` and the backward pass of ``sum(f**2)``
    (``train=False``: of one evaluation without a graph, as rollouts compute it)."""
    import scwlm.core.potential as potential

    previous, potential.FUSED_ATTENTION = potential.FUSED_ATTENTION, impl != "unfused"
    try:
        t0 = time.perf_counter()
        if impl == "compiled":
            f = net.__dict__["_compiled"](x, masks=masks, create_graph=train)
        else:
            f = net.forces(x, masks=masks, create_graph=train, impl="autograd" if impl == "autograd" else "analytic")
        if train:
            f.square().sum().backward()
        return time.perf_counter() - t0
    finally:
        potential.FUSED_ATTENTION = previous


def measure(n: int, models: int, dim: int, dropout: float, reps: int, seed: int = 0,
            impls: tuple[str, ...] = DEFAULT_IMPLS, train: bool = True) -> dict[str, float]:
    """Median seconds per implementation (``reps`` alternating repetitions after one warm-up each)."""
    import torch

    from scwlm.core.potential import SetPotential

    gens = [torch.Generator().manual_seed(seed + e) for e in range(models)]
    net = SetPotential(dim, dropout=dropout, n_models=models, generators=gens)
    x = torch.randn(models, n, dim, generator=torch.Generator().manual_seed(seed))
    masks = None  # dropout is a training-time operation
    if train:
        masks = net.sample_masks(n, [torch.Generator().manual_seed(seed + 1) for _ in range(models)], "cpu", torch.float32)
    times: dict[str, list[float]] = {k: [] for k in impls}
    if "compiled" in impls:
        from scwlm.core.compile import compiled_forces

        net.__dict__["_compiled"] = compiled_forces(net, "analytic")
    for impl in impls:  # warm-up
        time_force(net, x, impl, masks, train)
    if "compiled" in impls:
        times["compile_s"] = [net.__dict__["_compiled"].compile_seconds or 0.0]
    for r in range(reps):
        for impl in (impls if r % 2 == 0 else impls[::-1]):
            times[impl].append(time_force(net, x, impl, masks, train))
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.force_kernels", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1000], help="particles per set")
    p.add_argument("--models", nargs="+", type=int, default=[1, 3], help="models per ensemble")
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--impls", nargs="+", default=list(DEFAULT_IMPLS), choices=IMPLS)
    p.add_argument("--eval", action="store_true", help="time the force without a graph or backward pass (rollouts)")
    a = p.parse_args(argv)
    from .reproduce import machine_info

    m = machine_info()
    print(f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores); torch {m['torch']}; commit {m['commit']}.")
    print("Command: `python -m benchmarks.force_kernels " + " ".join(sys.argv[1:] if argv is None else argv) + "`\n")
    impls = tuple(a.impls)
    ratios = [k for k in impls if k != "autograd"] if "autograd" in impls else []
    print(f"{'evaluation (no graph)' if a.eval else 'training (graph and backward pass)'}; median of {a.reps}\n")
    extra = " | first compiled call (compilation) s" if "compiled" in impls else ""
    print("| particles | models | d | dropout | " + " | ".join(f"{k} s" for k in impls)
          + "".join(f" | autograd / {k}" for k in ratios) + extra + " |")
    print("|---|---|---|---|" + "---|" * (len(impls) + len(ratios) + bool(extra)))
    for n in a.sizes:
        for e in a.models:
            t = measure(n, e, a.dim, a.dropout, a.reps, impls=impls, train=not a.eval)
            print(f"| {n} | {e} | {a.dim} | {a.dropout} | " + " | ".join(f"{t[k]:.4f}" for k in impls)
                  + "".join(f" | {t['autograd'] / t[k]:.2f}" for k in ratios)
                  + (f" | {t['compile_s']:.1f}" if "compile_s" in t else "") + " |", flush=True)
    import resource

    print(f"\npeak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
