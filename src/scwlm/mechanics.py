"""The :class:`Mechanics` object: a fitted WLM model (array API)."""

from __future__ import annotations

import json
import math
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


def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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
        return as_points(x, what, dim=self.dim).to(self.device, self.dtype).unsqueeze(0)

    def _time(self, t: float | None) -> float | None:
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
    ) -> np.ndarray:
        """Simulate the particles ``x0`` (velocities ``v0``, zero by default) from ``t0`` to ``times``.

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

        Returns
        -------
        numpy.ndarray
            Positions ``(len(times), n, d)``.

        Examples
        --------
        >>> pred = mech.rollout(snaps[0], t0=0.0, times=[0.5, 1.0, 2.0])
        >>> pred.shape
        (3, 30, 2)
        """
        x = self._tensor(x0, "x0")
        v = torch.zeros_like(x) if v0 is None else self._tensor(v0, "v0")
        if v.shape != x.shape:
            raise ValueError(f"v0 has shape {tuple(v.shape[1:])} but x0 has shape {tuple(x.shape[1:])}")
        substeps = self.config.eval_substeps if substeps is None else int(substeps)
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {substeps}")
        if not math.isfinite(float(t0)):
            raise ValueError(f"t0 must be finite, got {t0}")
        tt = np.asarray(times, dtype=np.float64).reshape(-1)
        if tt.size == 0:
            raise ValueError("times is empty")
        if not np.isfinite(tt).all():
            raise ValueError("times contain non-finite values")
        if (np.diff(tt) < 0).any():
            raise ValueError("times must be non-decreasing")
        if tt[0] < t0:
            raise ValueError(f"times must be >= t0={t0} (the model integrates forward), got {tt[0]}")
        # a uniform grid t0 + k h: requesting more output times never changes the others; a time
        # between grid points is reached by one partial step from the grid point before it
        h = self.dt / substeps
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

        with torch.no_grad():
            out = leapfrog(
                force, x, v, steps=torch.full((n,), h, dtype=self.dtype), gamma=self.friction, t0=float(t0),
                scheme=self.config.integrator, record=record, branches=branches or None,
            )
        at = dict(zip(record, out.positions))
        return np.stack([(at[k] if not d else out.branches[(k, d)])[0].detach().cpu().numpy() for k, d in grid])

    def _simulate(self, substeps):
        def simulate(x0, v0, t0, times):
            return self.rollout(x0, v0, t0=t0, times=times, substeps=substeps)

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

        Returns
        -------
        dict
            ``w1`` per time (forecast; NaN at ``t_0``) or per held-out index (interpolate),
            ``train_mean``/``train_se`` and ``test_mean``/``test_se``.

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
            return forecast(self._simulate(substeps), snaps, int(n_train))
        if protocol == "interpolate":
            if holdout is None:
                if not train_times:
                    raise ValueError("pass holdout (indices of the held-out snapshots)")
                seen = np.asarray(train_times)
                holdout = [i for i, t in enumerate(snaps.times.tolist()) if np.abs(seen - t).min() > 1e-9]
                if not holdout:
                    raise ValueError("all these times were used in training: pass holdout explicitly")
            return interpolate(self._simulate(substeps), snaps, holdout)
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
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "cpu") -> "Mechanics":
        """Rebuild a model from :meth:`to_state` output (NumPy arrays or tensors).

        Examples
        --------
        >>> Mechanics.from_state(mech.to_state()).friction == mech.friction
        True
        """
        try:
            meta = json.loads(state["meta"]) if isinstance(state["meta"], (str, bytes)) else dict(state["meta"])
            weights = state["weights"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a scwlm model state: {exc}") from None
        if meta.get("library") != "scwlm" or int(meta.get("format", -1)) != _FORMAT:
            raise ValueError("not a scwlm model state of a supported format")
        dtype = getattr(torch, meta.get("dtype", "float32"))
        net = SetPotential(**meta["architecture"], generators=[torch.Generator().manual_seed(0)]).to(dtype)
        net.load_state_dict({k: torch.as_tensor(np.asarray(v)).to(dtype) for k, v in weights.items()})
        history = {k: np.asarray(v, dtype=np.float64) for k, v in dict(state.get("history", {})).items()}
        mech = cls(net, meta["friction"], config=WLMConfig.from_saved(meta["config"], source="the model's config"), dt=meta["dt"], history=history, info=meta["info"])
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
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = self.to_state()
        (path / "config.json").write_text(json.dumps(json.loads(state["meta"]), indent=2))
        tensors = {
            "network": {k: torch.from_numpy(v) for k, v in state["weights"].items()},
            "history": {k: torch.from_numpy(v) for k, v in state["history"].items()},
        }
        torch.save(tensors, path / "state.pt")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "Mechanics":
        """Load a model saved with :meth:`save`.

        Examples
        --------
        >>> import tempfile, os
        >>> path = mech.save(os.path.join(tempfile.mkdtemp(), "model"))
        >>> Mechanics.load(path).dt == mech.dt
        True
        """
        path = Path(path)
        cfg_file, state_file = path / "config.json", path / "state.pt"
        if not cfg_file.is_file() or not state_file.is_file():
            raise FileNotFoundError(f"{path} is not a saved scwlm model (expected config.json and state.pt inside)")
        tensors = torch.load(state_file, map_location="cpu", weights_only=True)
        state = {"meta": cfg_file.read_text(), "weights": tensors["network"], "history": tensors.get("history", {})}
        return cls.from_state(state, device=device)


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


class MechanicsEnsemble(list):
    """Models trained together in one vectorised run (a list of :class:`Mechanics`).

    Examples
    --------
    >>> ens = scwlm.fit(snaps, [0.0, 1.0, 2.0], random_state=[0, 1], n_iter=2, hidden=8, heads=1,
    ...                 blocks=1, ffn=8, progress=False)
    >>> len(ens), len(ens.frictions)
    (2, 2)
    """

    @property
    def frictions(self) -> list[float]:
        """Friction of every member (one float per model)."""
        return [m.friction for m in self]

    def evaluate(self, *args, **kwargs) -> list[dict]:
        """:meth:`Mechanics.evaluate` of every member (same arguments)."""
        return [m.evaluate(*args, **kwargs) for m in self]


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> Mechanics:
    """Load a :class:`Mechanics` saved with :meth:`Mechanics.save`.

    Examples
    --------
    >>> import tempfile, os
    >>> path = mech.save(os.path.join(tempfile.mkdtemp(), "model_dir"))
    >>> same = scwlm.load(path)
    >>> same.friction == mech.friction
    True
    """
    return Mechanics.load(path, device=_resolve_device(device))
