"""How much do measured velocities say about the displacement between snapshots?

WLM starts every rollout, and the interpolation protocol every restart, from a snapshot with its
measured velocities. Where those are physical velocities (drifters in the ocean vortex) they agree
with the displacement between neighbouring snapshots; RNA velocities need not: they are on another
scale (a rate of transcriptional change projected into PC space) and may point elsewhere. This
script measures the agreement on the data, against the optimal-transport velocity of every point
(:func:`scwlm.core.velocities.ot_velocity`: the barycentric map to the next snapshot, minus the
position, over the gap):

- per snapshot with a successor: mean speeds, the least-squares scale :math:`c` with
  :math:`c\\,v \\approx v_{OT}` (:math:`c = \\sum \\langle v, v_{OT} \\rangle / \\sum |v|^2`), the
  mean cosine between :math:`v` and :math:`v_{OT}` point by point and the cosine between their means;
- per held-out snapshot :math:`h`: constant-velocity extrapolation from :math:`h-1` with the
  measured velocities as they are and rescaled by :math:`c` fitted on consecutive *training*
  snapshots only (the holdout left out), beside the previous snapshot itself and McCann's
  interpolation between :math:`h-1` and :math:`h+1` (exact W1, POT).

If the rescaled extrapolation is no better than the previous snapshot, the velocities carry no
usable information about the next snapshot, and a scale calibration cannot help a model that
restarts from them.

Run: ``SCWLM_DATA_DIR=... python -m benchmarks.velocity_agreement [--dataset eb]``.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple, Sequence

import numpy as np

from scwlm import datasets as D
from scwlm.core.baselines import constant_velocity, mccann_interpolation
from scwlm.core.metrics import wasserstein1
from scwlm.core.velocities import ot_velocity

__all__ = ["Agreement", "agreement", "least_squares_scale", "main"]


class Agreement(NamedTuple):
    """Agreement of measured velocities ``v`` with optimal-transport velocities ``v_ot`` of the same points."""

    speed: float  #: mean |v|
    ot_speed: float  #: mean |v_ot|
    scale: float  #: least-squares c with c v ~ v_ot
    mean_cosine: float  #: mean over points of cos(v_i, v_ot_i)
    cosine_of_means: float  #: cos(mean v, mean v_ot)


def least_squares_scale(v: Sequence[np.ndarray], v_ot: Sequence[np.ndarray]) -> float:
    r"""The scale :math:`c` minimising :math:`\sum_k \|c\,v_k - v_{OT,k}\|^2` over all points of all pairs.

    Examples
    --------
    >>> least_squares_scale([np.ones((3, 2))], [2 * np.ones((3, 2))])
    2.0
    """
    num = sum(float(np.sum(a * b)) for a, b in zip(v, v_ot))
    den = sum(float(np.sum(a * a)) for a in v)
    if den == 0.0:
        raise ValueError("the measured velocities are all zero: no scale can be fitted")
    return num / den


def agreement(v: np.ndarray, v_ot: np.ndarray) -> Agreement:
    """Speeds, least-squares scale and cosines of ``v (n, d)`` against ``v_ot (n, d)``.

    Examples
    --------
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> a = agreement(v, 3 * v)
    >>> round(a.scale, 6), round(a.mean_cosine, 6), round(a.cosine_of_means, 6)
    (3.0, 1.0, 1.0)
    """
    v, v_ot = np.asarray(v, dtype=np.float64), np.asarray(v_ot, dtype=np.float64)
    if v.shape != v_ot.shape or v.ndim != 2:
        raise ValueError(f"expected two (n, d) arrays of one shape, got {v.shape} and {v_ot.shape}")
    nv, no = np.linalg.norm(v, axis=1), np.linalg.norm(v_ot, axis=1)
    ok = (nv > 0) & (no > 0)
    cos = np.sum(v[ok] * v_ot[ok], axis=1) / (nv[ok] * no[ok])
    mv, mo = v.mean(0), v_ot.mean(0)
    denom = np.linalg.norm(mv) * np.linalg.norm(mo)
    return Agreement(float(nv.mean()), float(no.mean()), least_squares_scale([v], [v_ot]),
                     float(cos.mean()) if ok.any() else float("nan"),
                     float(mv @ mo / denom) if denom > 0 else float("nan"))


def _load(name: str):
    if name == "eb":
        ds = D.embryoid_body(n_pcs=5)
        return ds, list(ds.meta["holdouts"]), "embryoid body, 5 PCs, RNA velocities"
    if name == "vortex_small":
        ds = D.ocean_vortex("small")
        return ds, list(ds.meta["holdout"]), "small ocean vortex, drifter velocities"
    raise ValueError(f"unknown dataset {name!r}; use eb or vortex_small")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="eb")
    a = ap.parse_args(argv)
    (s, t, v), holdouts, label = _load(a.dataset)
    s = [np.asarray(x, dtype=np.float64) for x in s]
    v = [np.asarray(x, dtype=np.float64) for x in v]
    t = np.asarray(t, dtype=np.float64)
    print(f"Measured velocities against optimal-transport velocities, {label}.")
    print(f"Command: python -m benchmarks.velocity_agreement --dataset {a.dataset}\n")
    print("| snapshot | time | mean speed | mean OT speed | least-squares scale | mean cosine | cosine of the means |")
    print("|---|---|---|---|---|---|---|")
    for j in range(len(s) - 1):
        g = agreement(v[j], ot_velocity(s[j], s[j + 1], t[j + 1] - t[j], random_state=j))
        print(f"| {j} → {j + 1} | {t[j]:g} | {g.speed:.4f} | {g.ot_speed:.3f} | {g.scale:.2f} | {g.mean_cosine:.3f} | "
              f"{g.cosine_of_means:.3f} |")
    print("\nConstant-velocity extrapolation from the snapshot before each holdout (W1 to the holdout); the scale is "
          "fitted on consecutive training snapshots, the holdout left out.\n")
    print("| holdout | scale | measured velocities | rescaled | previous snapshot | McCann |")
    print("|---|---|---|---|---|---|")
    for h in holdouts:
        keep = [i for i in range(len(s)) if i != h]
        pairs = list(zip(keep[:-1], keep[1:]))
        c = least_squares_scale([v[i] for i, _ in pairs],
                                [ot_velocity(s[i], s[j], t[j] - t[i], random_state=i) for i, j in pairs])
        gap = t[h] - t[h - 1]
        raw = wasserstein1(constant_velocity(s[h - 1], v[h - 1], gap), s[h])
        cal = wasserstein1(constant_velocity(s[h - 1], c * v[h - 1], gap), s[h])
        pts, wts = mccann_interpolation(s[h - 1], s[h + 1], gap / (t[h + 1] - t[h - 1]))
        print(f"| {h} | {c:.2f} | {raw:.3f} | {cal:.3f} | {wasserstein1(s[h - 1], s[h]):.3f} | "
              f"{wasserstein1(pts, s[h], x_weights=wts):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
