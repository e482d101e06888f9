r"""Exponentials of the engine's soft-max and log-sum-exp kernels, taken in base 2.

The attention soft-max, the Sinkhorn soft-mins and the GELU's second derivative exponentiate
millions of values per force evaluation or loss call. On a CPU ``torch.exp`` is several times
slower than ``torch.exp2`` and takes a much slower path still for every result that falls below
float32's smallest normal number (about :math:`e^{-87}`), which is where most entries of a sharp
soft-max, of a Sinkhorn kernel at a small blur and of :math:`\phi(u) = e^{-u^2/2}/\sqrt{2\pi}` at
large :math:`|u|` land. Measured on the 2-core AMD EPYC machine of ``docs/performance.md``, per
million float32 values: ``exp`` 0.56 ms, 12.4 ms when the results underflow; ``exp2`` 0.10 ms,
0.29 ms when they underflow (the command is in ``docs/performance.md``).

So the kernels write :math:`e^{z}` as :math:`2^{z \log_2 e}` and, where the factor
:math:`\log_2 e` can ride on an operation that is computed anyway (the queries, the inverse
temperature of a soft-min), fold it in there: then every operation rounds once, as before, and only
the base of the exponential changes. On a GPU both are single instructions; the rewrite changes
nothing there but the rounding.
"""

from __future__ import annotations

import math

__all__ = ["LOG2E", "LN2"]

#: :math:`\log_2 e`
LOG2E = 1.0 / math.log(2.0)
#: :math:`\ln 2`
LN2 = math.log(2.0)

