"""Plots for WLM (matplotlib; scanpy-style ``ax``/``show``/``save``/``return_fig`` arguments).

Training curves (:func:`loss`, :func:`friction`), held-out time points (:func:`holdout`),
rollouts over time (:func:`rollout` for a fitted AnnData, :func:`rollout_arrays` for plain arrays),
the learned 2-D landscape (:func:`potential`) and GIF animations (:func:`animate`,
:func:`animate_arrays`). Importing this module never selects a matplotlib backend.
"""

from __future__ import annotations

from ._animate import animate, animate_arrays
from ._embedding import holdout, rollout, rollout_arrays
from ._potential import potential
from ._training import friction, loss

__all__ = ["loss", "friction", "holdout", "rollout", "rollout_arrays", "potential", "animate", "animate_arrays"]
