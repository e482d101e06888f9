"""Write ``legacy_64cf8ec.h5ad``: an AnnData whose ``.uns`` was written by scwlm at commit 64cf8ec.

The file pins the pre-``format_version`` layout of ``adata.uns`` (a fit stores ``params/holdout``
and ``model``; a leave-one-out run ``params/holdouts`` and ``models``; nothing says which is which),
so that ``tests/test_store.py`` can check that today's readers still load it. It was made with the
OLD code, not the current one::

    git worktree add /tmp/scwlm_old 64cf8ec
    PYTHONPATH=/tmp/scwlm_old/src .venv/bin/python tests/data/make_legacy_h5ad.py
    git worktree remove /tmp/scwlm_old

Contents: 4 days x 10 cells, a 2-D ``X_pca`` / ``velocity_pca`` / ``X_umap``;
``uns["wlm"]`` = ``fit_mechanics(holdout=1)`` plus a recorded ``rollout`` (source 0, targets 1, 2);
``uns["wlm_loo"]`` = ``leave_one_out(random_state=[0, 1])``; ``obs["stage"]`` = an ordered
categorical ``["d0/a", "d1/b", "d2/c", "d3/d"]`` and ``uns["slash_loo"]`` a leave-one-out run on it
(whose model keys the old code wrote with "/" replaced by "_").
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(out: Path) -> None:
    import anndata as ad
    import numpy as np
    import pandas as pd
    import torch

    import scwlm

    torch.set_num_threads(1)
    engine = dict(hidden=8, heads=1, blocks=1, ffn=8, n_iter=2, progress=False, device="cpu")
    rng = np.random.default_rng(0)
    day = np.repeat([0, 1, 2, 3], 10)
    X = rng.normal(size=(day.size, 2)) + np.c_[day, np.zeros(day.size)]
    V = np.c_[np.ones(day.size), np.zeros(day.size)] + 0.1 * rng.normal(size=(day.size, 2))
    stages = np.array(["d0/a", "d1/b", "d2/c", "d3/d"])
    obs = pd.DataFrame({"day": day, "stage": pd.Categorical(stages[day], categories=list(stages), ordered=True)},
                       index=[f"cell{i}" for i in range(day.size)])
    adata = ad.AnnData(obs=obs, obsm={"X_pca": X, "velocity_pca": V, "X_umap": X @ np.array([[0.8, -0.6], [0.6, 0.8]])})
    scwlm.tl.fit_mechanics(adata, "day", n_dims=2, holdout=1, **engine)
    scwlm.tl.rollout(adata, "wlm", source=0, targets=[1, 2])
    scwlm.tl.leave_one_out(adata, "day", n_dims=2, random_state=[0, 1], holdouts=[2], **engine)
    scwlm.tl.leave_one_out(adata, "stage", n_dims=2, holdouts=["d1/b"], key_added="slash_loo", **engine)
    adata.write_h5ad(out)


if __name__ == "__main__":  # pragma: no cover - run by hand with the old code on PYTHONPATH
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("legacy_64cf8ec.h5ad"))
