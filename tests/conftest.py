import os

import numpy as np
import pytest
import torch

#: a small network for fast tests (the paper's defaults are hidden=64, heads=4, blocks=4, ffn=512)
TINY = dict(hidden=16, heads=2, blocks=1, ffn=16, progress=False)


@pytest.fixture(autouse=True)
def _threads():
    # tiny problems run fastest on one thread (and never oversubscribe a small shared machine)
    torch.set_num_threads(int(os.environ.get("SCWLM_TEST_THREADS", "1")))
    yield


@pytest.fixture
def tiny():
    return dict(TINY)


@pytest.fixture
def drifting():
    """Three snapshots of a Gaussian cloud drifting to the right."""
    rng = np.random.default_rng(0)
    snaps = [rng.normal(size=(40, 2)) + np.array([0.5 * t, 0.0]) for t in range(3)]
    return snaps, np.array([0.0, 1.0, 2.0])


def data_dir():
    """$SCWLM_DATA_DIR, or None when unset or missing (tests needing real data then skip)."""
    d = os.environ.get("SCWLM_DATA_DIR")
    return d if d and os.path.isdir(d) else None
