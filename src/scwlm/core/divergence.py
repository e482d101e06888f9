r"""Debiased Sinkhorn divergences between point clouds (training loss), via GeomLoss.

.. math::
    S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
        - \tfrac12 \mathrm{OT}_\varepsilon(\alpha, \alpha) - \tfrac12 \mathrm{OT}_\varepsilon(\beta, \beta),
    \qquad \varepsilon = \mathrm{blur}^p,

with ground cost :math:`\tfrac1p \|x - y\|^p` (Feydy et al., "Interpolating between optimal
transport and MMD using Sinkhorn divergences", AISTATS 2019). All the divergences of one training
iteration are computed in a single batched call; the starting scale of the :math:`\varepsilon`-
annealing (the *diameter*) is fixed once from the data, so no call needs a host synchronisation to
measure it.

Backends (chosen by problem size when ``backend="auto"``): GeomLoss ``"tensorized"`` (dense cost
matrices) for small clouds, GeomLoss ``"online"`` (KeOps, no quadratic memory) for large ones when
KeOps is available, else ``"tensorized"`` in chunks of the batch.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["SinkhornDivergence", "blur_heuristic", "point_cloud_diameter"]

#: dense cost matrices above this many bytes per batched call switch ``auto`` away from "tensorized"
_TENSORIZED_BYTES = 1 << 30


@functools.lru_cache(maxsize=1)
def _keops_available() -> bool:
    try:
        import pykeops  # noqa: F401
        from pykeops.torch import LazyTensor  # noqa: F401
    except Exception:  # pragma: no cover - depends on the installation
        return False
    return True


@functools.lru_cache(maxsize=1)
def _samples_loss_class():
    # importing geomloss imports KeOps, which prints a CUDA notice on CPU-only machines
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        from geomloss import SamplesLoss
    return SamplesLoss


def blur_heuristic(
    snapshots: Sequence[Tensor],
    *,
    scale: float = 0.5,
    n_snapshots: int = 8,
    n_pairs: int = 4096,
    bounds: tuple[float, float] = (1e-3, 10.0),
    generator: torch.Generator | None = None,
) -> float:
    """``scale`` times the median distance between random pairs of points of the same snapshot.

    Pairs are drawn from up to ``n_snapshots`` snapshots (spread over the time course); the result
    is clamped to ``bounds``. This is the data-driven blur of the paper's code.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> b = blur_heuristic([torch.randn(500, 2) for _ in range(3)], generator=g)
    >>> 0.5 < b < 1.0
    True
    """
    idx = torch.linspace(0, len(snapshots) - 1, steps=min(n_snapshots, len(snapshots))).round().long().unique()
    dists = []
    for i in idx.tolist():
        x = snapshots[i].detach().to("cpu", torch.float64)
        n = x.shape[0]
        if n < 2:
            continue
        a = torch.randint(0, n, (n_pairs,), generator=generator)
        b = torch.randint(0, n - 1, (n_pairs,), generator=generator)
        b = b + (b >= a).long()  # distinct partner
        dists.append((x[a] - x[b]).norm(dim=-1))
    if not dists:
        return float(bounds[0])
    med = float(torch.cat(dists).median())
    return float(min(max(scale * med, bounds[0]), bounds[1]))


def point_cloud_diameter(snapshots: Sequence[Tensor]) -> float:
    """Length of the diagonal of the bounding box of all points (GeomLoss' ``max_diameter``)."""
    lo = torch.stack([s.detach().amin(0) for s in snapshots]).amin(0)
    hi = torch.stack([s.detach().amax(0) for s in snapshots]).amax(0)
    return float((hi - lo).norm().clamp_min(1e-6))


class SinkhornDivergence:
    r"""Batched debiased Sinkhorn divergence.

    Parameters
    ----------
    p
        Exponent of the ground cost :math:`\tfrac1p\|x-y\|^p` (1 or 2).
    blur
        Target entropic blur; :math:`\varepsilon = \mathrm{blur}^p`.
    scaling
        Ratio of successive blurs in the :math:`\varepsilon`-annealing (GeomLoss ``scaling``).
    diameter
        Starting scale of the annealing; ``None`` lets GeomLoss measure it at every call.
    backend
        ``"auto"``, ``"tensorized"`` or ``"online"``.

    Examples
    --------
    >>> import torch
    >>> loss = SinkhornDivergence(p=2, blur=0.05, diameter=4.0)
    >>> x = torch.randn(3, 100, 2)
    >>> bool((loss(x, x).abs() < 1e-4).all())
    True
    """

    def __init__(
        self,
        p: int = 2,
        blur: float = 0.05,
        scaling: float = 0.9,
        diameter: float | None = None,
        backend: str = "auto",
    ) -> None:
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2, got {p}")
        if not (blur > 0 and math.isfinite(blur)):
            raise ValueError(f"blur must be a positive number, got {blur}")
        if not 0 < scaling < 1:
            raise ValueError(f"scaling must lie in (0, 1), got {scaling}")
        if backend not in ("auto", "tensorized", "online"):
            raise ValueError(f"unknown backend {backend!r}; use 'auto', 'tensorized' or 'online'")
        self.p, self.blur, self.scaling, self.diameter, self.backend = int(p), float(blur), float(scaling), diameter, backend
        self._losses: dict[str, object] = {}

    def _loss(self, backend: str):
        if backend not in self._losses:
            SamplesLoss = _samples_loss_class()

            self._losses[backend] = SamplesLoss(
                "sinkhorn", p=self.p, blur=self.blur, scaling=self.scaling, debias=True,
                backend=backend, diameter=self.diameter,
            )
        return self._losses[backend]

    def choose_backend(self, batch: int, n: int, m: int, itemsize: int = 4) -> str:
        """The backend ``auto`` picks for ``batch`` problems of ``n`` against ``m`` points."""
        if self.backend != "auto":
            return self.backend
        dense = batch * (n + m) ** 2 * itemsize
        if dense <= _TENSORIZED_BYTES or not _keops_available():
            return "tensorized"
        return "online"

    def __call__(self, x: Tensor, y: Tensor, a: Tensor | None = None, b: Tensor | None = None) -> Tensor:
        """Divergences ``(B,)`` between clouds ``x (B, n, d)`` and ``y (B, m, d)``.

        ``a`` and ``b`` are optional weights ``(B, n)`` and ``(B, m)`` summing to one per row
        (uniform by default); zero weights mark padding points.
        """
        if x.ndim != 3 or y.ndim != 3 or x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
            raise ValueError(f"expected x (B, n, d) and y (B, m, d), got {tuple(x.shape)} and {tuple(y.shape)}")
        B, n, _ = x.shape
        m = y.shape[1]
        if a is None:
            a = torch.full((B, n), 1.0 / n, dtype=x.dtype, device=x.device)
        if b is None:
            b = torch.full((B, m), 1.0 / m, dtype=y.dtype, device=y.device)
        backend = self.choose_backend(B, n, m, x.element_size())
        if backend == "tensorized" and self.backend == "auto" and B > 1:
            per = (n + m) ** 2 * x.element_size()
            chunk = max(1, _TENSORIZED_BYTES // per)
            if chunk < B:
                loss = self._loss("tensorized")
                return torch.cat([loss(a[i : i + chunk], x[i : i + chunk], b[i : i + chunk], y[i : i + chunk]) for i in range(0, B, chunk)])
        return self._loss(backend)(a, x, b, y)
