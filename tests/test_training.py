"""Training (Algorithm 1): gradients, loss decrease, determinism, ensembles, checkpoints, divergence."""

import numpy as np
import pytest
import torch

import scwlm
from scwlm import datasets
from scwlm.core.config import WLMConfig
from scwlm.core.divergence import SinkhornDivergence
from scwlm.core.snapshots import as_snapshots
from scwlm.core.trainer import RolloutLoss, Task, train

from conftest import TINY


def test_learnable_friction_receives_gradients(drifting):
    snaps, times = drifting
    cfg = WLMConfig(**TINY)
    res = train([Task(as_snapshots(snaps, times), seed=0)], cfg, n_iter=1)
    # the friction moved away from its initial value 1.0 (AdamW's first step is about lr = 1e-2 in log space)
    assert abs(res.friction.values()[0] - 1.0) > 1e-3
    # and its gradient is finite and non-zero on a fresh iteration
    s = as_snapshots(snaps, times)
    res2 = train([Task(s, seed=0)], cfg, n_iter=1)
    loss = RolloutLoss(cfg, res2.network, res2.friction, *_ctx_args(s, cfg)[:2], **_ctx_args(s, cfg)[2])
    loss(0).sum().backward()
    g = res2.friction.log_gamma.grad
    assert g is not None and torch.isfinite(g).all() and float(g.abs().sum()) > 0


def _ctx_args(s, cfg):
    from scwlm.core.divergence import blur_heuristic, point_cloud_diameter
    from scwlm.core.trainer import TrainingData

    data = TrainingData([Task(s)], cfg.replace(dt=1.0), torch.device("cpu"), torch.float32)
    blur, diameter = blur_heuristic(s.points), point_cloud_diameter(s.points)
    loss = SinkhornDivergence(p=cfg.p, blur=blur, diameter=diameter)
    return data, loss, dict(generators=[torch.Generator().manual_seed(0)], device_generators=[torch.Generator().manual_seed(1)],
                            blurs=[blur], diameters=[diameter])


def test_fixed_friction_stays_fixed(drifting):
    snaps, times = drifting
    mech = scwlm.fit(snaps, times, friction=0.25, n_iter=3, **TINY)
    assert mech.friction == pytest.approx(0.25)
    assert np.allclose(mech.history["friction"], 0.25)


def test_sinkhorn_loss_decreases_during_a_short_fit():
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(60, 2))
    snaps = [x0, x0 + np.array([1.5, -0.5])]  # two snapshots: every iteration has the same horizon
    mech = scwlm.fit(snaps, [0.0, 1.0], n_iter=60, lr=3e-3, **TINY)
    loss = mech.history["loss"]
    assert loss.shape == (60,)
    assert loss[-10:].mean() < 0.5 * loss[:10].mean()


def test_same_random_state_same_result_and_different_seed_differs(drifting):
    snaps, times = drifting
    kw = dict(n_iter=4, dropout=0.1, particles_per_batch=30, **TINY)
    a = scwlm.fit(snaps, times, random_state=7, **kw)
    b = scwlm.fit(snaps, times, random_state=7, **kw)
    c = scwlm.fit(snaps, times, random_state=8, **kw)
    assert np.array_equal(a.history["loss"], b.history["loss"])
    ra = a.rollout(snaps[0], t0=0.0, times=[2.0])
    assert np.array_equal(ra, b.rollout(snaps[0], t0=0.0, times=[2.0]))
    assert not np.array_equal(ra, c.rollout(snaps[0], t0=0.0, times=[2.0]))


def test_fit_does_not_touch_the_global_rng(drifting):
    snaps, times = drifting
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    scwlm.fit(snaps, times, n_iter=2, dropout=0.1, **TINY)
    assert torch.equal(torch.rand(3), expected)


def test_ensemble_equals_separate_fits(drifting):
    snaps, times = drifting
    kw = dict(n_iter=5, dropout=0.1, friction=["learnable", 0.5], **TINY)
    ens = scwlm.fit(snaps, times, random_state=[3, 4], **kw)
    assert isinstance(ens, scwlm.MechanicsEnsemble) and len(ens) == 2
    for member, seed, fr in zip(ens, (3, 4), ("learnable", 0.5)):
        alone = scwlm.fit(snaps, times, random_state=seed, **{**kw, "friction": fr})
        assert np.allclose(member.history["loss"], alone.history["loss"], rtol=1e-4, atol=1e-6)
        assert member.friction == pytest.approx(alone.friction, rel=1e-5)
        assert np.allclose(member.rollout(snaps[0], t0=0.0, times=[2.0]), alone.rollout(snaps[0], t0=0.0, times=[2.0]), atol=1e-4)


def test_fit_many_trains_one_model_per_dataset(drifting):
    snaps, times = drifting
    ens = scwlm.fit_many([(snaps, times), (snaps[:2], times[:2])], random_state=[0, 1], n_iter=3, **TINY)
    alone = scwlm.fit(snaps[:2], times[:2], random_state=1, n_iter=3, **TINY)
    assert np.allclose(ens[1].history["loss"], alone.history["loss"], rtol=1e-4, atol=1e-6)
    assert ens[1].info["train_times"] == [0.0, 1.0]


def test_checkpoint_resume_equals_uninterrupted_run(drifting, tmp_path):
    snaps, times = drifting
    ck = tmp_path / "ck.pt"
    # warm_start="auto" scales with n_iter (a 3-iteration run is then no prefix of a 6-iteration one)
    kw = dict(random_state=5, dropout=0.1, warm_start=0, **TINY)
    full = scwlm.fit(snaps, times, n_iter=6, **kw)
    scwlm.fit(snaps, times, n_iter=3, checkpoint_every=3, checkpoint_path=str(ck), **kw)
    assert ck.exists()
    resumed = scwlm.fit(snaps, times, n_iter=6, resume=str(ck), **kw)
    assert np.array_equal(full.history["loss"], resumed.history["loss"])
    assert np.array_equal(full.rollout(snaps[0], t0=0.0, times=[2.0]), resumed.rollout(snaps[0], t0=0.0, times=[2.0]))
    with pytest.raises(ValueError, match="other data"):
        scwlm.fit([s + 1.0 for s in snaps], times, n_iter=6, resume=str(ck), **kw)
    with pytest.raises(ValueError, match="other settings"):
        scwlm.fit(snaps, times, n_iter=6, resume=str(ck), **{**kw, "lr": 1e-3})


def test_non_finite_loss_stops_with_clear_error_and_keeps_last_good_weights(drifting, monkeypatch):
    snaps, times = drifting
    kw = dict(random_state=2, warm_start=0, **TINY)  # count the main loop's loss calls only
    reference = scwlm.fit(snaps, times, n_iter=3, ema=None, **kw)
    calls = {"n": 0}
    original = SinkhornDivergence.__call__

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        out = original(self, *args, **kwargs)
        return out * float("nan") if calls["n"] == 4 else out

    monkeypatch.setattr(SinkhornDivergence, "__call__", poisoned)
    with pytest.raises(scwlm.TrainingDivergedError, match="iteration 3") as err:
        scwlm.fit(snaps, times, n_iter=10, ema=None, **kw)
    kept = err.value.mechanics
    assert err.value.iteration == 3
    assert np.array_equal(kept.rollout(snaps[0], t0=0.0, times=[2.0]), reference.rollout(snaps[0], t0=0.0, times=[2.0]))


def test_the_analytic_force_trains_as_autograd_forces_do(drifting):
    """The analytic force (the default's choice on large sets) and autograd give the same fit, to
    float32 rounding, with dropout masks in the attention (the row-blocked kernels' masked path)."""
    snaps, times = drifting
    assert scwlm.WLMConfig().force_impl == "auto"
    a = scwlm.fit(snaps, times, n_iter=4, dropout=0.1, force_impl="analytic", **TINY)
    b = scwlm.fit(snaps, times, n_iter=4, dropout=0.1, force_impl="autograd", **TINY)
    assert np.allclose(a.history["loss"], b.history["loss"], rtol=1e-4)
    assert np.allclose(a.rollout(snaps[0], t0=0.0, times=[2.0]), b.rollout(snaps[0], t0=0.0, times=[2.0]), atol=1e-4)


def test_full_rollout_gradient_and_force_implementations_train(drifting):
    snaps, times = drifting
    for extra in (dict(rollout_grad="full"), dict(force_impl="analytic"), dict(force_impl="autograd"), dict(checkpoint_steps=True), dict(integrator="exponential")):
        mech = scwlm.fit(snaps, times, n_iter=2, **TINY, **extra)
        assert np.isfinite(mech.history["loss"]).all()


def test_activation_checkpointing_gives_the_same_gradients(drifting):
    snaps, times = drifting
    a = scwlm.fit(snaps, times, n_iter=3, checkpoint_steps=False, **TINY)
    b = scwlm.fit(snaps, times, n_iter=3, checkpoint_steps=True, **TINY)
    assert np.allclose(a.history["loss"], b.history["loss"], rtol=1e-5)
    assert np.allclose(a.rollout(snaps[0], t0=0.0, times=[2.0]), b.rollout(snaps[0], t0=0.0, times=[2.0]), atol=1e-5)


def _count_checkpoints(monkeypatch):
    import torch.utils.checkpoint as ckpt

    calls, real = [], ckpt.checkpoint
    monkeypatch.setattr(ckpt, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_auto_checkpointing_keeps_what_fits_the_measured_budget_and_changes_nothing(drifting, monkeypatch):
    snaps, times = drifting
    calls = _count_checkpoints(monkeypatch)
    free = scwlm.fit(snaps, times, n_iter=3, checkpoint_steps=False, warm_start=0, **TINY)
    assert not calls
    roomy = scwlm.fit(snaps, times, n_iter=3, warm_start=0, **TINY)  # "auto": a tiny graph fits any budget
    assert not calls
    tight = scwlm.fit(snaps, times, n_iter=3, warm_start=0, memory_budget_gb=1e-9, **TINY)
    assert calls  # every evaluation is recomputed in the backward pass
    for other in (roomy, tight):
        assert np.allclose(free.history["loss"], other.history["loss"], rtol=1e-5)
        assert np.allclose(free.rollout(snaps[0], t0=0.0, times=[2.0]), other.rollout(snaps[0], t0=0.0, times=[2.0]), atol=1e-5)


def test_checkpoint_plan_follows_the_measured_bytes_of_a_force_evaluation(drifting):
    snaps, times = drifting
    s = as_snapshots(snaps, times)
    cfg = WLMConfig(**TINY, memory_budget_gb=1.0)
    res = train([Task(s, seed=0)], cfg.replace(checkpoint_steps=False), n_iter=1)
    loss = RolloutLoss(cfg, res.network, res.friction, *_ctx_args(s, cfg)[:2], **_ctx_args(s, cfg)[2])
    with torch.no_grad():
        loss(0)
    assert not loss.step_bytes  # nothing is kept without gradients, nothing measured
    loss(0)
    (n, per_step), = loss.step_bytes.items()
    assert n == s.points[0].shape[0] and per_step > 0
    loss.memory_budget = 3 * per_step  # room for three evaluations' graphs
    assert not loss.checkpointed(n, 3) and loss.checkpointed(n, 4)


def test_saved_tensor_bytes_counts_distinct_storages_of_the_backward_graph():
    from scwlm.core.trainer import saved_tensor_bytes

    w = torch.ones(4, 8, requires_grad=True)
    x = torch.ones(100, 4)
    out, n = saved_tensor_bytes(lambda: torch.tanh(x @ w).sum(), exclude=[w])
    # x for the product's gradient (1,600 bytes), tanh's output (3,200 bytes); w is excluded
    assert n == 100 * 4 * 4 + 100 * 8 * 4
    with torch.no_grad():
        assert saved_tensor_bytes(lambda: torch.tanh(x @ w).sum())[1] == 0


def test_memory_budget_is_validated_and_sized_for_the_device():
    from scwlm.core.config import AUTO_MEMORY_FRACTION_CPU, device_memory

    assert WLMConfig().memory_budget("cpu") == int(AUTO_MEMORY_FRACTION_CPU * device_memory("cpu"))
    assert WLMConfig().memory_budget(torch.device("cpu")) < device_memory("cpu") / 8
    assert WLMConfig(memory_budget_gb=0.5).memory_budget("cpu") == 2**29
    for bad in (0, -1, "big", True):
        with pytest.raises(ValueError, match="memory_budget_gb"):
            WLMConfig(memory_budget_gb=bad)


# --- issue 10, bugs 1, 3, 4 and issue 11, items 1, 2 ------------------------------------------
def test_fit_many_members_equal_separate_fits_on_uneven_time_grids():
    # leave-one-out of [0, 0.5, 2, 3]: each model keeps the time step of its own training times
    rng = np.random.default_rng(3)
    times = [0.0, 0.5, 2.0, 3.0]
    snaps = [rng.normal(size=(30, 2)) + np.array([t, 0.0]) for t in times]
    tiny = dict(hidden=8, heads=1, blocks=1, ffn=8, progress=False, n_iter=3)
    keep = [[0, 2, 3], [0, 1, 3]]
    ens = scwlm.fit_many([([snaps[i] for i in k], [times[i] for i in k]) for k in keep], random_state=0, **tiny)
    for member, k in zip(ens, keep):
        alone = scwlm.fit([snaps[i] for i in k], [times[i] for i in k], random_state=0, **tiny)
        assert member.dt == alone.dt
        assert np.allclose(member.rollout(snaps[0], t0=0.0, times=[3.0]), alone.rollout(snaps[0], t0=0.0, times=[3.0]), atol=1e-5)


def test_ensemble_members_do_not_share_a_mutable_config(drifting):
    snaps, times = drifting
    ens = scwlm.fit(snaps, times, random_state=[0, 1], n_iter=1, **TINY)
    with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError
        ens[0].config.eval_substeps = 1
    ens[0].config = ens[0].config.replace(eval_substeps=1)
    assert ens[1].config.eval_substeps == 5


def _poison_iteration(monkeypatch, n: int) -> None:
    calls = {"n": 0}
    original = SinkhornDivergence.__call__

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        out = original(self, *args, **kwargs)
        return out * float("nan") if calls["n"] == n else out

    monkeypatch.setattr(SinkhornDivergence, "__call__", poisoned)


def test_deferred_divergence_detection_names_the_first_bad_iteration_and_never_checkpoints_it(drifting, monkeypatch, tmp_path):
    # what accelerators do (a host read every sync_every iterations), forced on CPU
    import scwlm.core.trainer as trainer

    monkeypatch.setattr(trainer, "_sync_interval", lambda device, cfg: cfg.sync_every)
    snaps, times = drifting
    _poison_iteration(monkeypatch, 4)  # iteration 3 (the loss is called once per iteration)
    ck = tmp_path / "ck.pt"
    with pytest.raises(scwlm.TrainingDivergedError) as err:
        scwlm.fit(snaps, times, n_iter=10, sync_every=5, checkpoint_every=2, checkpoint_path=str(ck), ema=None,
                  warm_start=0, **TINY)
    assert err.value.iteration == 3
    state = torch.load(ck, weights_only=True)
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["network"].values())
    assert np.isfinite(err.value.mechanics.rollout(snaps[0], t0=0.0, times=[2.0])).all()


def test_float64_fit_returns_a_float64_model(drifting):
    snaps, times = drifting
    mech = scwlm.fit(snaps, times, n_iter=1, dtype="float64", **TINY)
    assert mech.dtype == torch.float64
    ens = scwlm.fit(snaps, times, n_iter=1, dtype="float64", random_state=[0, 1], **TINY)
    assert all(m.dtype == torch.float64 for m in ens)


def test_a_time_grid_with_too_many_steps_is_refused_before_training():
    snaps = [np.zeros((5, 2)), np.ones((5, 2)), 2 * np.ones((5, 2))]
    with pytest.raises(ValueError, match=r"1000000 integrator steps.*dt"):
        scwlm.fit(snaps, [0.0, 1e-6, 1.0], n_iter=1, **TINY)
    # the same times train with an explicit dt
    scwlm.fit(snaps, [0.0, 1e-6, 1.0], n_iter=1, dt=0.5, **TINY)


def test_checkpoint_path_that_is_a_directory_is_refused_at_once(drifting, tmp_path):
    snaps, times = drifting
    with pytest.raises(ValueError, match="checkpoint_path.*directory"):
        scwlm.fit(snaps, times, n_iter=2, checkpoint_every=1, checkpoint_path=str(tmp_path), **TINY)
    assert list(tmp_path.iterdir()) == []


# --- learning levers (issue 13) ----------------------------------------------------------------
def test_auto_friction_is_one_over_the_time_grid_step():
    """friction is a rate: friction_init="auto" damps a free velocity by e per grid step, in any time unit
    (and by at least the paper's 1 per time unit: it starts at max(1, 1 / dt))."""
    from scwlm.core.trainer import TrainingState

    rng = np.random.default_rng(0)
    pts = [rng.normal(size=(20, 2)) for _ in range(3)]

    def initial(times, **kw):
        cfg = WLMConfig(**{**TINY, "friction_init": "auto", **kw})
        task = Task(as_snapshots(pts, times), seed=0)
        return TrainingState([task], cfg, 2, torch.device("cpu"), torch.float32, n_iter=1).friction.values()[0]

    assert initial([0.0, 0.01, 0.02]) == pytest.approx(100.0, rel=1e-5)
    assert initial([0.0, 0.5, 2.0]) == pytest.approx(2.0)           # the smallest gap
    assert initial([0.0, 2.3, 4.6]) == 1.0                          # a coarse grid: the larger of 1 / dt and 1
    assert initial([0.0, 0.01, 0.02], dt=0.005) == pytest.approx(200.0, rel=1e-5)  # an explicit dt
    assert initial([0.0, 0.01, 0.02], friction_init=0.3) == pytest.approx(0.3)
    assert WLMConfig().friction_init == "auto" and WLMConfig.paper().friction_init == 1.0
    # on a unit grid "auto" is a fixed 1.0, to the last bit
    a = scwlm.fit(pts, [0.0, 1.0, 2.0], n_iter=3, random_state=0, **TINY)
    b = scwlm.fit(pts, [0.0, 1.0, 2.0], n_iter=3, random_state=0, friction_init=1.0, **TINY)
    assert a.friction == b.friction
    assert np.array_equal(a.rollout(pts[0], t0=0.0, times=[1.0, 2.0]), b.rollout(pts[0], t0=0.0, times=[1.0, 2.0]))


def test_auto_friction_warm_start_keeps_the_better_of_its_two_starts():
    """The linear warm start is not convex in the friction: "auto" fits from 1/dt and from 1 on the
    same draws, keeps the lower loss per model, and then continues exactly as a fit from that start alone."""
    ds = datasets.harmonic_well(n=40, random_state=0)  # dt 0.4: the starts 2.5 and 1
    s, t, v = ds
    n = ds.meta["n_train"]
    well = (s[:n], t[:n], [v[0]] + [None] * (n - 1))
    kw = dict(friction="learnable", n_iter=4, warm_start=100, random_state=0, **TINY)
    fits = {fi: scwlm.fit(*well, friction_init=fi, **kw) for fi in (2.5, 1.0)}
    ws = {fi: m.info["warm_start"] for fi, m in fits.items()}
    kept = min((2.5, 1.0), key=lambda fi: ws[fi]["linear_loss"])
    # here, as on the full-size well, the fit from 2.5 ends in the worse basin (and is rejected)
    assert kept == 1.0 and ws[1.0]["accepted"] and not ws[2.5]["accepted"]
    # beside it a model on a unit grid, which has the one start 1
    auto, unit = scwlm.fit_many([well, (s[:n], np.arange(n, dtype=float), None)], friction_init="auto", **kw)
    wa = auto.info["warm_start"]
    assert wa["accepted"] and wa["friction_start"] == pytest.approx(kept) and unit.info["warm_start"]["friction_start"] == 1.0
    # (an ensemble member matches its separate fit to float rounding: the batched losses sum in another order)
    assert wa["linear_loss"] == pytest.approx(min(ws[2.5]["linear_loss"], ws[1.0]["linear_loss"]), rel=1e-5)
    assert wa["free_flight_loss"] == pytest.approx(ws[kept]["free_flight_loss"], rel=1e-5)
    assert auto.friction == pytest.approx(fits[kept].friction, rel=1e-4)
    roll = [m.rollout(s[0], v[0], t0=float(t[0]), times=t[1:n]) for m in (fits[kept], auto)]
    np.testing.assert_allclose(*roll, atol=1e-4)


def test_auto_friction_without_an_accepted_warm_start_starts_from_the_more_damped_start():
    """Where linear mechanics do not explain the data (here: a warm start too short to fit), "auto"
    starts from the larger of 1/dt and 1, and continues exactly as a fit from that start alone."""
    ds = datasets.harmonic_well(n=40, random_state=0)
    s, t, v = ds
    n = ds.meta["n_train"]
    kw = dict(friction="learnable", n_iter=4, warm_start=3, random_state=0, **TINY)
    for scale, damped in ((1.0, 2.5), (5.0, 1.0)):  # dt 0.4: starts 2.5 and 1; dt 2: starts 0.5 and 1
        well = (s[:n], scale * t[:n], [v[0] / scale] + [None] * (n - 1))
        auto = scwlm.fit(*well, friction_init="auto", **kw)
        alone = scwlm.fit(*well, friction_init=damped, **kw)
        wa, wd = auto.info["warm_start"], alone.info["warm_start"]
        assert not wa["accepted"] and not wd["accepted"]
        assert wa["friction_start"] == pytest.approx(damped)
        assert wa["free_flight_loss"] == pytest.approx(wd["free_flight_loss"], rel=1e-6)
        assert auto.friction == pytest.approx(alone.friction, rel=1e-6)
        roll = [m.rollout(s[0], v[0] / scale, t0=float(scale * t[0]), times=scale * t[1:n]) for m in (auto, alone)]
        np.testing.assert_allclose(*roll, atol=1e-6)


def test_zero_initialised_head_makes_the_untrained_model_damped_free_flight():
    from scwlm.core.trainer import TrainingState

    rng = np.random.default_rng(0)
    s = as_snapshots([rng.normal(size=(20, 2)), rng.normal(size=(20, 2))], [0.0, 1.0])
    cfg = WLMConfig(zero_init_head=True, **TINY)
    state = TrainingState([Task(s, seed=0)], cfg, 2, torch.device("cpu"), torch.float32, n_iter=1)
    x = torch.randn(1, 20, 2)
    assert torch.count_nonzero(state.network.forces(x)) == 0
    # so a model that has not moved yet is constant-velocity extrapolation at friction 0
    mech = scwlm.fit([np.zeros((5, 2)), np.ones((5, 2))], [0.0, 1.0], np.ones((5, 2)), friction=0.0, n_iter=1,
                     lr=1e-12, zero_init_head=True, ema=None, **TINY)
    assert np.allclose(mech.rollout(np.zeros((5, 2)), np.ones((5, 2)), t0=0.0, times=[2.0])[0], 2.0, atol=1e-6)


def test_cosine_schedule_with_warmup():
    from scwlm.core.trainer import lr_factor

    cfg = WLMConfig(lr_schedule="cosine", lr_warmup=4)
    f = [lr_factor(cfg, i, 20) for i in range(20)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(f[4:], f[5:])) and f[-1] == pytest.approx(0.05)
    assert all(lr_factor(WLMConfig(), i, 20) == 1.0 for i in range(20))  # the paper: constant


def test_warm_up_reaches_the_peak_lr_and_stays_there_with_a_constant_schedule(drifting, monkeypatch):
    import scwlm.core.trainer as trainer

    lrs = []
    original = trainer.TrainingState.apply

    def spy(self, it):
        original(self, it)
        lrs.append(self.optimizer.param_groups[0]["lr"])

    monkeypatch.setattr(trainer.TrainingState, "apply", spy)
    snaps, times = drifting
    scwlm.fit(snaps, times, n_iter=6, lr=1e-3, lr_warmup=4, **TINY)
    assert lrs == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_the_ema_is_the_warm_up_weighted_average_of_the_live_weights(drifting, monkeypatch):
    # line 5: ema <- d_i ema + (1 - d_i) theta_i with d_i = min(ema, (1 + i) / (c + i)), c = ema_warmup
    import scwlm.core.trainer as trainer

    seen = []  # the EMA before the first step, then the live weights after every step
    original = trainer.TrainingState.apply

    def spy(self, it):
        if it == 0:
            seen.append(self.ema["head_w"].clone())
        original(self, it)
        seen.append(self.network.head_w.detach().clone())

    monkeypatch.setattr(trainer.TrainingState, "apply", spy)
    snaps, times = drifting
    for c, ema in ((3.0, 0.9), (True, 0.5), (False, 0.9)):
        seen.clear()
        cfg = WLMConfig(ema=ema, ema_warmup=c, warm_start=0, **TINY)
        res = train([Task(as_snapshots(snaps, times), seed=0)], cfg, n_iter=5)
        avg = seen[0]
        for i, theta in enumerate(seen[1:]):
            avg = cfg.ema_decay(i) * avg + (1 - cfg.ema_decay(i)) * theta
        assert torch.allclose(avg, res.ema["head_w"], atol=1e-6)
        assert not torch.allclose(seen[-1], res.ema["head_w"], atol=1e-6)  # an average, not the last weights
    assert [WLMConfig(ema_warmup=3.0).ema_decay(i) for i in (0, 1, 10**6)] == [pytest.approx(1 / 3), 0.5, 0.999]
    assert WLMConfig(ema_warmup=True).ema_decay(0) == pytest.approx(0.1)  # c = 10
    assert WLMConfig(ema=0.9, ema_warmup=False).ema_decay(0) == 0.9


@pytest.mark.parametrize("bad", [1, 0.5, -3, float("nan"), "yes"])
def test_ema_warmup_is_validated(bad):
    with pytest.raises(ValueError, match="ema_warmup"):
        WLMConfig(ema_warmup=bad)


def test_observed_anchoring_starts_rollouts_at_snapshots_with_velocities(monkeypatch):
    # record the times at which training rollouts start
    import scwlm.core.trainer as trainer

    starts = []
    original = trainer.leapfrog

    def spy(*args, **kwargs):
        starts.append(float(kwargs["t0"][0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer, "leapfrog", spy)
    rng = np.random.default_rng(0)
    snaps = [rng.normal(size=(20, 2)) + t for t in range(4)]
    vels = [np.ones((20, 2)), None, np.ones((20, 2)), None]
    scwlm.fit(snaps, [0.0, 1.0, 2.0, 3.0], vels, n_iter=30, anchor="observed", **TINY)
    assert set(starts) == {0.0, 2.0}
    starts.clear()
    scwlm.fit(snaps, [0.0, 1.0, 2.0, 3.0], vels, n_iter=5, **TINY)  # the paper's anchoring: always t0
    assert set(starts) == {0.0}


def test_ot_velocities_reach_the_next_snapshot_in_free_flight():
    from scwlm.core.velocities import ot_velocities

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    y = rng.permutation(x @ np.array([[1.2, 0.3], [0.0, 0.8]]) + 2.0)
    v = ot_velocities([x, y], [0.0, 0.5])
    # moved for the whole gap with these velocities, every point lands on a point of y (a permutation plan)
    landed = x + 0.5 * v[0]
    d = np.linalg.norm(landed[:, None, :] - y[None, :, :], axis=-1).min(1)
    assert d.max() < 1e-8 and v[1] is None


def test_paper_preset_pins_every_result_setting_to_the_paper():
    from scwlm.core.config import PAPER_SETTINGS

    cfg = WLMConfig.paper()
    # every setting except the runtime group is pinned, so the preset cannot drift with the defaults
    assert set(PAPER_SETTINGS) == set(cfg.to_dict())
    assert (cfg.lr, cfg.weight_decay, cfg.friction_lr, cfg.friction_init) == (1e-4, 1e-4, 1e-2, 1.0)
    assert (cfg.hidden, cfg.heads, cfg.blocks, cfg.ffn, cfg.p, cfg.scaling, cfg.ema) == (64, 4, 4, 512, 2, 0.9, 0.999)
    assert (cfg.anchor, cfg.lr_schedule, cfg.particles_per_batch, cfg.zero_init_head) == ("first", "constant", None, False)
    assert WLMConfig.paper(p=1, hidden=256).p == 1
    # the defaults add the linear warm start; the preset does not
    assert (WLMConfig().quadratic, WLMConfig().warm_start) == (True, "auto")
    assert (cfg.quadratic, cfg.warm_start, cfg.warm_start_iterations(2000)) == (False, 0, 0)


def test_linear_warm_start_hands_its_fit_to_the_quadratic_term_and_the_friction(drifting, monkeypatch):
    import scwlm.core.trainer as trainer

    snaps, times = drifting
    kw = dict(n_iter=1, lr=1e-12, friction_lr=1e-12, quadratic=True, zero_init_head=True, ema=None, **TINY)
    cold = scwlm.fit(snaps, times, **kw)
    monkeypatch.setattr(trainer, "WARM_START_ACCEPT", np.inf)  # accept any fit: test the hand-over itself
    warm = scwlm.fit(snaps, times, warm_start=5, **kw)
    assert float(cold.network.quad_w.abs().max()) < 1e-9  # one step of size 1e-12 from zero
    assert float(warm.network.quad_w.abs().max()) > 1e-3 and warm.friction != pytest.approx(cold.friction)
    assert warm.info["warm_start"]["accepted"] is True
    # per model, so an ensemble member still equals its separate fit
    ens = scwlm.fit(snaps, times, warm_start=5, random_state=[0, 1], **kw)
    assert torch.allclose(ens[0].network.quad_w, warm.network.quad_w) and ens[0].friction == pytest.approx(warm.friction)


def test_a_linear_warm_start_that_does_not_explain_the_data_is_discarded(drifting, monkeypatch):
    import scwlm.core.trainer as trainer

    snaps, times = drifting
    kw = dict(n_iter=1, lr=1e-12, friction_lr=1e-12, quadratic=True, zero_init_head=True, ema=None, **TINY)
    cold = scwlm.fit(snaps, times, **kw)
    monkeypatch.setattr(trainer, "WARM_START_ACCEPT", 0.0)  # no fit is good enough
    warm = scwlm.fit(snaps, times, warm_start=5, **kw)
    ws = warm.info["warm_start"]
    assert ws["accepted"] is False and ws["linear_loss"] < ws["free_flight_loss"]
    assert float(warm.network.quad_w.abs().max()) < 1e-9 and warm.friction == pytest.approx(cold.friction, rel=1e-6)


def test_the_warm_start_recovers_the_friction_and_the_well_of_a_damped_harmonic_oscillator():
    # x'' = -x - 0.3 x': damped linear mechanics are the true model class, so the warm start is
    # accepted, and it recovers gamma and a restoring force from unpaired snapshots
    ds = scwlm.datasets.harmonic_well(n=100, n_times=11, random_state=0)
    snaps, times, vels = ds
    mech = scwlm.fit(snaps, times, vels[0], n_iter=1, lr=1e-12, friction_lr=1e-12, warm_start=600, quadratic=True,
                     zero_init_head=True, **TINY)
    ws = mech.info["warm_start"]
    assert ws["accepted"] is True and ws["linear_loss"] < 0.01 * ws["free_flight_loss"]
    assert mech.friction == pytest.approx(0.3, rel=0.2)
    A = mech.network.quad_w.detach()[0].numpy()
    assert np.all(np.linalg.eigvalsh(A) > 0.5)  # a confining well (the exact value depends on the grid step)


def test_bf16_precision_setting_trains(drifting):
    snaps, times = drifting
    mech = scwlm.fit(snaps, times, n_iter=2, precision="bf16", **TINY)
    assert np.isfinite(mech.history["loss"]).all()


def test_warm_started_sinkhorn_duals_take_fewer_eps_steps_and_train_like_cold_ones(drifting, monkeypatch):
    import scwlm.core.trainer as trainer
    from scwlm.core.divergence import WARM_START_STEPS

    made = []

    class Recorded(SinkhornDivergence):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(trainer, "SinkhornDivergence", Recorded)
    snaps, times = drifting
    kw = dict(n_iter=6, lr=1e-3, ema=None, warm_start=0, sinkhorn_backend="tensorized", **TINY)
    cold = scwlm.fit(snaps, times, **kw)
    warm = scwlm.fit(snaps, times, sinkhorn_warm_start=True, **kw)
    (c, w) = made
    assert (c.warm_start, w.warm_start) == (0, WARM_START_STEPS)  # off by default
    # the first call of a shape anneals from the diameter; later ones iterate over the last 5 temperatures
    assert w.total_steps < c.total_steps and w.n_calls == c.n_calls
    assert w.last_n_steps == WARM_START_STEPS < c.last_n_steps
    np.testing.assert_allclose(warm.history["loss"], cold.history["loss"], rtol=0.05, atol=1e-3)
    assert WLMConfig.paper().sinkhorn_warm_start is False


def test_blur_scale_sets_the_heuristic_blur_in_proportion_and_an_explicit_blur_overrides_it(drifting):
    snaps, times = drifting
    kw = dict(n_iter=1, **TINY)
    half = scwlm.fit(snaps, times, **kw).info["blur"]
    quarter = scwlm.fit(snaps, times, blur_scale=0.25, **kw).info["blur"]
    assert quarter == pytest.approx(half / 2, rel=1e-12)
    assert scwlm.fit(snaps, times, blur=0.3, blur_scale=0.25, **kw).info["blur"] == 0.3


def test_auto_horizon_ramp_grows_the_horizon_of_long_time_courses_only(monkeypatch):
    # long rollouts of an untrained network go astray: "auto" ramps the largest horizon of a time
    # course of more than ten intervals over the first 15 % of the fit, and leaves short ones alone
    import scwlm.core.trainer as trainer

    caps = []
    original = trainer.RolloutLoss.horizon_cap

    def spy(self, it, e, start=0):
        caps.append((it, e, original(self, it, e, start)))
        return caps[-1][2]

    monkeypatch.setattr(trainer.RolloutLoss, "horizon_cap", spy)
    rng = np.random.default_rng(0)
    long_ = ([rng.normal(size=(10, 2)) + 0.1 * t for t in range(13)], [float(t) for t in range(13)])  # 12 intervals
    short = ([rng.normal(size=(10, 2)) + 0.1 * t for t in range(5)], [float(t) for t in range(5)])
    m = scwlm.fit(*long_, n_iter=20, warm_start=0, **TINY)
    assert m.info["horizon_ramp"] == 3  # 15 % of 20 iterations
    assert [c for _, _, c in caps[:4]] == [4, 8, 12, 12]  # ceil(12 (it + 1) / 3)
    caps.clear()
    ens = scwlm.fit_many([(*long_, None), (*short, None)], n_iter=20, warm_start=0, **TINY)
    assert (ens[0].info["horizon_ramp"], ens[1].info["horizon_ramp"]) == (3, 0)
    assert [c for it, e, c in caps if e == 1] == [4] * 20  # the short course is never ramped
    assert WLMConfig.paper().horizon_ramp == 0 and WLMConfig(horizon_ramp=7).ramp_iterations(20, 12) == 7
    with pytest.raises(ValueError, match="horizon_ramp"):
        WLMConfig(horizon_ramp="fast")


def test_auto_particles_per_batch_shrinks_with_the_mean_rollout_length(monkeypatch):
    # an iteration should cost about the same however long the time course: "auto" draws fewer
    # particles per snapshot where a training rollout takes more than ten steps on average
    from scwlm.core.config import AUTO_BATCH, AUTO_BATCH_MIN, AUTO_BATCH_STEPS
    from scwlm.core.trainer import mean_rollout_steps

    drawn = []
    original = RolloutLoss._subset

    def spy(self, e, size, n):
        drawn.append(n)
        return original(self, e, size, n)

    monkeypatch.setattr(RolloutLoss, "_subset", spy)
    rng = np.random.default_rng(0)

    def course(k):
        return [rng.normal(size=(300, 2)) + 0.1 * t for t in range(k + 1)], [float(t) for t in range(k + 1)]

    long_, short = course(30), course(4)
    kw = dict(n_iter=2, warm_start=0, compile_force=False, **TINY)
    assert mean_rollout_steps(list(range(31)), WLMConfig()) == 15.5  # horizons 1..30, one step each
    expected = round(AUTO_BATCH["cpu"] * AUTO_BATCH_STEPS / 15.5)
    assert scwlm.fit(*long_, **kw).info["particles_per_batch"] == expected == 165
    assert set(drawn) == {165}
    assert scwlm.fit(*short, **kw).info["particles_per_batch"] == AUTO_BATCH["cpu"]  # 2.5 steps: unchanged
    # a finer grid means more steps per rollout: dt=0.2 gives 5 per interval, 12.5 on average
    assert scwlm.fit(*short, dt=0.2, **kw).info["particles_per_batch"] == round(256 * 10 / 12.5)
    # an ensemble draws one number for all members: the size of its longest mean rollout
    ens = scwlm.fit_many([(*long_, None), (*short, None)], **kw)
    assert [m.info["particles_per_batch"] for m in ens] == [165, 165]
    # never below the floor; a number or None is used as given
    assert WLMConfig().batch_size("cpu", rollout_steps=10_000) == AUTO_BATCH_MIN
    assert scwlm.fit(*long_, particles_per_batch=50, **kw).info["particles_per_batch"] == 50
    assert WLMConfig.paper().batch_size("cpu", rollout_steps=25) is None


def test_kept_attention_weights_follow_the_measured_budget_and_change_no_bit(drifting):
    """``keep_attention_weights="auto"`` keeps the analytic force's soft-max weights where the
    rollout's measured graph with them fits the budget; the fit is the same to the bit either way."""
    snaps, times = drifting
    s = as_snapshots(snaps, times)
    kw = dict(TINY, force_impl="analytic", dropout=0.1, warm_start=0)
    cfg = WLMConfig(**kw, memory_budget_gb=1.0)
    fits = {keep: scwlm.fit(snaps, times, n_iter=3, keep_attention_weights=keep, **kw) for keep in (False, True, "auto")}
    for keep in (True, "auto"):
        assert np.array_equal(fits[False].history["loss"], fits[keep].history["loss"])
        assert np.array_equal(fits[False].rollout(snaps[0], t0=0.0, times=[2.0]), fits[keep].rollout(snaps[0], t0=0.0, times=[2.0]))
    res = train([Task(s, seed=0)], cfg, n_iter=1)
    loss = RolloutLoss(cfg, res.network, res.friction, *_ctx_args(s, cfg)[:2], **_ctx_args(s, cfg)[2])
    loss(0)
    ((n, plain),), ((_, kept),) = loss.step_bytes.items(), loss.kept_step_bytes.items()
    # one (heads, n, n) float32 buffer of weights per attention block and evaluation
    assert kept - plain == cfg.blocks * cfg.heads * n * n * 4
    # room for the graphs of three evaluations with their weights and of four without them
    loss.memory_budget = max(3 * kept, 4 * plain)
    assert loss.keeps_weights(n, 3) and not loss.keeps_weights(n, 4) and not loss.checkpointed(n, 4)
    loss.memory_budget = plain  # checkpointed: one evaluation's graph at a time, with its weights
    assert loss.checkpointed(n, 4) and loss.keeps_weights(n, 4)
    loss.memory_budget, loss.compiled = 10 * kept, object()  # a compiled force recomputes them
    assert not loss.keeps_weights(n, 3)
    # the buffers of the kept weights are reused from one iteration to the next, once autograd released them
    loss.compiled = None
    sizes = []
    for _ in range(3):
        loss(0).sum().backward()
        sizes.append(loss.weights_pool.n_buffers)
    assert sizes[0] > 0 and sizes[0] == sizes[1] == sizes[2]
    with pytest.raises(ValueError, match="keep_attention_weights"):
        WLMConfig(keep_attention_weights="yes")
