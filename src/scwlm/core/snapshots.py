"""A validated container for ragged snapshots, their times and optional velocities.

Every public entry point funnels its inputs through :func:`as_snapshots`, so bad input fails at
the boundary with a :class:`ValueError` that names the offending snapshot, row or key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["Snapshots", "as_snapshots", "as_points", "check_dtype_range"]


def _to_float64(x: Any, what: str) -> Tensor:
    if isinstance(x, Tensor):
        t = x.detach().to("cpu")
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} could not be converted to a numeric array: {exc}") from None
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise ValueError(f"{what} must be a real numeric array, got dtype {t.dtype}")
    return t.to(torch.float64)


def _check_finite(t: Tensor, what: str) -> None:
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        row = int(bad.reshape(t.shape[0], -1).any(-1).nonzero()[0, 0]) if t.ndim >= 1 and t.shape[0] else 0
        raise ValueError(f"{what} contains non-finite values (NaN or inf), first at row {row}")


def as_points(x: Any, what: str = "x", dim: int | None = None) -> Tensor:
    """Validate one point cloud ``(n, d)``: numeric, 2-D, non-empty, finite, of dimension ``dim``."""
    t = _to_float64(x, what)
    if t.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n_points, dim), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 points)")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{what} has dimension {t.shape[1]}, expected {dim}")
    _check_finite(t, what)
    return t


@dataclass(frozen=True)
class Snapshots:
    """Snapshots ``X_0..X_M`` (clouds of possibly different sizes), times and velocities.

    Attributes
    ----------
    points
        One float64 tensor ``(n_i, d)`` per time.
    times
        Strictly increasing float64 tensor ``(M + 1,)``.
    velocities
        One entry per time: ``None`` or a float64 tensor of the shape of the matching snapshot.
    """

    points: tuple[Tensor, ...]
    times: Tensor
    velocities: tuple[Tensor | None, ...]

    @property
    def dim(self) -> int:
        """Dimension of the points."""
        return int(self.points[0].shape[1])

    @property
    def sizes(self) -> list[int]:
        """Number of points of every snapshot."""
        return [int(p.shape[0]) for p in self.points]

    def __len__(self) -> int:
        return len(self.points)


def _split_sequence(obj: Any, what: str) -> list[Any]:
    if isinstance(obj, (Tensor, np.ndarray)):
        if obj.ndim == 3:
            return list(obj)
        raise ValueError(f"{what} must be a sequence of (n_i, d) arrays or one (T, n, d) array, got an array of shape {tuple(obj.shape)}")
    if isinstance(obj, (str, bytes)) or not isinstance(obj, Sequence):
        raise ValueError(f"{what} must be a sequence of (n_i, d) arrays, got {type(obj).__name__}")
    return list(obj)


def as_snapshots(snapshots: Any, times: Any, velocities: Any = None, *, min_snapshots: int = 2) -> Snapshots:
    """Validate snapshots, times and velocities and return a :class:`Snapshots`.

    Parameters
    ----------
    snapshots
        A sequence of ``(n_i, d)`` arrays (NumPy or torch) or one ``(T, n, d)`` array.
    times
        Strictly increasing finite times, one per snapshot.
    velocities
        ``None``; an ``(n_0, d)`` array of velocities of the first snapshot's points; or a
        sequence aligned with ``snapshots`` whose entries are ``None`` or ``(n_i, d)`` arrays.
    min_snapshots
        Minimum number of snapshots (2 for training).

    Raises
    ------
    ValueError
        Naming the offending snapshot / velocity index and the problem: too few snapshots,
        times not strictly increasing or duplicated, non-finite values, empty snapshots,
        dimension mismatch, velocities whose shape does not match their snapshot.

    Examples
    --------
    >>> import numpy as np
    >>> s = as_snapshots([np.zeros((3, 2)), np.ones((4, 2))], [0.0, 1.0])
    >>> s.sizes, s.dim
    ([3, 4], 2)
    """
    pts = _split_sequence(snapshots, "snapshots")
    if len(pts) < min_snapshots:
        raise ValueError(f"need at least {min_snapshots} snapshots, got {len(pts)}")
    points = []
    for i, p in enumerate(pts):
        t = _to_float64(p, f"snapshot {i}")
        if t.ndim != 2:
            raise ValueError(f"snapshot {i} must be a 2-D array (n_points, dim), got shape {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError(f"snapshot {i} is empty (0 points)")
        if points and t.shape[1] != points[0].shape[1]:
            raise ValueError(f"snapshot {i} has dimension {t.shape[1]}, but snapshot 0 has dimension {points[0].shape[1]}")
        _check_finite(t, f"snapshot {i}")
        points.append(t)

    tt = _to_float64(times, "times").reshape(-1) if not np.isscalar(times) else None
    if tt is None:
        raise ValueError("times must be a sequence with one time per snapshot")
    if tt.numel() != len(points):
        raise ValueError(f"got {tt.numel()} times for {len(points)} snapshots")
    if not bool(torch.isfinite(tt).all()):
        raise ValueError(f"times contain non-finite values: {tt.tolist()}")
    for i in range(len(tt) - 1):
        if tt[i + 1] == tt[i]:
            raise ValueError(f"duplicate time {float(tt[i])} at indices {i} and {i + 1}; times must be strictly increasing")
        if tt[i + 1] < tt[i]:
            raise ValueError(
                f"times must be strictly increasing, but times[{i}]={float(tt[i])} > times[{i + 1}]={float(tt[i + 1])}; "
                "sort the snapshots by time"
            )

    if velocities is None:
        vels: list[Tensor | None] = [None] * len(points)
    else:
        is_array = isinstance(velocities, (Tensor, np.ndarray))
        if is_array and velocities.ndim == 2:
            vlist: list[Any] = [velocities] + [None] * (len(points) - 1)
        else:
            vlist = _split_sequence(velocities, "velocities")
            if len(vlist) != len(points):
                raise ValueError(f"got {len(vlist)} velocity entries for {len(points)} snapshots (use None for snapshots without velocities)")
        vels = []
        for i, (v, p) in enumerate(zip(vlist, points)):
            if v is None:
                vels.append(None)
                continue
            tv = _to_float64(v, f"velocities[{i}]")
            if tuple(tv.shape) != tuple(p.shape):
                raise ValueError(
                    f"velocities[{i}] has shape {tuple(tv.shape)} but snapshot {i} has shape {tuple(p.shape)}; "
                    "velocities must have one row per point of their snapshot"
                )
            _check_finite(tv, f"velocities[{i}]")
            vels.append(tv)
    return Snapshots(tuple(points), tt, tuple(vels))


def check_dtype_range(snaps: Snapshots, dtype: str, what: str = "") -> None:
    """``ValueError`` naming the snapshot when its values, or their squared distances, overflow ``dtype``.

    Training in float32 computes squared distances (the Sinkhorn cost) and squared norms; data
    whose squares exceed float32's range (about 3.4e38, i.e. coordinates beyond about 1e19) would
    only fail later as a diverged loss. Nothing is checked for ``"float64"``.

    Examples
    --------
    >>> import numpy as np
    >>> check_dtype_range(as_snapshots([np.zeros((2, 1)), np.full((2, 1), 1e30)], [0, 1]), "float32")
    Traceback (most recent call last):
    ...
    ValueError: snapshot 1 has values up to 1e+30, whose squares (squared distances in the Sinkhorn loss) overflow float32 (max 3.4e+38); rescale the data (e.g. standardise it) or fit with dtype='float64'
    """
    if dtype == "float64":
        return
    top = float(torch.finfo(getattr(torch, dtype)).max)
    prefix = f"{what}: " if what else ""
    entries = [(f"snapshot {i}", p) for i, p in enumerate(snaps.points)]
    entries += [(f"velocities[{i}]", v) for i, v in enumerate(snaps.velocities) if v is not None]
    for name, x in entries:
        big = float(x.abs().max())
        if big > top:
            raise ValueError(f"{prefix}{name} has values up to {big:.3g}, beyond the range of {dtype} (max {top:.3g}); "
                             f"rescale the data or fit with dtype='float64'")
        if name.startswith("snapshot"):
            # squared norms and squared distances: |x|^2 and |x - y|^2 <= (2 max|x|)^2 per coordinate
            sq = float((x.abs().amax(0) ** 2).sum()) * 4.0
            if sq > top:
                raise ValueError(f"{prefix}{name} has values up to {big:.3g}, whose squares (squared distances in the "
                                 f"Sinkhorn loss) overflow {dtype} (max {top:.3g}); rescale the data (e.g. standardise it) "
                                 f"or fit with dtype='float64'")
