"""Plots for WLM (matplotlib; scanpy-style ``ax``/``show``/``save``/``return_fig`` arguments).

Training curves (:func:`loss`, :func:`friction`), held-out time points (:func:`holdout`),
rollouts over time (:func:`rollout`), the learned 2-D landscape (:func:`potential`) and GIF
animations (:func:`animate`). Importing this module never selects a matplotlib backend.
"""

from __future__ import annotations

from ._animate import animate
from ._embedding import holdout, rollout
from ._potential import potential
from ._training import friction, loss

__all__ = ["loss", "friction", "holdout", "rollout", "potential", "animate"]
