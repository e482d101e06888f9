r"""Damped second-order integrators for :math:`\dot x = v,\ \dot v = a(x, t) - \gamma v`.

One step of size :math:`h` is the paper's damped leapfrog (kick - drift - kick)

.. math::
    v_{1/2} &= m\, v + c\, a(x), \\
    x' &= x + h\, v_{1/2}, \\
    v' &= m\, v_{1/2} + c\, a(x'),

with :math:`m = e^{-\gamma h / 2}`. Two choices of the force coefficient :math:`c` are offered:

``"paper"`` (default)
    :math:`c = m\,h/2 + (1 - m)`, the scheme of the authors' code. At :math:`\gamma = 0` it is
    velocity Verlet; as :math:`\gamma \to \infty` a step becomes :math:`x' = x + h\, a(x)`, an
    explicit gradient-flow step with unit mobility. Learned friction values are comparable with
    the paper's only under this scheme. For small :math:`h` it discretises
    :math:`\dot v = (1 + \gamma)\, a - \gamma v`.
``"exponential"``
    :math:`c = (1 - m) / \gamma`, the exact half-step solution of :math:`\dot v = a - \gamma v`
    for a constant force: consistent with the stated equations of motion for every
    :math:`\gamma` (overdamped limit :math:`\dot x = a / \gamma`).

The force of the last step is reused as the first force of the next, so ``n`` steps cost ``n``
force evaluations (``n + 1`` when the final velocity is requested).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor

__all__ = ["step_coefficients", "leapfrog", "Trajectory", "SCHEMES"]

#: the available damping schemes (see the module docstring)
SCHEMES = ("paper", "exponential")

ForceFn = Callable[[Tensor, Tensor], Tensor]


class Trajectory(NamedTuple):
    """What :func:`leapfrog` returns.

    Attributes
    ----------
    positions
        The recorded positions, in the order of ``record``.
    x
        The positions after the last step.
    v
        The velocity after the last step (``None`` unless ``final_velocity``).
    branches
        ``{(k, delta): positions}`` reached by the partial steps asked for with ``branches``
        (empty when none were).
    """

    positions: list[Tensor]
    x: Tensor
    v: Tensor | None
    branches: dict[tuple[int, float], Tensor]


def _phi(z: Tensor) -> Tensor:
    """``(1 - exp(-z)) / z`` with its limit 1 at ``z = 0``."""
    small = z.abs() < 1e-4
    safe = torch.where(small, torch.ones_like(z), z)
    return torch.where(small, 1.0 - z / 2.0 + z * z / 6.0, -torch.expm1(-safe) / safe)


def step_coefficients(gamma: Tensor | float, h: Tensor | float, scheme: str = "paper") -> tuple[Tensor, Tensor]:
    """Velocity damping ``m`` and force coefficient ``c`` of one half-kick.

    Parameters
    ----------
    gamma
        Friction :math:`\\gamma \\ge 0` (a tensor keeps the graph for learnable friction).
    h
        Step size (scalar or tensor broadcastable against ``gamma``).
    scheme
        ``"paper"`` or ``"exponential"`` (see the module docstring).

    Returns
    -------
    m, c
        Tensors such that a half-kick is ``v <- m * v + c * a``.

    Examples
    --------
    >>> m, c = step_coefficients(0.0, 0.1)
    >>> float(m), round(float(c), 6)
    (1.0, 0.05)
    """
    gamma = torch.as_tensor(gamma, dtype=torch.get_default_dtype())
    h = torch.as_tensor(h, dtype=gamma.dtype, device=gamma.device)
    z = gamma * h / 2.0
    m = torch.exp(-z)
    if scheme == "paper":
        c = m * h / 2.0 + (1.0 - m)
    elif scheme == "exponential":
        c = h / 2.0 * _phi(z)
    else:
        raise ValueError(f"unknown integrator scheme {scheme!r}; choose one of {SCHEMES}")
    return m, c


def leapfrog(
    force: ForceFn,
    x0: Tensor,
    v0: Tensor,
    *,
    steps: Sequence[float] | Tensor,
    gamma: Tensor | float,
    t0: Tensor | float = 0.0,
    scheme: str = "paper",
    record: Sequence[int] | None = None,
    final_velocity: bool = False,
    branches: dict[int, Sequence[float]] | None = None,
) -> Trajectory:
    """Roll a particle system forward with the damped leapfrog.

    Parameters
    ----------
    force
        ``force(x, t) -> a`` with ``x`` of the shape of ``x0`` and ``t`` the current time(s).
    x0, v0
        Initial positions and velocities, shape ``(E, N, d)`` (or any shape ``force`` accepts).
    steps
        Step sizes, one per integrator step (shape ``(n,)``, or ``(n, E)`` for per-model steps).
    gamma
        Friction, a float or a tensor broadcastable to ``(E, 1, 1)``.
    t0
        Time of ``x0`` (scalar or ``(E,)``).
    scheme
        ``"paper"`` or ``"exponential"``.
    record
        Step counts (``0..n``) at which positions are returned; default: every step.
    final_velocity
        Also return the velocity after the last step (costs one more force evaluation).
    branches
        ``{k: [delta, ...]}``: also return the positions reached by one partial step of size
        ``delta`` from the state after ``k`` steps, without changing the main trajectory (used
        for output times between grid points).

    Returns
    -------
    Trajectory
        ``positions`` (recorded, in the order of ``record``), ``x`` (final positions), ``v`` (final
        velocity, ``None`` unless ``final_velocity``) and ``branches`` (``{(k, delta): positions}``).

    Examples
    --------
    >>> import torch
    >>> x0, v0 = torch.ones(1, 1, 1), torch.zeros(1, 1, 1)
    >>> out = leapfrog(lambda x, t: -x, x0, v0, steps=[0.1] * 10, gamma=0.0)
    >>> len(out.positions), out.v is None
    (11, True)
    """
    steps = torch.as_tensor(steps, dtype=x0.dtype, device=x0.device)
    n = steps.shape[0]
    want = list(range(n + 1)) if record is None else [int(r) for r in record]
    if any(r < 0 or r > n for r in want):
        raise ValueError(f"record indices must lie in 0..{n}")
    wanted = set(want)
    gamma_t = torch.as_tensor(gamma, dtype=x0.dtype, device=x0.device)
    if gamma_t.ndim == 1:
        gamma_t = gamma_t.view(-1, *([1] * (x0.ndim - 1)))

    def coef(hs: Tensor) -> tuple[Tensor, Tensor]:
        if hs.ndim == 1 and x0.ndim >= 2:  # per-model step sizes
            hs = hs.view(-1, *([1] * (x0.ndim - 1)))
        return step_coefficients(gamma_t, hs, scheme)

    t = torch.as_tensor(t0, dtype=x0.dtype, device=x0.device)
    x, v = x0, v0
    saved = {0: x} if 0 in wanted else {}
    branches = {int(k): [float(d) for d in ds] for k, ds in (branches or {}).items()}
    if any(k < 0 or k > n for k in branches):
        raise ValueError(f"branch points must lie in 0..{n}")
    branch_out: dict[tuple[int, float], Tensor] = {}

    def branch(k: int, x: Tensor, v: Tensor, a: Tensor) -> None:
        for d in branches.get(k, []):
            mb, cb = coef(torch.as_tensor(d, dtype=x0.dtype, device=x0.device))
            branch_out[(k, d)] = x + d * (mb * v + cb * a)

    a = force(x, t) if (n > 0 or 0 in branches) else None
    if 0 in branches:
        branch(0, x, v, a)
    for s in range(n):
        h = steps[s]
        m, c = coef(h)
        hb = h.view(-1, *([1] * (x0.ndim - 1))) if h.ndim == 1 and x0.ndim >= 2 else h
        v_half = m * v + c * a
        x = x + hb * v_half
        t = t + h
        if s + 1 in wanted:
            saved[s + 1] = x
        if s == n - 1 and not final_velocity and n not in branches:
            v = v_half  # the final velocity is not needed: skip the unused force evaluation
            break
        a = force(x, t)
        v = m * v_half + c * a
        if s + 1 in branches:
            branch(s + 1, x, v, a)
    return Trajectory([saved[r] for r in want], x, (v if final_velocity else None), branch_out)
