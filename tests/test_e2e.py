"""End to end: WLM learns known mechanics well enough to forecast beyond its training window."""

import numpy as np

import scwlm
from scwlm.core.metrics import wasserstein1


def test_harmonic_well_forecast_beats_carrying_the_last_snapshot_forward():
    # 100 particles in a damped harmonic well (omega = 1, gamma = 0.3) swinging through the centre:
    # train on t <= 4 (11 snapshots), forecast t = 4.4 .. 6.4 (6 snapshots) where the cloud swings back
    ds = scwlm.datasets.harmonic_well(n=100)
    snaps, times, vels = ds
    n_train = ds.meta["n_train"]
    mech = scwlm.fit(
        snaps[:n_train], times[:n_train], vels[0], n_iter=200, random_state=0, progress=False,
        hidden=32, heads=2, blocks=2, ffn=64, lr=3e-3,
        friction_init=0.1,  # a weakly damped system: start the learnable friction low
    )
    ev = mech.evaluate(snaps, times, vels, n_train=n_train)
    carry = np.mean([wasserstein1(snaps[n_train - 1], snaps[i]) for i in range(n_train, len(snaps))])
    print(f"\nharmonic well: WLM forecast W1 {ev['test_mean']:.3f} +- {ev['test_se']:.3f}, "
          f"train W1 {ev['train_mean']:.3f}, carry-forward {carry:.3f}, learned gamma {mech.friction:.3f}")
    assert np.isfinite(ev["test_mean"])
    assert ev["test_mean"] < 0.65 * carry
    assert ev["train_mean"] < 0.3  # the training window itself is fitted
