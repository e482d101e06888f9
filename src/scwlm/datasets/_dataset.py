"""The :class:`Dataset` container returned by every simulator and loader, plus argument checks."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = ["Dataset"]


@dataclass(eq=False)
class Dataset:
    """Snapshots of a population, their times, the velocities where known, and metadata.

    Unpacks as ``(snapshots, times, velocities)``, so a data set can be passed straight to
    :func:`scwlm.fit` with ``scwlm.fit(*ds)`` or ``snaps, times, vels = ds``.

    Parameters
    ----------
    snapshots
        One ``(n_i, d)`` array per time (converted to float64); sizes may differ.
    times
        Strictly increasing times, one per snapshot (converted to a float64 array).
    velocities
        ``None`` (no velocities at all) or a sequence aligned with ``snapshots`` whose entries are
        ``None`` (unknown) or ``(n_i, d)`` arrays (converted to float64).
    meta
        Free-form metadata: settings, provenance, standardisation constants, evaluation protocol.

    Raises
    ------
    ValueError
        If a snapshot is not 2-D, the dimensions differ, the times are not strictly increasing or
        not one per snapshot, or a velocity array does not have its snapshot's shape.

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset([np.zeros((3, 2)), np.ones((4, 2))], [0.0, 1.0], [np.zeros((3, 2)), None])
    >>> ds
    Dataset(2 snapshots of dim 2, sizes 3..4 (7 points), t in [0, 1], velocities at 1/2 snapshots)
    >>> snaps, times, vels = ds
    >>> times.dtype, vels[1] is None
    (dtype('float64'), True)
    """

    snapshots: list[np.ndarray]
    times: np.ndarray
    velocities: list[np.ndarray | None] = field(default=None)  # type: ignore[assignment]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.snapshots, np.ndarray) and self.snapshots.ndim == 3:
            self.snapshots = list(self.snapshots)
        snaps = [np.asarray(s, dtype=np.float64) for s in self.snapshots]
        if not snaps:
            raise ValueError("a Dataset needs at least one snapshot")
        for i, s in enumerate(snaps):
            if s.ndim != 2:
                raise ValueError(f"snapshot {i} must be a 2-D array (n_points, dim), got shape {s.shape}")
        dims = {s.shape[1] for s in snaps}
        if len(dims) != 1:
            raise ValueError(f"all snapshots must have the same dimension, got {[s.shape[1] for s in snaps]}")
        times = np.asarray(self.times, dtype=np.float64)
        if times.ndim != 1 or times.shape[0] != len(snaps):
            raise ValueError(f"times must be a 1-D array with one entry per snapshot ({len(snaps)}), "
                             f"got shape {times.shape}")
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise ValueError(f"times must be finite and strictly increasing, got {times.tolist()}")
        vels_in = self.velocities
        if vels_in is None:
            vels: list[np.ndarray | None] = [None] * len(snaps)
        else:
            vels_in = list(vels_in)
            if len(vels_in) != len(snaps):
                raise ValueError(f"velocities must have one entry (array or None) per snapshot: "
                                 f"got {len(vels_in)} for {len(snaps)} snapshots")
            vels = []
            for i, (v, s) in enumerate(zip(vels_in, snaps)):
                if v is None:
                    vels.append(None)
                    continue
                v = np.asarray(v, dtype=np.float64)
                if v.shape != s.shape:
                    raise ValueError(f"velocities[{i}] has shape {v.shape} but snapshot {i} has shape {s.shape}")
                vels.append(v)
        self.snapshots = snaps
        self.times = times
        self.velocities = vels
        self.meta = dict(self.meta)

    # -- unpacking -------------------------------------------------------------------------------
    def astuple(self) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray | None]]:
        """Return ``(snapshots, times, velocities)`` (the arrays themselves, not copies).

        Returns
        -------
        tuple
            ``(snapshots, times, velocities)``, ready for ``scwlm.fit(*ds.astuple())``.

        Examples
        --------
        >>> import numpy as np
        >>> len(Dataset([np.zeros((2, 2))], [0.0]).astuple())
        3
        """
        return self.snapshots, self.times, self.velocities

    def __iter__(self) -> Iterator[Any]:
        return iter(self.astuple())

    # -- summaries -------------------------------------------------------------------------------
    @property
    def n_snapshots(self) -> int:
        """Number of snapshots (times)."""
        return len(self.snapshots)

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the points."""
        return int(self.snapshots[0].shape[1])

    @property
    def sizes(self) -> list[int]:
        """Number of points in each snapshot."""
        return [int(s.shape[0]) for s in self.snapshots]

    def __repr__(self) -> str:
        sizes = self.sizes
        size_txt = f"{sizes[0]} points each" if len(set(sizes)) == 1 else \
            f"sizes {min(sizes)}..{max(sizes)} ({sum(sizes)} points)"
        n_vel = sum(v is not None for v in self.velocities)
        name = self.meta.get("name")
        head = f"{name}: " if name else ""
        return (f"Dataset({head}{self.n_snapshots} snapshots of dim {self.dim}, {size_txt}, "
                f"t in [{self.times[0]:g}, {self.times[-1]:g}], velocities at {n_vel}/{self.n_snapshots} snapshots)")

    def select(self, indices: Sequence[int]) -> "Dataset":
        """Keep only some snapshots (e.g. the training marginals of a leave-one-out protocol).

        Parameters
        ----------
        indices
            Snapshot indices, in increasing order.

        Returns
        -------
        Dataset
            A new data set sharing the arrays; ``meta["selected"]`` records ``indices``.

        Raises
        ------
        ValueError
            If ``indices`` is empty, not strictly increasing or out of range.

        Examples
        --------
        >>> import numpy as np
        >>> ds = Dataset([np.zeros((2, 2))] * 3, [0.0, 1.0, 2.0])
        >>> ds.select([0, 2]).times
        array([0., 2.])
        """
        idx = [int(i) for i in indices]
        if not idx or any(b <= a for a, b in zip(idx, idx[1:])) or idx[0] < 0 or idx[-1] >= self.n_snapshots:
            raise ValueError(f"indices must be non-empty, strictly increasing and within "
                             f"[0, {self.n_snapshots}), got {idx}")
        meta = dict(self.meta)
        meta["selected"] = idx
        return Dataset([self.snapshots[i] for i in idx], self.times[idx],
                       [self.velocities[i] for i in idx], meta)


# -- argument checks shared by the simulators -------------------------------------------------------
def _int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _float(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if nonnegative and v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def _seed(random_state: Any) -> int | None:
    if random_state is None:
        return None
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise ValueError(f"random_state must be an int or None, got {random_state!r}")
    return int(random_state)
