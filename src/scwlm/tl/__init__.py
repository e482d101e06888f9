"""WLM tools on AnnData (scanpy style): fit, simulate, benchmark.

:func:`fit_mechanics` learns the mechanics of cells observed at several time points and keeps
the model in ``adata.uns``; :func:`get_mechanics` rebuilds it (also after ``write_h5ad``);
:func:`rollout` simulates the cells of one time point forward; :func:`observed_cells` lays the
observed cells out like the rollout output for joint plots; :func:`leave_one_out` runs the
paper's interpolation benchmark in one vectorised run.

Internals, one concern per module: ``_time`` (what the time labels mean), ``_prepare`` (snapshots
from an AnnData, argument checks), ``_store`` (the ``adata.uns`` format: one record type per
entry, the only code that reads or writes it), ``_apply`` (rebuilding a stored model, moving
cells between the basis and the model's space); the baselines are :mod:`scwlm.core.baselines`.
"""

from __future__ import annotations

from ._apply import get_mechanics
from ._fit import fit_mechanics
from ._leave_one_out import leave_one_out
from ._rollout import observed_cells, rollout

__all__ = ["fit_mechanics", "get_mechanics", "rollout", "observed_cells", "leave_one_out"]
