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
import contextlib
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


def collapse_carriage_returns(text: str) -> str:
    r"""What a terminal shows of ``text``: of every line, the part after its last ``\r``.

    Progress bars redraw themselves with carriage returns; stored as they arrive, a bar of 2,000
    iterations would keep every redraw.

    Examples
    --------
    >>> collapse_carriage_returns("fit:  10%\rfit:  50%\rfit: 100%\ndone\n")
    'fit: 100%\ndone\n'
    """
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


#: the warning tqdm gives in a kernel without ipywidgets (it then draws the text bar it stores)
_TQDM_NO_WIDGETS = "TqdmWarning: IProgress not found"


def tidy_streams(nb: Any) -> None:
    """Store what a reader of the notebook would see of its printed output, in place.

    In every code cell, consecutive stream outputs of the same stream are merged into one (the
    kernel sends a progress bar as one message per redraw), every line is reduced to what a
    terminal shows (:func:`collapse_carriage_returns`), and tqdm's warning that ipywidgets is
    missing (with the source line it quotes) is dropped.
    """
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        merged: list[Any] = []
        for out in cell.outputs:
            if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                    and merged[-1].get("name") == out.get("name")):
                merged[-1]["text"] += out["text"]
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                lines = collapse_carriage_returns(out["text"]).split("\n")
                keep = []
                for i, line in enumerate(lines):
                    if _TQDM_NO_WIDGETS in line or (i and _TQDM_NO_WIDGETS in lines[i - 1] and line.startswith("  ")):
                        continue
                    keep.append(line)
                out["text"] = "\n".join(keep)
        cell.outputs = [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]


@contextlib.contextmanager
def private_kernel():
    """A ``python3`` kernel spec of this interpreter in a temporary ``JUPYTER_PATH``, for the block.

    So a user-level ``python3`` kernel of another environment is never picked up.
    """
    from ipykernel.kernelspec import write_kernel_spec

    before = os.environ.get("JUPYTER_PATH")
    with tempfile.TemporaryDirectory() as jupyter:
        write_kernel_spec(path=str(Path(jupyter) / "kernels" / KERNEL))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [jupyter, before]))
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = before


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
    tidy_streams(nb)
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
    have = notebook_names()
    names = args.names or have
    unknown = [n for n in names if n not in have]
    if unknown:
        ap.error(f"unknown notebook(s) {unknown}; have: {', '.join(have)}")

    machine = machine_info()  # before any notebook is rewritten (the commit's "+dirty" flag)

    with private_kernel():
        # NUMBA_NUM_THREADS is left alone: numba's OpenMP layer (scanpy's neighbours, scVelo) sets the
        # OpenMP thread count it shares with torch, so NUMBA_NUM_THREADS=1 would train on one core
        os.environ.pop("MPLBACKEND", None)  # ipykernel's inline backend draws the figures
        for name in names:
            print(f"[tutorials] {name}: running at full size ...", flush=True)
            wall = execute(name, args.timeout, machine)
            print(f"[tutorials] {name}: {wall:.0f} s, stored with its outputs", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
