r"""``torch.compile`` of the force :math:`-\nabla\Psi_\theta`, with a fallback to eager execution.

The analytic force (``impl="analytic"`` of :meth:`~scwlm.core.potential.SetPotential.forces`) is a
forward formula, so its graph is an ordinary first-order graph: ``torch.compile`` (inductor on CPU
and CUDA) can fuse it, and the outer backward of training is an ordinary backward through the
compiled graph. The autograd force needs a double backward (``create_graph=True`` through
``torch.autograd.grad``), which ``torch.compile`` does not support; it is run eagerly.

:func:`compiled_forces` returns a :class:`CompiledForces` callable with the signature of
``SetPotential.forces``. Compilation happens at the first call; if it (or any later call of the
compiled function) raises, the callable warns once, in one line, and computes eagerly from then
on. The time of the first call (compilation included, ``time.perf_counter``) is kept in
:attr:`CompiledForces.compile_seconds` and written in that line or in an ``INFO`` log line of
the ``scwlm`` logger: a note, not a benchmark. Nothing compiles unless asked: the library's
default is eager.

Examples
--------
>>> import torch
>>> from scwlm.core.potential import SetPotential
>>> net = SetPotential(2, hidden=8, heads=2, blocks=1, ffn=8)
>>> f = compiled_forces(net, "autograd")  # not compilable: eager, without a warning
>>> f.compiled
False
>>> f(torch.randn(1, 5, 2)).shape
torch.Size([1, 5, 2])
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import torch
from torch import Tensor

from .potential import PRECISIONS, DropoutMasks, SetPotential

__all__ = ["CompiledForces", "compiled_forces"]

_log = logging.getLogger("scwlm")


class CompiledForces:
    """The force of a :class:`~scwlm.core.potential.SetPotential`, compiled, with an eager fallback.

    Parameters
    ----------
    net
        The network (its parameters are read at every call: training updates are seen).
    impl
        ``"analytic"`` (compiled) or ``"autograd"`` (always eager: ``torch.compile`` does not
        support the double backward it needs).
    precision
        ``"float32"`` or ``"bf16"``, passed to the force (see :mod:`scwlm.core.potential`).
    backend, mode, dynamic, fullgraph
        Passed to ``torch.compile`` (e.g. ``mode="reduce-overhead"`` for CUDA graphs of the
        compiled force on a GPU).

    Attributes
    ----------
    compiled
        Whether calls go to the compiled function (``False`` after a fallback).
    compile_seconds
        Seconds of the first call (compilation included), or ``None`` before it.
    note
        The one-line note of the first call (compile time or why it fell back).
    """

    def __init__(
        self,
        net: SetPotential,
        impl: str = "analytic",
        *,
        precision: str = "float32",
        backend: str = "inductor",
        mode: str | None = None,
        dynamic: bool | None = None,
        fullgraph: bool = False,
    ) -> None:
        if impl not in ("analytic", "autograd"):
            raise ValueError(f"unknown force implementation {impl!r}; use 'autograd' or 'analytic'")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; use one of {PRECISIONS}")
        self.net, self.impl, self.precision = net, impl, precision
        self.compile_seconds: float | None = None
        self.note = ""
        self._first = True
        self._fn: Any = None
        self.compiled = False
        if impl == "analytic":
            def analytic(x: Tensor, t: Tensor | None, masks: DropoutMasks | None, keep_weights: bool = False) -> Tensor:
                return net._forces_analytic(x, t, masks, precision, keep_weights)

            try:
                self._fn = torch.compile(analytic, backend=backend, mode=mode, dynamic=dynamic, fullgraph=fullgraph)
                self.compiled = True
            except Exception as exc:  # torch.compile itself unavailable or refusing the options
                self._fall_back(exc, None)
        else:
            self.note = "torch.compile does not support the autograd force (double backward): eager"

    def _eager(self, x: Tensor, t, masks, create_graph: bool, keep_weights: bool = False) -> Tensor:
        # SetPotential's own method: a subclass whose ``forces`` calls this object must not recurse
        return SetPotential.forces(self.net, x, t, masks=masks, create_graph=create_graph, impl=self.impl,
                                   precision=self.precision, keep_weights=keep_weights)

    def _fall_back(self, exc: BaseException, seconds: float | None) -> None:
        self.compiled = False
        msg = str(exc).strip().splitlines()
        spent = "" if seconds is None else f" after {seconds:.1f} s"
        self.note = (f"torch.compile of the force failed{spent} ({type(exc).__name__}: {msg[0][:200] if msg else ''}); "
                     "computing it eagerly")
        warnings.warn(self.note, RuntimeWarning, stacklevel=3)

    def __call__(
        self,
        x: Tensor,
        t: Tensor | float | None = None,
        *,
        masks: DropoutMasks | None = None,
        create_graph: bool = False,
        keep_weights: bool = False,
    ) -> Tensor:
        """Forces ``(E, N, d)``, as ``net.forces(x, t, masks=masks, create_graph=create_graph, impl=impl,
        keep_weights=keep_weights)``."""
        if not self.compiled:
            return self._eager(x, t, masks, create_graph, keep_weights)
        if t is not None and not isinstance(t, Tensor):  # a Python float would be a constant of the graph
            t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        first, self._first = self._first, False
        t0 = time.perf_counter()
        try:
            if create_graph:
                out = self._fn(x, t, masks, keep_weights)
            else:
                with torch.no_grad():
                    out = self._fn(x, t, masks)
        except Exception as exc:
            self._fall_back(exc, time.perf_counter() - t0 if first else None)
            return self._eager(x, t, masks, create_graph, keep_weights)
        if first:
            self.compile_seconds = time.perf_counter() - t0
            self.note = f"torch.compile of the {self.impl} force: first call (compilation) {self.compile_seconds:.1f} s"
            _log.info(self.note)
        return out


def compiled_forces(net: SetPotential, impl: str = "analytic", **options: Any) -> CompiledForces:
    """A compiled force of ``net`` with an eager fallback (see :class:`CompiledForces`).

    Parameters
    ----------
    net
        The network.
    impl
        ``"analytic"`` (compiled) or ``"autograd"`` (eager).
    **options
        ``precision``, ``backend``, ``mode``, ``dynamic``, ``fullgraph`` of :class:`CompiledForces`.

    Returns
    -------
    CompiledForces
        Callable as ``f(x, t, masks=..., create_graph=...)``.
    """
    return CompiledForces(net, impl, **options)
