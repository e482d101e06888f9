"""The tutorial notebooks: stored with a full-size run, and runnable end to end at the quick size.

The notebooks are stored with the outputs of a full-size run (``python -m benchmarks.tutorials``),
which the documentation renders; the first test checks that every stored notebook is such a run.
The others execute each notebook at the reduced size (``SCWLM_TUTORIAL_QUICK=1``) as a smoke
test, in memory (the stored file is never rewritten), by a fresh ipykernel of the current
interpreter (a kernel spec written to a temporary ``JUPYTER_PATH``, so a user-level ``python3``
kernel of another environment is never picked up), in a temporary working directory.
Notebooks that read real data are skipped when ``$SCWLM_DATA_DIR`` is unset or lacks their file.
All four together take about 1.5 minutes on two CPU cores (marked ``slow``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from conftest import data_dir

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.tutorials import KERNEL, TUTORIALS, notebook_names, private_kernel  # noqa: E402

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
def kernel_env():
    """A ``python3`` kernel spec for this interpreter, and the quick-mode environment."""
    with private_kernel(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCWLM_TUTORIAL_QUICK", "1")
        # the quick runs are many tiny tensor operations; on a 2-core machine shared with other jobs,
        # torch's spinning OpenMP threads (and numba's, started by scanpy's neighbours/UMAP, which
        # also resets torch's thread count) make them up to 100x slower: one thread each
        # (values set by the caller are kept)
        for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
            mp.setenv(var, os.environ.get(var, "1"))
        mp.delenv("MPLBACKEND", raising=False)  # let ipykernel use its inline backend
        yield


#: a stored notebook (outputs included, figures as PNG) stays below this size
MAX_NOTEBOOK_BYTES = 4 * 2**20


def test_every_notebook_is_listed_and_stored_with_its_full_size_run():
    found = notebook_names()
    assert found == sorted(NOTEBOOKS), "add new notebooks to NOTEBOOKS (and to docs/tutorials.md)"
    for name in found:
        path = TUTORIALS / name
        assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{name}: {path.stat().st_size} bytes stored"
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.cells[0].cell_type == "markdown", f"{name} must start with a markdown introduction"
        assert "SCWLM_TUTORIAL_QUICK" in "".join(c.source for c in nb.cells), f"{name} has no quick mode"
        # every code cell ran, in order, in one kernel, without an error, at full size
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
            f"{name}: store it as run top to bottom by `python -m benchmarks.tutorials {name}`")
        errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
        assert not errors, f"{name} was stored with an error output"
        record = nb.metadata.get("scwlm", {})
        assert record.get("mode") == "full" and record.get("wall_s", 0) > 0, f"{name}: no full-size run record"
        first = "".join(o.get("text", "") for o in code[0].outputs if o.get("output_type") == "stream")
        assert "quick mode: False" in first, f"{name} was stored from a quick run: {first!r}"


def test_stored_runs_keep_what_a_terminal_shows_of_a_progress_bar():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from benchmarks.tutorials import collapse_carriage_returns, tidy_streams

    bar = "\r  0%|          | 0/3\r 67%|######6   | 2/3\r100%|##########| 3/3\n"
    assert collapse_carriage_returns(bar) == "100%|##########| 3/3\n"
    assert collapse_carriage_returns("quick mode: False\nline\n") == "quick mode: False\nline\n"
    warning = ("/x/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update jupyter and ipywidgets.\n"
               "  from .autonotebook import tqdm as notebook_tqdm\n")
    cell = new_code_cell("fit()", outputs=[
        new_output("stream", name="stderr", text=warning),
        *[new_output("stream", name="stderr", text=f"\rWLM: {i}/3") for i in range(4)],
        new_output("stream", name="stdout", text="Mechanics(...)\n"),
        new_output("stream", name="stderr", text="\n"),
        new_output("display_data", data={"text/plain": "<Figure>"}),
    ])
    nb = new_notebook(cells=[cell])
    tidy_streams(nb)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in nb.cells[0].outputs] == [
        ("stream", "stderr", "WLM: 3/3"), ("stream", "stdout", "Mechanics(...)\n"), ("display_data", None, None)]


def test_full_size_runner_refuses_quick_mode_and_unknown_notebooks(monkeypatch, capsys):
    from benchmarks import tutorials

    monkeypatch.setenv("SCWLM_TUTORIAL_QUICK", "1")
    with pytest.raises(SystemExit):
        tutorials.main([])
    assert "SCWLM_TUTORIAL_QUICK" in capsys.readouterr().err
    monkeypatch.delenv("SCWLM_TUTORIAL_QUICK")
    with pytest.raises(SystemExit):
        tutorials.main(["no_such_tutorial.ipynb"])
    assert "no_such_tutorial.ipynb" in capsys.readouterr().err


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
