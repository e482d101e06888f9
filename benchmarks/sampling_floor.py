"""The W1 that finite samples leave even for a perfect model: two disjoint halves of one snapshot.

A prediction of a held-out snapshot is a finite cloud, and so is the snapshot: even a model that
samples the true distribution exactly scores the W1 between two independent samples of it, which
is far from zero in five dimensions at a few hundred cells. This script measures that floor on the
real data: for every snapshot it splits the cells at random into disjoint halves of ``m`` cells and
computes the exact W1 between them (POT), for several ``m`` up to half the snapshot, averaged over
repeats. The floor of a full-size comparison (``n`` against ``n`` cells) lies below the figure at
``m = n / 2``, since the empirical W1 falls as the samples grow.

Run: ``SCWLM_DATA_DIR=... python -m benchmarks.sampling_floor [--dataset eb] [--repeats 10]``.
"""

from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np

from scwlm import datasets as D
from scwlm.core.metrics import wasserstein1

__all__ = ["half_split_w1", "main"]


def half_split_w1(x: np.ndarray, m: int, repeats: int, rng: np.random.Generator) -> tuple[float, float]:
    """Mean and standard error over ``repeats`` of the W1 between two disjoint random ``m``-subsets of ``x``.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(40, 2))
    >>> mean, se = half_split_w1(x, 20, 3, np.random.default_rng(1))
    >>> 0 < mean < 2, se >= 0
    (True, True)
    """
    if not 0 < 2 * m <= len(x):
        raise ValueError(f"m={m} needs 2*m <= {len(x)} points")
    vals = []
    for _ in range(repeats):
        p = rng.permutation(len(x))
        vals.append(float(wasserstein1(x[p[:m]], x[p[m:2 * m]])))
    return float(np.mean(vals)), float(np.std(vals, ddof=1) / np.sqrt(repeats)) if repeats > 1 else 0.0


def _load(name: str):
    if name == "eb":
        return D.embryoid_body(n_pcs=5), "embryoid body, 5 PCs"
    if name in ("vortex_small", "vortex_big"):
        return D.ocean_vortex(name.split("_")[1]), f"ocean vortex ({name.split('_')[1]})"
    raise ValueError(f"unknown dataset {name!r}; use eb, vortex_small or vortex_big")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="eb")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    (s, t, _), label = _load(a.dataset)
    rng = np.random.default_rng(a.seed)
    n_min = min(len(x) for x in s)
    sizes = sorted({max(2, n_min // 8), max(2, n_min // 4), n_min // 2})
    print(f"Sampling floor of W1, {label}: disjoint random halves of m cells of each snapshot, "
          f"mean ± SE over {a.repeats} splits (seed {a.seed}).")
    print(f"Command: python -m benchmarks.sampling_floor --dataset {a.dataset} --repeats {a.repeats} --seed {a.seed}\n")
    print("| snapshot | time | cells | " + " | ".join(f"m = {m}" for m in sizes) + " |")
    print("|---|---|---|" + "---|" * len(sizes))
    for i, x in enumerate(s):
        x = np.asarray(x, dtype=np.float64)
        cells = [half_split_w1(x, m, a.repeats, rng) for m in sizes]
        print(f"| {i} | {float(t[i]):g} | {len(x)} | " + " | ".join(f"{mu:.3f} ± {se:.3f}" for mu, se in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
