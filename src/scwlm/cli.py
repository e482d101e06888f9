"""The ``scwlm`` command: ``scwlm demo``, ``scwlm fit``, ``scwlm info``.

Every user error (a missing or damaged file, a bad option, invalid data) is one line
``scwlm: error: ...`` on stderr with exit status 2; a failure while running (e.g. a diverged fit)
exits with status 1. ``--debug`` (or ``SCWLM_DEBUG=1``) prints the traceback as well.

Examples
--------
.. code-block:: bash

    scwlm demo --out demo_out            # simulate, fit, forecast; figure + W1 table
    scwlm fit data.npz --out model --n-iter 2000 --set p=1 --set hidden=32
    scwlm fit cells.h5ad --time-key day --basis X_pca --n-dims 5 --out model
    torchrun --nproc-per-node 2 -m scwlm fit data.npz --out ens --seeds 0 1 2 3   # 2 seeds per process
    scwlm info model
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Sequence

__all__ = ["main"]

#: exceptions that mean "the user asked for something that cannot work" (exit status 2)
_USER_ERRORS = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError,
                PermissionError)


class _UsageError(Exception):
    """A bad command line (argparse's complaints, and our own checks of options)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message, and no sys.exit here
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _one_line(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    from .api import _parse_seed

    try:
        return _parse_seed(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {text!r}") from None


def _friction(text: str):
    if text == "learnable":
        return text
    from .api import _parse_friction

    try:
        return _parse_friction(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'learnable' or a finite number >= 0, got {text!r}") from None


#: Python's spellings of the JSON constants, accepted in ``--set`` values too
_PY_CONSTANTS = {"None": None, "True": True, "False": False}


def parse_value(text: str):
    """A ``--set key=value`` value: JSON (numbers, ``true``/``false``/``null``, lists, quoted strings),
    Python's ``None``/``True``/``False``, or else the text itself.

    Examples
    --------
    >>> [parse_value(t) for t in ["8", "1.25", "None", "false", "[1, 2]", "paper"]]
    [8, 1.25, None, False, [1, 2], 'paper']
    """
    text = text.strip()
    if text in _PY_CONSTANTS:
        return _PY_CONSTANTS[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_settings(items) -> dict:
    """``--set`` items ``KEY=VALUE`` as engine settings, each value read by :func:`parse_value`
    (``ValueError`` naming ``--set`` for an item without ``=`` or without a key).

    Examples
    --------
    >>> parse_settings(["hidden=8", "lr_schedule=cosine", "blur=null"])
    {'hidden': 8, 'lr_schedule': 'cosine', 'blur': None}
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def _check_out(out: str, what: str = "--out") -> Path:
    """Refuse before any work an ``--out`` that would overwrite something that is not a scwlm model."""
    path = Path(out)
    if path.exists():
        if not path.is_dir():
            raise _UsageError(f"{what} {out!r} exists and is not a directory")
        entries = set(os.listdir(path))
        is_model = {"config.json", "state.pt"} <= entries and "ensemble.json" not in entries
        if entries and not is_model:
            raise _UsageError(f"{what} {out!r} is a non-empty folder that is not a saved scwlm model; choose a new path")
    parent = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise _UsageError(f"{what} {out!r} cannot be written ({parent} is not a writable folder)")
    return path


def _npz_array(z, path: str, key: str):
    import numpy as np

    try:
        value = z[key]
        if not isinstance(value, np.ndarray):  # numpy hands back raw bytes for a member that is not .npy
            raise ValueError(f"{path}: {key!r} could not be read (the archive member is not an .npy array)")
        return value
    except ValueError as exc:
        if str(exc).startswith(f"{path}: "):
            raise
        if "allow_pickle" in str(exc):
            raise ValueError(f"{path}: {key!r} is an object array; store numeric arrays only") from None
        raise ValueError(f"{path}: {key!r} could not be read ({_one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - zlib/zipfile/OSError for a damaged member
        raise ValueError(f"{path}: {key!r} could not be read ({type(exc).__name__}: {_one_line(exc)})") from None


def _load_npz(path: str):
    import numpy as np

    with open(path, "rb") as f:
        magic = f.read(6)
    if not magic.startswith(b"PK") and not magic.startswith(b"\x93NUMPY"):
        raise ValueError(f"{path}: not an .npz archive (an .npz is a zip of .npy arrays, as written by numpy.savez)")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - np.load raises many kinds for a file that is not an npz
        raise ValueError(f"{path}: not a readable .npz file ({type(exc).__name__}: {_one_line(exc)})") from None
    if not hasattr(z, "files"):
        raise ValueError(f"{path}: holds a single array, not an .npz archive of named arrays")
    if "positions" in z.files:
        pos = _npz_array(z, path, "positions")
        if pos.ndim != 3:
            raise ValueError(f"{path}: 'positions' must be a (T, n, d) array, got shape {pos.shape}")
        snaps = list(pos)
    else:
        keys = [k for k in z.files if k.startswith("x_")]
        bad = [k for k in keys if not k[2:].isdigit()]
        if bad:
            raise ValueError(f"{path}: snapshot keys must be 'x_0', 'x_1', ... (an integer after 'x_'), got {bad[0]!r}")
        if not keys:
            raise ValueError(f"{path}: expected 'positions' (T, n, d) or arrays 'x_0', 'x_1', ... (found {z.files})")
        snaps = [_npz_array(z, path, k) for k in sorted(keys, key=lambda k: int(k[2:]))]
    times = _npz_array(z, path, "times") if "times" in z.files else np.arange(len(snaps), dtype=float)
    vel = None
    if "velocities" in z.files:
        v = _npz_array(z, path, "velocities")
        vel = list(v) if v.ndim == 3 else v
    elif "v_0" in z.files:
        vel = _npz_array(z, path, "v_0")
    return snaps, times, vel, {}


def _load_h5ad(path: str, args):
    try:
        import anndata
    except ImportError:  # pragma: no cover - anndata is a dependency of the AnnData layer
        raise ValueError("reading .h5ad needs the anndata package (pip install anndata)") from None
    from .tl._prepare import prepare

    try:
        adata = anndata.read_h5ad(path)
    except Exception as exc:  # noqa: BLE001 - h5py raises many kinds for a damaged file
        raise ValueError(f"{path}: not a readable .h5ad file ({type(exc).__name__}: {_one_line(exc)})") from None
    if args.velocity_key is not None and args.velocity_key not in adata.obsm:
        raise ValueError(f"{path}: --velocity-key {args.velocity_key!r} is not in adata.obsm "
                         f"(available: {sorted(adata.obsm.keys())})")
    try:
        prep = prepare(adata, args.time_key, args.basis, args.n_dims, args.velocity_key, what="scwlm fit")
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: {_one_line(exc)}") from None
    info = {"source": {"file": os.path.abspath(path), "time_key": args.time_key, "basis": args.basis,
                       "n_dims": int(prep.n_dims), "velocity_source": prep.velocity_source,
                       "time_labels": list(prep.axis.labels),
                       "standardization": {"mean": prep.mean.tolist(), "std": prep.std.tolist()}}}
    return prep.snapshots, prep.axis.times, prep.velocities, info


def _parser() -> _Parser:
    parser = _Parser(prog="scwlm", description="Wasserstein Lagrangian Mechanics from snapshots.")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error (or set SCWLM_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulate a damped harmonic well, fit WLM, forecast, write a figure and a W1 table")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--n", type=_positive_int, default=200, help="number of particles")
    p.add_argument("--n-iter", type=_positive_int, default=400, help="training iterations")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("fit", help="fit WLM to snapshots in an .npz or .h5ad file and save the model")
    p.add_argument("data", help="npz with 'positions' (T, n, d) or 'x_0', 'x_1', ...; optional 'times', 'velocities' "
                                "or 'v_0'. Or an .h5ad: one snapshot per time label (see --time-key, --basis)")
    p.add_argument("--out", required=True, help="folder to save the model to (new, empty, or a saved model)")
    p.add_argument("--n-iter", type=_positive_int, default=2000)
    p.add_argument("--friction", type=_friction, default="learnable", help="'learnable' or a fixed value >= 0")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any WLMConfig field, e.g. --set p=1")
    d = p.add_argument_group("several processes (torchrun; see scwlm.distributed and docs/scaling.md)")
    d.add_argument("--seeds", type=_seed, nargs="+", default=None, help="train an ensemble, one model per seed")
    d.add_argument("--parallel", choices=("ensemble", "data"), default=None,
                   help="under torchrun: split the seeds ('ensemble', the default) or the particles ('data') across ranks")
    h = p.add_argument_group(".h5ad input (as in scwlm.tl.fit_mechanics)")
    h.add_argument("--time-key", default=None, help="obs column of the time labels (default: day)")
    h.add_argument("--basis", default=None, help="obsm embedding (default: X_pca)")
    h.add_argument("--velocity-key", default=None, help="obsm velocities of the embedding (default: none, start at rest)")
    h.add_argument("--n-dims", type=_positive_int, default=None, help="leading coordinates of the basis (default: all)")

    p = sub.add_parser("info", help="describe a saved model")
    p.add_argument("model")
    return parser


def _fit(args) -> int:
    import scwlm
    from .core.config import WLMConfig
    from .core.snapshots import as_snapshots, check_dtype_range
    from .mechanics import _resolve_device

    try:
        config = parse_settings(args.set)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    try:
        cfg = WLMConfig.from_kwargs(**config)
    except ValueError as exc:
        raise _UsageError(f"--set: {_one_line(exc)}") from None
    try:
        _resolve_device(args.device, what="--device")
    except ValueError as exc:
        raise _UsageError(_one_line(exc)) from None
    data = args.data
    suffix = Path(data).suffix.lower()
    h5ad_opts = [f"--{n.replace('_', '-')}" for n in ("time_key", "basis", "velocity_key", "n_dims") if getattr(args, n) is not None]
    if suffix not in (".npz", ".h5ad"):
        raise _UsageError(f"data file {data!r} must end in .npz or .h5ad")
    if suffix == ".npz" and h5ad_opts:
        raise _UsageError(f"{', '.join(h5ad_opts)} apply to .h5ad input only, not {data!r}")
    if not Path(data).exists():
        raise FileNotFoundError(f"data file {data!r} not found")
    if Path(data).is_dir():
        raise IsADirectoryError(f"data file {data!r} is a directory")
    out = _check_out(args.out)
    if suffix == ".h5ad":
        args.time_key = args.time_key or "day"
        args.basis = args.basis or "X_pca"
        snaps, times, vel, info = _load_h5ad(data, args)
    else:
        snaps, times, vel, info = _load_npz(data)
    try:
        check_dtype_range(as_snapshots(snaps, times, vel), cfg.dtype)
    except ValueError as exc:
        raise ValueError(f"{data}: {_one_line(exc)}") from None
    from . import distributed

    if distributed.launched() or args.parallel or args.seeds:  # all ranks train, rank 0 writes --out
        models = distributed.fit(snaps, times, vel, mode=args.parallel or "ensemble", friction=args.friction,
                                 n_iter=args.n_iter, device=args.device, out=out, info=info,
                                 random_state=args.seeds if args.seeds else args.seed, **config)
        if os.environ.get("RANK", "0") == "0":
            print(f"{models}\nsaved to {out}")
        distributed.shutdown()  # every rank leaves together (see scwlm.distributed.shutdown)
        return 0
    mech = scwlm.fit(snaps, times, vel, friction=args.friction, n_iter=args.n_iter, device=args.device,
                     random_state=args.seed, **config)
    mech.info.update(info)
    path = mech.save(out)
    print(f"{mech}\nsaved to {path}")
    return 0


def _run(args) -> int:
    if args.command == "demo":
        from ._demo import run_demo
        from .mechanics import _resolve_device

        try:
            _resolve_device(args.device, what="--device")
        except ValueError as exc:
            raise _UsageError(_one_line(exc)) from None
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise _UsageError(f"--out {args.out!r} exists and is not a directory")
        run_demo(args.out, n=args.n, n_iter=args.n_iter, device=args.device, random_state=args.seed, progress=not args.no_progress)
        return 0
    if args.command == "fit":
        return _fit(args)
    if args.command == "info":
        import scwlm

        loaded = scwlm.load(args.model)
        for mech in (loaded if isinstance(loaded, list) else [loaded]):
            print(mech)
            print(json.dumps({k: v for k, v in mech.info.items()}, indent=2, default=str))
        return 0
    return 1  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scwlm`` console command; returns the exit status (0, 1 or 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SCWLM_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    argv = [a for a in argv if a != "--debug"]
    from .core.trainer import TrainingDivergedError

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        print(f"scwlm: warning: {' '.join(str(message).split())}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            return _run(_parser().parse_args(argv))
    except KeyboardInterrupt:
        print("scwlm: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit statuses
        if isinstance(exc, _UsageError) or (isinstance(exc, _USER_ERRORS) and not isinstance(exc, TrainingDivergedError)):
            status, text = 2, _one_line(exc)
        elif isinstance(exc, TrainingDivergedError):
            status, text = 1, _one_line(exc)
        else:
            status, text = 1, f"{type(exc).__name__}: {_one_line(exc)}"
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run with --debug for the traceback)" if status == 1 else ""
        print(f"scwlm: error: {text}{hint}", file=sys.stderr)
        return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
