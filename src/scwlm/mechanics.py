"""The :class:`Mechanics` object: a fitted WLM model (array API)."""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .core.config import WLMConfig
from .core.integrate import leapfrog
from .core.potential import SetPotential
from .core.protocols import forecast, interpolate
from .core.snapshots import as_points, as_snapshots
from .core.trainer import TrainResult

__all__ = ["Mechanics", "MechanicsEnsemble", "load"]

_FORMAT = 1


#: device names :func:`_resolve_device` accepts (``"cuda:N"`` picks the N-th GPU)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")

#: most integrator steps one :meth:`Mechanics.rollout` may take (guards against times that
#: would run for hours or overflow, e.g. ``times=[1e7]`` with ``dt=0.2``)
MAX_ROLLOUT_STEPS = 1_000_000

#: default ``chunk_size`` of :meth:`Mechanics.rollout` / :meth:`Mechanics.evaluate`: larger
#: populations are rolled out in chunks of at most this many cells. Equal to the largest cloud on
#: which :mod:`scwlm.core.protocols` computes the exact W1 (5,000), so a snapshot that is small
#: enough for the exact W1 is also rolled out as one population, as before chunking existed (the
#: paper's data sets, e.g. the embryoid body's 2,381-4,163 cells per day, are unchanged). The
#: attention of one chunk costs ``heads * chunk_size**2`` operations per block; with autograd forces
#: also as many numbers in memory (about 0.4 GB per block for the default 4 heads in float32),
#: with the analytic force (``force_impl="auto"`` at this size) only a block of rows of them.
ROLLOUT_CHUNK_SIZE = 5_000


def _chunk_size(value: Any) -> int | None:
    """``None`` or a positive integer, else ``ValueError`` naming ``chunk_size``."""
    if value is None:
        return None
    return _positive_int(value, "chunk_size")


def _seed(value: Any, what: str = "random_state") -> int:
    """A non-negative integer seed, else ``ValueError`` naming ``what``."""
    out = _integer(value, what, "a non-negative integer")
    if out < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return out


def rollout_chunks(n: int, chunk_size: int | None = ROLLOUT_CHUNK_SIZE, random_state: int = 0) -> list[np.ndarray]:
    """The chunks in which :meth:`Mechanics.rollout` simulates ``n`` cells: a list of index arrays.

    ``chunk_size=None`` or ``n <= chunk_size``: one chunk, ``arange(n)`` (all cells at once).
    Otherwise a random partition: the cells are shuffled with
    ``numpy.random.default_rng(random_state)`` and cut into ``ceil(n / chunk_size)`` chunks of
    (almost) equal size (sizes differ by at most one, none exceeds ``chunk_size``, so no chunk is a
    small remainder); the indices inside each chunk are sorted, so a chunk is simulated as
    ``x0[chunk]`` in the cells' own order.

    Parameters
    ----------
    n
        Number of cells.
    chunk_size
        Largest number of cells simulated together (``None``: all).
    random_state
        Seed of the partition (a non-negative integer).

    Returns
    -------
    list of numpy.ndarray
        Disjoint sorted ``int64`` index arrays whose union is ``range(n)``.

    Examples
    --------
    >>> [c.tolist() for c in rollout_chunks(5, chunk_size=None)]
    [[0, 1, 2, 3, 4]]
    >>> chunks = rollout_chunks(10, chunk_size=4)
    >>> [len(c) for c in chunks], sorted(np.concatenate(chunks).tolist()) == list(range(10))
    ([4, 3, 3], True)
    """
    n = _integer(n, "n", "a non-negative integer")
    if n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    chunk_size = _chunk_size(chunk_size)
    random_state = _seed(random_state)
    if chunk_size is None or n <= chunk_size:
        return [np.arange(n, dtype=np.int64)]
    perm = np.random.default_rng(random_state).permutation(n)
    return [np.sort(c).astype(np.int64) for c in np.array_split(perm, -(-n // chunk_size))]


def _resolve_device(device: Any, what: str = "device") -> torch.device:
    """The torch device for ``device``, or a ``ValueError`` naming ``what`` and the valid choices.

    The one place devices are checked (:func:`scwlm.fit`, :func:`scwlm.fit_many`, :func:`scwlm.load`,
    :meth:`Mechanics.to` and the ``scwlm`` command all come here).
    """
    choices = ", ".join(repr(c) for c in DEVICE_CHOICES)
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            raise ValueError(f"{what} must be one of {choices}, got {device!r}") from None
    else:
        raise ValueError(f"{what} must be one of {choices} (a string), got {device!r}")
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what}={device!r} but CUDA is not available on this machine "
                             f"(torch {torch.__version__}); use {what}='cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{what}={device!r} but only {torch.cuda.device_count()} CUDA device(s) are visible")
        return dev
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{what}={device!r} but MPS is not available on this machine; use {what}='cpu' or 'auto'")
        return dev
    raise ValueError(f"{what} must be one of {choices}, got {device!r}")


def _real(value: Any, what: str) -> float:
    """A finite real number from ``value`` (numbers, NumPy scalars, 0-d arrays), else ``ValueError``."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    try:
        arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    except Exception:  # noqa: BLE001 - any object numpy cannot read
        raise ValueError(f"{what} must be a finite number, got {value!r}") from None
    if arr.ndim != 0 or arr.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    out = float(arr)
    if not math.isfinite(out):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return out


def _integer(value: Any, what: str, kind: str = "an integer") -> int:
    """An integer (integral floats such as ``5.0`` included), else ``ValueError`` naming ``what``."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if (isinstance(value, (numbers.Real, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value)) and float(value).is_integer()):
        return int(value)
    raise ValueError(f"{what} must be {kind}, got {value!r}")


def _positive_int(value: Any, what: str) -> int:
    """A positive integer (integral floats such as ``5.0`` included), else ``ValueError``."""
    out = _integer(value, what, "a positive integer")
    if out < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return out


def _indices(value: Any, what: str) -> list[int]:
    """One index or a sequence of indices, as a list of ints, else ``ValueError`` naming ``what``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray, numbers.Integral, np.integer)):
        raise ValueError(f"{what} must be an index or a sequence of indices, got {value!r}")
    items = np.asarray(value, dtype=object).reshape(-1).tolist() if not isinstance(value, (numbers.Integral, np.integer)) else [value]
    return [_integer(i, what, "an index or a sequence of indices") for i in items]


def _check_range(x: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    """``ValueError`` when finite float64 values of ``x`` would overflow ``dtype``."""
    if dtype == torch.float64 or x.numel() == 0:
        return
    big = float(x.abs().max())
    if big > torch.finfo(dtype).max:
        raise ValueError(f"{what} has values up to {big:.3g}, beyond the range of the model's {str(dtype).replace('torch.', '')} "
                         f"(max {torch.finfo(dtype).max:.3g}); rescale the data or use a float64 model")


class Mechanics:
    r"""A learned population mechanics: potential :math:`\Psi_\theta`, friction :math:`\gamma`, integrator.

    Particles follow :math:`\dot x = v`, :math:`\dot v = -\nabla_x \Psi_\theta(x_1..x_N[, t]) - \gamma v`
    discretised with the damped leapfrog of the fit (see :mod:`scwlm.core.integrate`). Obtain one
    from :func:`scwlm.fit` or :func:`scwlm.load`.

    Attributes
    ----------
    network
        The :class:`~scwlm.core.potential.SetPotential` (EMA weights when EMA was on), in eval mode.
    config
        The :class:`~scwlm.WLMConfig` of the fit.
    dt
        Time-grid step; inference uses ``substeps`` integrator steps per ``dt``.
    history
        ``{"loss": (n_iter,), "friction": (n_iter,)}`` training curves.
    info
        Fit metadata: blur, diameter, seed, training times, ...

    Examples
    --------
    >>> import numpy as np, scwlm
    >>> rng = np.random.default_rng(0)
    >>> snaps = [rng.normal(size=(30, 2)) + t for t in range(3)]
    >>> mech = scwlm.fit(snaps, [0.0, 1.0, 2.0], n_iter=3, hidden=8, heads=1, blocks=1, ffn=8, progress=False)
    >>> mech.rollout(snaps[0], t0=0.0, times=[1.0, 2.0]).shape
    (2, 30, 2)
    >>> mech.history["loss"].shape
    (3,)
    """

    def __init__(
        self,
        network: SetPotential,
        friction: float,
        *,
        config: WLMConfig,
        dt: float,
        history: dict[str, np.ndarray] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        if network.n_models != 1:
            raise ValueError("a Mechanics holds a single model; use network.select(i) for ensembles")
        self.network = network.eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self._friction = float(friction)
        self.config = config
        self.dt = float(dt)
        self.history = {k: np.asarray(v, dtype=np.float64) for k, v in (history or {}).items()}
        self.info = dict(info or {})

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_train_result(cls, result: TrainResult, index: int, config: WLMConfig, extra_info: dict | None = None) -> "Mechanics":
        """The ``index``-th model of a training run, with EMA weights when EMA was on."""
        net = result.evaluation_network().select(index)
        info = dict(result.info)
        info["seed"] = info.pop("seeds")[index]
        for key in ("blur", "diameter", "dt", "step"):  # one value per model
            info[key] = info[key][index]
        if "horizon_ramp" in info:  # one value per model (set by train; results built by hand may lack it)
            info["horizon_ramp"] = info["horizon_ramp"][index]
        if "warm_start" in info:  # this model's warm-start losses and decision
            info["warm_start"] = {k: v[index] for k, v in info["warm_start"].items()}
        info.update(extra_info or {})
        hist = {k: v[:, index] for k, v in result.history.items()}
        return cls(net, result.friction.values()[index], config=config, dt=info["dt"], history=hist, info=info)

    # ------------------------------------------------------------------ properties
    @property
    def friction(self) -> float:
        """Learned (or fixed) friction :math:`\\gamma`."""
        return self._friction

    @property
    def dim(self) -> int:
        """Dimension of the particles."""
        return self.network.dim

    @property
    def device(self) -> torch.device:
        """Device of the network's weights."""
        return next(self.network.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point type of the network's weights."""
        return next(self.network.parameters()).dtype

    def to(self, device: str | torch.device) -> "Mechanics":
        """Move the model to ``device`` (in place) and return it.

        Examples
        --------
        >>> mech.to("cpu").device.type
        'cpu'
        """
        self.network.to(_resolve_device(device))
        return self

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Mechanics(dim={self.dim}, friction={self.friction:.4g}, dt={self.dt:g}, hidden={c.hidden}, heads={c.heads}, "
            f"blocks={c.blocks}, ffn={c.ffn}, time_features={c.time_features}, integrator={c.integrator!r}, "
            f"iterations={len(self.history.get('loss', []))})"
        )

    # ------------------------------------------------------------------ physics
    def _tensor(self, x: Any, what: str) -> torch.Tensor:
        pts = as_points(x, what, dim=self.dim)
        _check_range(pts, self.dtype, what)
        return pts.to(self.device, self.dtype).unsqueeze(0)

    def _time(self, t: float | None) -> float | None:
        if t is not None:
            t = _real(t, "t")
        if self.network.time_features and t is None:
            raise ValueError("this model depends on time (time_features > 0): pass t")
        return t

    def forces(self, x: Any, t: float | None = None) -> np.ndarray:
        """Forces :math:`-\\nabla_{x_j}\\Psi_\\theta` on each particle of the cloud ``x (n, d)``.

        Examples
        --------
        >>> mech.forces(snaps[0]).shape
        (30, 2)
        """
        f = self.network.forces(self._tensor(x, "x"), self._time(t), impl=self.config.force_impl)
        return f[0].detach().cpu().numpy()

    def potential(self, x: Any, t: float | None = None) -> float:
        """Population potential energy :math:`\\Psi_\\theta(x_1..x_n)` of the cloud ``x (n, d)``.

        Examples
        --------
        >>> isinstance(mech.potential(snaps[0]), float)
        True
        """
        with torch.no_grad():
            return float(self.network(self._tensor(x, "x"), self._time(t))[0])

    def rollout(
        self,
        x0: Any,
        v0: Any = None,
        *,
        t0: float,
        times: Sequence[float],
        substeps: int | None = None,
        chunk_size: int | None = ROLLOUT_CHUNK_SIZE,
        random_state: int = 0,
    ) -> np.ndarray:
        """Simulate the particles ``x0`` (velocities ``v0``, zero by default) from ``t0`` to ``times``.

        The potential is a population energy: every particle feels the others through attention,
        whose cost is quadratic in their number. Populations of more than ``chunk_size`` cells
        are therefore split into chunks (:func:`rollout_chunks`: a random partition seeded by
        ``random_state`` into chunks of (almost) equal size, at most ``chunk_size`` each), and
        every chunk is rolled out *as its own population*: its cells interact only with the cells
        of their chunk. The rule is: **a rollout of a subset is the rollout of that subset as a
        population** (here, and whenever a subset of cells is passed in), so each chunk's
        positions are exactly those of ``rollout(x0[chunk], v0[chunk], chunk_size=None)``. A
        random partition (rather than contiguous blocks of rows, which in an AnnData often follow
        clusters, samples or batches) makes every chunk a uniform random subset of the population,
        so chunks of ~``chunk_size`` cells are statistically like the training minibatches of
        ``particles_per_batch`` cells (also uniform random subsets), with the smaller subsampling
        bias of the larger set. With ``chunk_size=None`` or ``len(x0) <= chunk_size`` all cells are
        rolled out together, bit for bit as without chunking. Memory is that of one chunk.

        Parameters
        ----------
        x0, v0
            Positions and velocities ``(n, d)``.
        t0
            Time of ``x0``.
        times
            Non-decreasing times ``>= t0`` at which positions are returned.
        substeps
            Integrator steps per ``dt`` (default ``config.eval_substeps``, 5 as in the paper).
            The integration grid is ``t0 + k * dt / substeps``; an output time between two grid
            points is reached by one partial step from the grid point before it (the trajectory
            itself does not depend on which times are requested).
        chunk_size
            Largest number of cells rolled out as one population (default
            :data:`ROLLOUT_CHUNK_SIZE`, 5,000; ``None``: all cells at once, whatever their
            number).
        random_state
            Seed of the random partition into chunks (used only when there is more than one chunk).

        Returns
        -------
        numpy.ndarray
            Positions ``(len(times), n, d)``, in the order of ``x0`` whatever the chunks.

        Examples
        --------
        >>> pred = mech.rollout(snaps[0], t0=0.0, times=[0.5, 1.0, 2.0])
        >>> pred.shape
        (3, 30, 2)

        In chunks of at most 10 cells (3 chunks of 10), each the rollout of its cells alone:

        >>> parts = mech.rollout(snaps[0], t0=0.0, times=[1.0], chunk_size=10)
        >>> first = rollout_chunks(30, chunk_size=10)[0]
        >>> bool((parts[:, first] == mech.rollout(snaps[0][first], t0=0.0, times=[1.0], chunk_size=None)).all())
        True
        """
        x = self._tensor(x0, "x0")
        v = torch.zeros_like(x) if v0 is None else self._tensor(v0, "v0")
        if v.shape != x.shape:
            raise ValueError(f"v0 has shape {tuple(v.shape[1:])} but x0 has shape {tuple(x.shape[1:])}")
        substeps = self.config.eval_substeps if substeps is None else _positive_int(substeps, "substeps")
        chunks = rollout_chunks(x.shape[1], chunk_size, random_state)
        t0 = _real(t0, "t0")
        tt = _times(times)
        if (np.diff(tt) < 0).any():
            raise ValueError("times must be non-decreasing")
        if tt[0] < t0:
            raise ValueError(f"times must be >= t0={t0} (the model integrates forward), got {tt[0]}")
        # a uniform grid t0 + k h: requesting more output times never changes the others; a time
        # between grid points is reached by one partial step from the grid point before it
        h = self.dt / substeps
        steps = (float(tt[-1]) - t0) / h
        if not steps <= MAX_ROLLOUT_STEPS:
            raise ValueError(
                f"times up to {float(tt[-1]):.6g} from t0={t0:.6g} imply {steps:.3g} integrator steps "
                f"(step dt/substeps = {self.dt:g}/{substeps}), more than MAX_ROLLOUT_STEPS={MAX_ROLLOUT_STEPS:,}; "
                "ask for earlier `times`, lower `substeps`, or use a model fitted with a larger `dt`"
            )
        grid, branches = [], {}
        for t in tt:
            r = (t - float(t0)) / h
            k = int(round(r)) if abs(r - round(r)) <= 1e-6 * max(1.0, r) else int(math.floor(r))
            delta = 0.0 if abs(r - round(r)) <= 1e-6 * max(1.0, r) else float(t - float(t0) - k * h)
            grid.append((k, delta))
            if delta:
                branches.setdefault(k, []).append(delta)
        n = max(k for k, _ in grid)
        record = sorted({k for k, d in grid if not d})
        net, impl, t_dep = self.network, self.config.force_impl, bool(self.network.time_features)

        def force(xx, t):
            return net.forces(xx, t if t_dep else None, impl=impl)

        def simulate(xx, vv) -> np.ndarray:  # one population
            with torch.no_grad():
                out = leapfrog(
                    force, xx, vv, steps=torch.full((n,), h, dtype=self.dtype), gamma=self.friction, t0=float(t0),
                    scheme=self.config.integrator, record=record, branches=branches or None,
                )
            at = dict(zip(record, out.positions))
            return np.stack([(at[k] if not d else out.branches[(k, d)])[0].detach().cpu().numpy() for k, d in grid])

        if len(chunks) == 1:
            return simulate(x, v)
        result = None
        for idx in chunks:
            rows = torch.as_tensor(idx, device=x.device)
            part = simulate(x[:, rows], v[:, rows])
            if result is None:
                result = np.empty((part.shape[0], x.shape[1], part.shape[2]), dtype=part.dtype)
            result[:, idx] = part
        return result

    def _simulate(self, substeps, chunk_size=ROLLOUT_CHUNK_SIZE, random_state=0):
        if substeps is not None:
            substeps = _positive_int(substeps, "substeps")
        chunk_size, random_state = _chunk_size(chunk_size), _seed(random_state)

        def simulate(x0, v0, t0, times):
            return self.rollout(x0, v0, t0=t0, times=times, substeps=substeps, chunk_size=chunk_size,
                                random_state=random_state)

        return simulate

    def evaluate(
        self,
        snapshots: Any,
        times: Any,
        velocities: Any = None,
        *,
        protocol: str = "forecast",
        n_train: int | None = None,
        holdout: Sequence[int] | None = None,
        substeps: int | None = None,
        chunk_size: int | None = ROLLOUT_CHUNK_SIZE,
        random_state: int = 0,
    ) -> dict:
        """W1 of the model's predictions against observed snapshots (the paper's protocols).

        Parameters
        ----------
        snapshots, times, velocities
            Observed data, as for :func:`scwlm.fit` (all times, including held-out ones).
        protocol
            ``"forecast"``: one rollout from the first snapshot; W1 at every later time,
            summarised over training times ``1..n_train-1`` and future times ``n_train..``.
            ``"interpolate"``: each held-out snapshot is predicted from the previous observed one
            (with its velocities when given, else zero).
        n_train
            Number of leading snapshots used for training (forecast); default: the snapshots up to
            the last training time of the fit.
        holdout
            Indices of held-out snapshots (interpolate); default: the times not seen in training.
        substeps
            Integrator steps per ``dt`` (default ``config.eval_substeps``).
        chunk_size, random_state
            As in :meth:`rollout`: a snapshot of more than ``chunk_size`` cells is rolled out in
            random chunks (each chunk as its own population); ``None`` rolls out all its cells at once.

        Returns
        -------
        dict
            ``w1`` per time (forecast; NaN at ``t_0``) or per held-out index (interpolate),
            ``train_mean``/``train_se`` and ``test_mean``/``test_se``, and ``w1_method``,
            ``w1_se``, ``w1_settings`` (:mod:`scwlm.core.protocols`: exact or subsampled W1).

        Examples
        --------
        >>> ev = mech.evaluate(snaps, [0.0, 1.0, 2.0], n_train=2)
        >>> ev["train_indices"], ev["test_indices"]
        ([1], [2])
        >>> mech.evaluate(snaps, [0.0, 1.0, 2.0], protocol="interpolate", holdout=[1])["start"]
        [0]
        """
        snaps = as_snapshots(snapshots, times, velocities)
        train_times = [float(t) for t in self.info.get("train_times", [])]
        if protocol == "forecast":
            if n_train is None:
                if not train_times:
                    raise ValueError("pass n_train (the number of leading snapshots used for training)")
                n_train = int((snaps.times <= max(train_times) + 1e-12).sum())
            return forecast(self._simulate(substeps, chunk_size, random_state), snaps, _integer(n_train, "n_train"))
        if protocol == "interpolate":
            if holdout is None:
                if not train_times:
                    raise ValueError("pass holdout (indices of the held-out snapshots)")
                seen = np.asarray(train_times)
                holdout = [i for i, t in enumerate(snaps.times.tolist()) if np.abs(seen - t).min() > 1e-9]
                if not holdout:
                    raise ValueError("all these times were used in training: pass holdout explicitly")
            return interpolate(self._simulate(substeps, chunk_size, random_state), snaps, _indices(holdout, "holdout"))
        raise ValueError(f"unknown protocol {protocol!r}; use 'forecast' or 'interpolate'")

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> dict[str, Any]:
        """Everything needed to rebuild the model, as plain data.

        Returns a dict with ``"meta"`` (a JSON string: architecture, friction, dt, config, info),
        ``"weights"`` (parameter name -> NumPy array) and ``"history"`` (name -> NumPy array).
        This is the form :mod:`scwlm.tl` stores in ``adata.uns`` (it survives ``write_h5ad``).

        Examples
        --------
        >>> state = mech.to_state()
        >>> sorted(state)
        ['history', 'meta', 'weights']
        >>> same = Mechanics.from_state(state)
        >>> bool((same.rollout(snaps[0], t0=0.0, times=[1.0]) == mech.rollout(snaps[0], t0=0.0, times=[1.0])).all())
        True
        """
        meta = {
            "format": _FORMAT,
            "library": "scwlm",
            "architecture": self.network.architecture(),
            "friction": self._friction,
            "dt": self.dt,
            "config": self.config.to_dict(),
            "info": _jsonable(self.info),
            "dtype": str(self.dtype).replace("torch.", ""),
        }
        weights = {k: v.detach().cpu().numpy().copy() for k, v in self.network.state_dict().items()}
        history = {k: np.asarray(v, dtype=np.float64).copy() for k, v in self.history.items()}
        return {"meta": json.dumps(meta), "weights": weights, "history": history}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "cpu", *, source: str = "the model state") -> "Mechanics":
        """Rebuild a model from :meth:`to_state` output (NumPy arrays or tensors).

        Everything is checked before use: a ``ValueError`` naming ``source`` says what is wrong
        (not a scwlm state, an architecture that does not match the weights, a missing or extra
        tensor, non-finite weights, a friction that is not a finite number >= 0, a ``dt`` that is not
        positive and finite). Settings this version does not know load with a ``UserWarning``.

        Examples
        --------
        >>> Mechanics.from_state(mech.to_state()).friction == mech.friction
        True
        """
        try:
            meta = json.loads(state["meta"]) if isinstance(state["meta"], (str, bytes)) else dict(state["meta"])
            weights = dict(state["weights"])
            history = dict(state.get("history", None) or {})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{source}: not a scwlm model state ({type(exc).__name__}: {exc})") from None
        return cls._from_parts(meta, weights, history, device, meta_source=source, weights_source=source)

    @classmethod
    def _from_parts(cls, meta: Any, weights: dict, history: dict, device, *, meta_source: str, weights_source: str) -> "Mechanics":
        if not isinstance(meta, dict) or meta.get("library") != "scwlm":
            raise ValueError(f"{meta_source}: not a scwlm model (no \"library\": \"scwlm\" entry)")
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{meta_source}: unsupported model format {meta.get('format')!r} (this version reads format {_FORMAT})")
        missing = [k for k in ("architecture", "friction", "dt", "config") if k not in meta]
        if missing:
            raise ValueError(f"{meta_source}: missing entries {missing}")
        dtype_name = meta.get("dtype", "float32")
        if dtype_name not in ("float32", "float64"):
            raise ValueError(f"{meta_source}: dtype must be 'float32' or 'float64', got {dtype_name!r}")
        dtype = getattr(torch, dtype_name)
        try:
            friction = _real(meta["friction"], "friction")
            if friction < 0:
                raise ValueError(f"friction must be >= 0, got {friction!r}")
            dt = _real(meta["dt"], "dt")
            if dt <= 0:
                raise ValueError(f"dt must be > 0, got {dt!r}")
        except ValueError as exc:
            raise ValueError(f"{meta_source}: {exc}") from None
        info = meta.get("info", {}) or {}
        if not isinstance(info, dict):
            raise ValueError(f"{meta_source}: 'info' must be a mapping, got {type(info).__name__}")
        arch = meta["architecture"]
        if not isinstance(arch, dict) or arch.get("n_models", 1) != 1:
            raise ValueError(f"{meta_source}: 'architecture' must describe one network, got {arch!r}")
        try:
            for key in ("dim", "hidden", "heads", "blocks", "ffn"):
                if key in arch:
                    _positive_int(arch[key], f"architecture.{key}")
            with torch.device("meta"):  # shapes only: nothing is allocated
                expected = {k: tuple(v.shape) for k, v in SetPotential(**arch).state_dict().items()}
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{meta_source}: invalid architecture {arch!r} ({exc})") from None
        config = WLMConfig.from_saved(meta["config"], source=meta_source)
        tensors = {}
        for name, value in weights.items():
            try:
                t = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise ValueError(f"{weights_source}: weight {name!r} is not a numeric array ({exc})") from None
            if not (t.is_floating_point()):
                raise ValueError(f"{weights_source}: weight {name!r} has dtype {t.dtype}, expected floating point")
            tensors[name] = t
        if set(tensors) != set(expected):
            lost, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
            raise ValueError(f"{weights_source}: the weights do not match the architecture in the model's config"
                             + (f"; missing tensors {lost}" if lost else "") + (f"; unexpected tensors {extra}" if extra else ""))
        for name, shape in expected.items():
            if tuple(tensors[name].shape) != shape:
                raise ValueError(f"{weights_source}: weight {name!r} has shape {tuple(tensors[name].shape)}, "
                                 f"but the architecture in the model's config implies {shape}")
            if not bool(torch.isfinite(tensors[name]).all()):
                raise ValueError(f"{weights_source}: weight {name!r} contains non-finite values (NaN or inf)")
        try:
            hist = {str(k): np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64) for k, v in history.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{weights_source}: the training history is not numeric ({exc})") from None
        net = SetPotential(**arch, generators=[torch.Generator().manual_seed(0)]).to(dtype)
        net.load_state_dict({k: v.to(dtype) for k, v in tensors.items()})
        mech = cls(net, friction, config=config, dt=dt, history=hist, info=info)
        return mech.to(device)

    def save(self, path: str | os.PathLike) -> Path:
        """Save to the directory ``path``: ``config.json`` and ``state.pt`` (safe ``torch.load``).

        ``state.pt`` holds only tensors, loadable with ``torch.load(..., weights_only=True)``; a
        round trip through :func:`scwlm.load` reproduces rollouts bit for bit.

        Examples
        --------
        >>> import tempfile, os
        >>> path = mech.save(os.path.join(tempfile.mkdtemp(), "model"))
        >>> sorted(os.listdir(path))
        ['config.json', 'state.pt']
        """
        path = _writable_dir(path)
        if (path / _ENSEMBLE_FILE).exists():
            raise ValueError(f"cannot save a single model to {path}: it holds a saved ensemble ({_ENSEMBLE_FILE})")
        state = self.to_state()
        tensors = {
            "network": {k: torch.from_numpy(v) for k, v in state["weights"].items()},
            "history": {k: torch.from_numpy(v) for k, v in state["history"].items()},
        }
        path.mkdir(parents=True, exist_ok=True)
        _write_atomic(path / "state.pt", lambda f: torch.save(tensors, f))
        _write_atomic(path / "config.json", lambda f: f.write(json.dumps(json.loads(state["meta"]), indent=2).encode()))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "Mechanics":
        """Load a model saved with :meth:`save`.

        Raises ``FileNotFoundError`` when ``path`` is not a saved model and a ``ValueError`` naming
        the file and the problem when ``config.json`` or ``state.pt`` is damaged.

        Examples
        --------
        >>> import tempfile, os
        >>> path = mech.save(os.path.join(tempfile.mkdtemp(), "model"))
        >>> Mechanics.load(path).dt == mech.dt
        True
        """
        path = _as_path(path)
        cfg_file, state_file = path / "config.json", path / "state.pt"
        if (path / _ENSEMBLE_FILE).is_file():
            raise ValueError(f"{path} holds an ensemble of models: load it with scwlm.load")
        if not cfg_file.is_file() or not state_file.is_file():
            raise FileNotFoundError(f"{path} is not a saved scwlm model (expected config.json and state.pt inside)")
        dev = _resolve_device(device)
        try:
            meta = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{cfg_file}: not valid JSON ({exc})") from None
        try:
            tensors = torch.load(state_file, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for damaged files
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ValueError(f"{state_file}: not a readable scwlm weights file ({type(exc).__name__}: {first})") from None
        if not isinstance(tensors, dict) or not isinstance(tensors.get("network"), dict):
            raise ValueError(f"{state_file}: not a scwlm weights file (expected a dict with a 'network' entry of tensors)")
        history = tensors.get("history", {})
        if not isinstance(history, dict):
            raise ValueError(f"{state_file}: 'history' must be a dict of tensors")
        return cls._from_parts(meta, tensors["network"], history, dev, meta_source=str(cfg_file), weights_source=str(state_file))


def _as_path(path: Any) -> Path:
    if isinstance(path, (bytes, bytearray)):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or os.PathLike, got {path!r}")
    return Path(path)


def _writable_dir(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path`, or a ``ValueError`` when it exists and is not a directory."""
    path = _as_path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"cannot save to {path}: it exists and is not a directory")
    return path


def _write_atomic(target: Path, write) -> None:
    """Write ``target`` through a temporary file, so an interrupted save never leaves half a file."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _times(times: Any) -> np.ndarray:
    """The output times of a rollout as a non-empty finite float64 vector, else ``ValueError`` naming ``times``."""
    if isinstance(times, (str, bytes)):
        raise ValueError(f"times must be a sequence of numbers, got {times!r}")
    try:
        arr = np.asarray(times.detach().cpu() if isinstance(times, torch.Tensor) else times)
    except Exception as exc:  # noqa: BLE001 - ragged lists, odd objects
        raise ValueError(f"times must be a sequence of numbers: {exc}") from None
    numeric = arr.dtype.kind in "iuf" or (arr.dtype.kind == "O" and all(
        isinstance(e, (numbers.Real, np.number)) and not isinstance(e, (bool, np.bool_)) for e in arr.reshape(-1)))
    if times is None or not numeric:
        raise ValueError(f"times must be a sequence of numbers, got {times!r}")
    tt = arr.astype(np.float64).reshape(-1)
    if tt.size == 0:
        raise ValueError("times is empty")
    if not np.isfinite(tt).all():
        raise ValueError(f"times contain non-finite values: {tt.tolist()[:10]}")
    return tt


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


_ENSEMBLE_FILE = "ensemble.json"


class MechanicsEnsemble(list):
    """Models trained together in one vectorised run (a list of :class:`Mechanics`).

    Examples
    --------
    >>> ens = scwlm.fit(snaps, [0.0, 1.0, 2.0], random_state=[0, 1], n_iter=2, hidden=8, heads=1,
    ...                 blocks=1, ffn=8, progress=False)
    >>> len(ens), len(ens.frictions)
    (2, 2)
    >>> import tempfile, os
    >>> path = ens.save(os.path.join(tempfile.mkdtemp(), "ensemble"))
    >>> again = scwlm.load(path)
    >>> type(again).__name__, again.frictions == ens.frictions
    ('MechanicsEnsemble', True)
    """

    @property
    def frictions(self) -> list[float]:
        """Friction of every member (one float per model)."""
        return [m.friction for m in self]

    def evaluate(self, *args, **kwargs) -> list[dict]:
        """:meth:`Mechanics.evaluate` of every member (same arguments)."""
        return [m.evaluate(*args, **kwargs) for m in self]

    def to(self, device: str | torch.device) -> "MechanicsEnsemble":
        """Move every member to ``device`` (in place) and return the ensemble."""
        dev = _resolve_device(device)
        for m in self:
            m.to(dev)
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Save to the directory ``path``: ``ensemble.json`` and one :meth:`Mechanics.save` folder per member.

        :func:`scwlm.load` reads it back as a :class:`MechanicsEnsemble` (members in order).
        """
        if not len(self) or not all(isinstance(m, Mechanics) for m in self):
            raise ValueError("a MechanicsEnsemble to save must hold at least one Mechanics (and nothing else)")
        path = _writable_dir(path)
        if (path / "config.json").exists() or (path / "state.pt").exists():
            raise ValueError(f"cannot save an ensemble to {path}: it holds a single saved model (config.json, state.pt)")
        names = [f"member_{i}" for i in range(len(self))]
        for name, m in zip(names, self):
            m.save(path / name)
        index = {"library": "scwlm", "kind": "ensemble", "format": _FORMAT, "members": names}
        _write_atomic(path / _ENSEMBLE_FILE, lambda f: f.write(json.dumps(index, indent=2).encode()))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "MechanicsEnsemble":
        """Load an ensemble saved with :meth:`save`."""
        path = _as_path(path)
        index_file = path / _ENSEMBLE_FILE
        if not index_file.is_file():
            raise FileNotFoundError(f"{path} is not a saved scwlm ensemble (expected {_ENSEMBLE_FILE} inside)")
        dev = _resolve_device(device)
        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{index_file}: not valid JSON ({exc})") from None
        members = index.get("members") if isinstance(index, dict) else None
        if (not isinstance(index, dict) or index.get("library") != "scwlm" or index.get("kind") != "ensemble"
                or not isinstance(members, list) or not members
                or not all(isinstance(n, str) and n and "/" not in n and "\\" not in n and n not in (".", "..") for n in members)):
            raise ValueError(f"{index_file}: not a scwlm ensemble index (expected 'library', 'kind' and a list of 'members')")
        out = []
        for name in members:
            try:
                out.append(Mechanics.load(path / name, device=dev))
            except FileNotFoundError:
                raise ValueError(f"{index_file}: member {name!r} is missing ({path / name} is not a saved model)") from None
        return cls(out)


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> Mechanics | MechanicsEnsemble:
    """Load a model saved with :meth:`Mechanics.save` (or an ensemble saved with :meth:`MechanicsEnsemble.save`).

    Raises
    ------
    FileNotFoundError
        ``path`` is not a saved model or ensemble.
    ValueError
        A damaged or edited file (named in the message), or a bad ``device``.

    Examples
    --------
    >>> import tempfile, os
    >>> path = mech.save(os.path.join(tempfile.mkdtemp(), "model_dir"))
    >>> same = scwlm.load(path)
    >>> same.friction == mech.friction
    True
    """
    dev = _resolve_device(device)
    if (_as_path(path) / _ENSEMBLE_FILE).is_file():
        return MechanicsEnsemble.load(path, device=dev)
    return Mechanics.load(path, device=dev)
