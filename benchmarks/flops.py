"""Arithmetic of one training iteration: matrix-product FLOPs and exponentials, ours against the authors' code.

The workloads and settings are those of :mod:`benchmarks.speed` (the paper's settings, every
particle, a fixed rollout horizon). A :class:`~torch.utils._python_dispatch.TorchDispatchMode`
sees every ATen operator that runs, including those of the backward passes, and adds up

- ``products``: the FLOPs of the matrix products (``mm``, ``bmm``, ``addmm``, ``baddbmm``,
  ``matmul`` ... by PyTorch's own formulas, :data:`torch.utils.flop_counter.flop_registry`:
  2 per multiply-add);
- ``exponentials``: the elements exponentiated by ``exp``, ``exp2`` (and their in-place forms) and
  ``_softmax`` (their outputs) and by ``logsumexp`` (its input).

One iteration's figure is the difference between runs of two iterations and of one (set-up work
cancels). Our count runs the training force uncompiled (``compile_force=False``: the same
operators; a compiled graph would hide them from the counter). Counting is not timing: the
figures are deterministic and may be taken while other jobs run.

Why count? Below a certain time per iteration a CPU cannot go without doing less arithmetic: at
the product rate the machine reaches (``aten::bmm`` self time in ``benchmarks.speed --ops``), the
products alone take ``products / rate`` seconds, whatever else is made faster.

    python -m benchmarks.flops --workloads oceans_small_interp eb_like boids_k10 --authors-src /path/to/WLM
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as _dt
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

#: operators counted as exponentials (their output elements; for ``logsumexp``, its input's)
EXP_OPS = ("exp", "exp_", "exp2", "exp2_", "_softmax", "logsumexp")


def counter():
    """A fresh dispatch mode with ``.products`` (FLOPs by operator) and ``.exponentials`` (elements by operator)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_map
    from torch.utils.flop_counter import flop_registry

    def shape(x: Any) -> Any:
        return x.shape if isinstance(x, torch.Tensor) else x

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.products: collections.Counter = collections.Counter()
            self.exponentials: collections.Counter = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            op = func._overloadpacket
            if op in flop_registry:
                self.products[str(op)] += int(flop_registry[op](*tree_map(shape, args), **tree_map(shape, kwargs),
                                                                out_val=tree_map(shape, out)))
            elif op.__name__ in EXP_OPS and isinstance(out, torch.Tensor):
                # logsumexp reduces: it exponentiates every element of its input
                self.exponentials[str(op)] += (args[0] if op.__name__ == "logsumexp" else out).numel()
            return out

    return Count()


def per_iteration(run: Callable[[int], Any]) -> dict:
    """Products and exponentials of one iteration: ``run(2)`` minus ``run(1)`` (``run(k)`` trains ``k`` iterations)."""
    counts = []
    for k in (1, 2):
        with counter() as c:
            run(k)
        counts.append(c)
    one, two = counts
    products = {k: two.products[k] - one.products[k] for k in two.products}
    exps = {k: two.exponentials[k] - one.exponentials[k] for k in two.exponentials}
    return {"products": sum(products.values()), "products_by_op": products,
            "exponentials": sum(exps.values()), "exponentials_by_op": exps}


def count_ours(name: str, extra: dict | None = None) -> dict:
    """One iteration of our trainer on a :data:`benchmarks.speed.WORKLOADS` entry (``extra``: WLMConfig overrides)."""
    from benchmarks import speed

    opts = {"compile_force": False, **(extra or {})}
    res = per_iteration(lambda k: speed.run_ours(name, iters=k, warmup=0, device="cpu", extra=opts))
    return {"workload": name, "impl": "ours", "options": opts, **res}


def count_authors(name: str, src: str) -> dict:
    """One iteration of the authors' training loop (:func:`benchmarks.speed.run_authors`) on a workload."""
    from benchmarks import speed

    res = per_iteration(lambda k: speed.run_authors(name, iters=k, warmup=0, device="cpu", src=src))
    return {"workload": name, "impl": "authors", **res}


def table(results: list[dict], command: str) -> str:
    rows = {}
    for r in results:
        rows.setdefault(r["workload"], {})[r["impl"]] = r
    out = ["| workload | products, ours (GFLOP/iter) | products, authors | ours / authors | exponentials, ours (10^9/iter) | exponentials, authors |",
           "|---|---|---|---|---|---|"]
    for w, d in rows.items():
        o, a = d.get("ours"), d.get("authors")

        def g(r: dict | None, key: str) -> str:
            return "–" if r is None else f"{r[key] / 1e9:.2f}"

        ratio = f"{o['products'] / a['products']:.2f}" if o and a and a["products"] else "–"
        out.append(f"| {w} | {g(o, 'products')} | {g(a, 'products')} | {ratio} | {g(o, 'exponentials')} | {g(a, 'exponentials')} |")
    return f"Command: `{command}`\n\n" + "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks import speed

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", nargs="+", default=["oceans_small_interp", "eb_like", "boids_k10"], choices=list(speed.WORKLOADS))
    ap.add_argument("--authors-src", default=None, help="a local copy of github.com/guanton/WLM (never committed)")
    ap.add_argument("--options", default=None, help="WLMConfig overrides for ours, a JSON object (as benchmarks.speed --options)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    extra = json.loads(a.options or "{}")
    results = []
    for name in a.workloads:
        with contextlib.redirect_stdout(sys.stderr):
            results.append(count_ours(name, extra))
            if a.authors_src:
                results.append(count_authors(name, a.authors_src))
    command = "python -m benchmarks.flops " + shlex.join(sys.argv[1:] if argv is None else argv)
    text = table(results, command)
    print(f"Counted {_dt.datetime.now():%Y-%m-%d %H:%M}.\n" + text)
    if a.json:
        a.json.write_text(json.dumps({"command": command, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
