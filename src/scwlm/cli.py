"""The ``scwlm`` command: ``scwlm demo``, ``scwlm fit``, ``scwlm info``.

Examples
--------
.. code-block:: bash

    scwlm demo --out demo_out            # simulate, fit, forecast; figure + W1 table
    scwlm fit data.npz --out model --n-iter 2000 --set p=1 --set hidden=32
    scwlm info model
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

__all__ = ["main"]


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _load_npz(path: str):
    import numpy as np

    z = np.load(path, allow_pickle=False)
    if "positions" in z.files:
        pos = z["positions"]
        if pos.ndim != 3:
            raise ValueError(f"{path}: 'positions' must be a (T, n, d) array, got shape {pos.shape}")
        snaps = list(pos)
    else:
        keys = sorted((k for k in z.files if k.startswith("x_")), key=lambda k: int(k[2:]))
        if not keys:
            raise ValueError(f"{path}: expected 'positions' (T, n, d) or arrays 'x_0', 'x_1', ... (found {z.files})")
        snaps = [z[k] for k in keys]
    times = z["times"] if "times" in z.files else np.arange(len(snaps), dtype=float)
    vel = None
    if "velocities" in z.files:
        v = z["velocities"]
        vel = list(v) if v.ndim == 3 else v
    elif "v_0" in z.files:
        vel = z["v_0"]
    return snaps, times, vel


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scwlm`` console command."""
    parser = argparse.ArgumentParser(prog="scwlm", description="Wasserstein Lagrangian Mechanics from snapshots.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulate a damped harmonic well, fit WLM, forecast, write a figure and a W1 table")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--n", type=int, default=200, help="number of particles")
    p.add_argument("--n-iter", type=int, default=400, help="training iterations")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("fit", help="fit WLM to snapshots stored in an .npz file and save the model")
    p.add_argument("data", help="npz with 'positions' (T, n, d) or 'x_0', 'x_1', ...; optional 'times', 'velocities' or 'v_0'")
    p.add_argument("--out", required=True, help="folder to save the model to")
    p.add_argument("--n-iter", type=int, default=2000)
    p.add_argument("--friction", default="learnable", help="'learnable' or a fixed value")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any WLMConfig field, e.g. --set p=1")

    p = sub.add_parser("info", help="describe a saved model")
    p.add_argument("model")

    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        run_demo(args.out, n=args.n, n_iter=args.n_iter, device=args.device, random_state=args.seed, progress=not args.no_progress)
        return 0
    if args.command == "fit":
        import scwlm

        config = {}
        for item in args.set:
            if "=" not in item:
                parser.error(f"--set expects KEY=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            config[k] = _parse_value(v)
        friction = args.friction if args.friction == "learnable" else float(args.friction)
        snaps, times, vel = _load_npz(args.data)
        mech = scwlm.fit(snaps, times, vel, friction=friction, n_iter=args.n_iter, device=args.device, random_state=args.seed, **config)
        path = mech.save(args.out)
        print(f"{mech}\nsaved to {path}")
        return 0
    if args.command == "info":
        import scwlm

        mech = scwlm.load(args.model)
        print(mech)
        print(json.dumps({k: v for k, v in mech.info.items()}, indent=2, default=str))
        return 0
    return 1  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
