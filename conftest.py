"""Shared doctest namespace: docstring examples may use ``np``, ``torch``, ``scwlm``, ``snaps``
(three small 2-D snapshots) and ``mech`` (a tiny model fitted to them)."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def _tiny_fit():
    import scwlm

    rng = np.random.default_rng(0)
    snaps = [rng.normal(size=(30, 2)) + t for t in range(3)]
    mech = scwlm.fit(snaps, [0.0, 1.0, 2.0], n_iter=3, hidden=8, heads=1, blocks=1, ffn=8, progress=False)
    return snaps, mech


@pytest.fixture(autouse=True)
def _doctest_namespace(request, doctest_namespace):
    if request.node.__class__.__name__ != "DoctestItem":
        return
    import torch

    import scwlm

    snaps, mech = request.getfixturevalue("_tiny_fit")
    doctest_namespace.update(np=np, torch=torch, scwlm=scwlm, snaps=snaps, mech=mech)
