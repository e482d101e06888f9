"""Preprocessing for WLM on AnnData: embedding velocities and global standardisation.

:func:`embedding_velocities` finds the RNA velocity of every cell in an embedding (``.obsm``,
or ``.layers["velocity"]`` projected with the PCA loadings, or zeros); :func:`standardize` and
:func:`standardize_embedding` apply the paper's global standardisation.
"""

from __future__ import annotations

from ._standardize import standardize, standardize_embedding
from ._velocity import embedding_velocities

__all__ = ["embedding_velocities", "standardize", "standardize_embedding"]
