"""Run every tutorial notebook end to end at the reduced size (``SCWLM_TUTORIAL_QUICK=1``).

The notebooks are stored without outputs; here each one is executed by a fresh ipykernel of the
current interpreter (a kernel spec written to a temporary ``JUPYTER_PATH``, so a user-level
``python3`` kernel of another environment is never picked up), in a temporary working directory.
Notebooks that read real data are skipped when ``$SCWLM_DATA_DIR`` is unset or lacks their file.
All four together take about 1.5 minutes on two CPU cores (marked ``slow``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import data_dir

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
KERNEL = "python3"

#: notebook -> data files it needs (any one of them; empty = simulated data only)
NOTEBOOKS: dict[str, tuple[str, ...]] = {
    "boids_forecasting.ipynb": (),
    "ocean_vortex_interpolation.ipynb": ("oceans_small_vortex.npz",),
    "eb_leave_one_out.ipynb": ("eb_velocity_v5.npz", "eb_velocity_v5_subset2750.npz"),
    "dentate_gyrus_scvelo.ipynb": ("dentategyrus_cellrank_200obs.h5ad",),
}
#: seconds per cell before a notebook counts as hung
CELL_TIMEOUT = 600


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A ``python3`` kernel spec for this interpreter, and the quick-mode environment."""
    from ipykernel.kernelspec import write_kernel_spec

    jupyter_path = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(path=str(jupyter_path / "kernels" / KERNEL))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [str(jupyter_path), os.environ.get("JUPYTER_PATH")])))
        mp.setenv("SCWLM_TUTORIAL_QUICK", "1")
        # the quick runs are many tiny tensor operations; on a 2-core machine shared with other jobs,
        # torch's spinning OpenMP threads (and numba's, started by scanpy's neighbours/UMAP, which
        # also resets torch's thread count) make them up to 100x slower: one thread each
        # (values set by the caller are kept)
        for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
            mp.setenv(var, os.environ.get(var, "1"))
        mp.delenv("MPLBACKEND", raising=False)  # let ipykernel use its inline backend
        yield


def test_every_notebook_is_listed_and_stored_without_outputs():
    found = sorted(p.name for p in TUTORIALS.glob("*.ipynb"))
    assert found == sorted(NOTEBOOKS), "add new notebooks to NOTEBOOKS (and to docs/tutorials.md)"
    for name in found:
        nb = nbformat.read(TUTORIALS / name, as_version=4)
        nbformat.validate(nb)
        assert nb.cells[0].cell_type == "markdown", f"{name} must start with a markdown introduction"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{name}: store the notebook without outputs"
        assert "SCWLM_TUTORIAL_QUICK" in "".join(c.source for c in nb.cells), f"{name} has no quick mode"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.data) if files else n for n, files in NOTEBOOKS.items()],
)
def test_notebook_runs_in_quick_mode(name, kernel_env, tmp_path):
    needs = NOTEBOOKS[name]
    if needs:
        root = data_dir()
        if root is None:
            pytest.skip(f"{name} needs real data: set SCWLM_DATA_DIR (see datasets/README.md)")
        if not any((Path(root) / f).is_file() for f in needs):
            pytest.skip(f"{name} needs one of {list(needs)} in SCWLM_DATA_DIR={root}")
    nb = nbformat.read(TUTORIALS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError (with the traceback) when a cell fails
    elapsed = time.perf_counter() - start
    print(f"{name}: {elapsed:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
