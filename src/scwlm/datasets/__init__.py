"""Data sets for scwlm: the paper's simulators and loaders for its real data.

Every function returns a :class:`Dataset` that unpacks as ``(snapshots, times, velocities)``::

    snaps, times, vels = scwlm.datasets.boids()
    model = scwlm.fit(snaps, times, vels)

Simulators (pure NumPy, seeded with ``random_state``): :func:`boids`, :func:`gradient_flow_sde`
(potentials in :data:`GF_POTENTIALS`, see :func:`gf_potential`), :func:`harmonic_well`.
Real data (looked up in ``$SCWLM_DATA_DIR``, then the user cache, then downloaded when a URL is
known; checksummed; see :func:`data_path` and ``datasets/README.md``): :func:`ocean_vortex`,
:func:`embryoid_body`, :func:`dentate_gyrus`.
"""

from __future__ import annotations

from ._dataset import Dataset
from .flocking import boids, boids_steering
from .loaders import REGISTRY, cache_dir, data_path, dentate_gyrus, embryoid_body, ocean_vortex
from .sde import GF_POTENTIALS, euler_maruyama, gf_potential, gradient_flow_sde
from .synthetic import damped_oscillator_solution, harmonic_well

__all__ = [
    "Dataset",
    "boids",
    "boids_steering",
    "gradient_flow_sde",
    "GF_POTENTIALS",
    "gf_potential",
    "euler_maruyama",
    "harmonic_well",
    "damped_oscillator_solution",
    "ocean_vortex",
    "embryoid_body",
    "dentate_gyrus",
    "data_path",
    "cache_dir",
    "REGISTRY",
]
