"""Execute the tutorials at full size and store them with their outputs.

The notebooks in ``tutorials/`` are stored *with* the outputs of a full-size run (the settings each
notebook states, without ``SCWLM_TUTORIAL_QUICK``), and the documentation renders those stored
outputs; the test suite only executes copies at the quick size, as a smoke test. This command
refreshes the stored runs::

    SCWLM_DATA_DIR=/path/to/datasets python -m benchmarks.tutorials            # every notebook
    SCWLM_DATA_DIR=/path/to/datasets python -m benchmarks.tutorials eb_leave_one_out.ipynb

Each notebook is executed in place by a fresh ``python3`` kernel of this interpreter (a kernel spec
in a temporary ``JUPYTER_PATH``), in a temporary working directory; when it succeeds, it is
written back with its outputs and a ``metadata["scwlm"]`` record: ``mode`` (``"full"``), the
date, the commit, the machine and the wall-clock seconds of the run. A notebook whose run fails
is left as it was. Run it on a quiet machine: the notebooks print training times.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .reproduce import machine_info

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
KERNEL = "python3"


def notebook_names() -> list[str]:
    """The tutorial notebooks, sorted by name."""
    return sorted(p.name for p in TUTORIALS.glob("*.ipynb"))


def run_record(wall_s: float, m: dict[str, Any]) -> dict[str, Any]:
    """The ``metadata["scwlm"]`` record of a full-size run that took ``wall_s`` seconds on machine ``m``
    (:func:`benchmarks.reproduce.machine_info`, read before the first notebook is written back)."""
    return {
        "mode": "full",
        "executed": datetime.datetime.now().isoformat(timespec="minutes"),
        "commit": m.get("commit"),
        "machine": f"{m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')}",
        "wall_s": round(float(wall_s)),
    }


def execute(name: str, timeout: int, machine: dict[str, Any]) -> float:
    """Execute ``tutorials/<name>`` at full size and store it with its outputs; returns the wall seconds."""
    import nbclient
    import nbformat

    path = TUTORIALS / name
    if not path.is_file():
        raise FileNotFoundError(f"no tutorial {name!r} in {TUTORIALS} (have: {', '.join(notebook_names())})")
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as work:
        client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=timeout,
                                         resources={"metadata": {"path": work}})
        start = time.perf_counter()
        client.execute()  # raises CellExecutionError (with the traceback) when a cell fails
        wall = time.perf_counter() - start
    nb.metadata["scwlm"] = run_record(wall, machine)
    nbformat.write(nb, path)
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tutorials", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebook file names in tutorials/ (default: all)")
    ap.add_argument("--timeout", type=int, default=7200, help="seconds per cell before it counts as hung (default 7200)")
    args = ap.parse_args(argv)
    if os.environ.get("SCWLM_TUTORIAL_QUICK"):
        ap.error("SCWLM_TUTORIAL_QUICK is set: this command stores full-size runs; unset it")
    if not os.environ.get("SCWLM_DATA_DIR"):
        print("[tutorials] SCWLM_DATA_DIR is unset: notebooks with real data look in the user cache", file=sys.stderr)
    names = args.names or notebook_names()
    unknown = [n for n in names if n not in notebook_names()]
    if unknown:
        ap.error(f"unknown notebook(s) {unknown}; have: {', '.join(notebook_names())}")

    from ipykernel.kernelspec import write_kernel_spec

    machine = machine_info()  # before any notebook is rewritten (the commit's "+dirty" flag)

    with tempfile.TemporaryDirectory() as jupyter:
        write_kernel_spec(path=str(Path(jupyter) / "kernels" / KERNEL))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [jupyter, os.environ.get("JUPYTER_PATH")]))
        # numba (scanpy's neighbours and UMAP) would otherwise start one thread per core beside torch's
        os.environ.setdefault("NUMBA_NUM_THREADS", "1")
        os.environ.pop("MPLBACKEND", None)  # ipykernel's inline backend draws the figures
        for name in names:
            print(f"[tutorials] {name}: running at full size ...", flush=True)
            wall = execute(name, args.timeout, machine)
            print(f"[tutorials] {name}: {wall:.0f} s, stored with its outputs", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
