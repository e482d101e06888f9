"""torch.compile of the analytic force: equal to eager, and an eager fallback when compiling fails."""

import os
import warnings

import pytest
import torch

import scwlm.core.compile as compile_mod
from scwlm.core.compile import compiled_forces
from scwlm.core.potential import SetPotential


def _net():
    gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    return SetPotential(2, hidden=8, heads=2, blocks=1, ffn=8, time_features=4, dropout=0.1, n_models=2, generators=gens)


def _check_equal(f, net):
    x = torch.randn(2, 12, 2, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0.3, 0.7])
    masks = net.sample_masks(12, [torch.Generator().manual_seed(3)] * 2, "cpu", torch.float32)
    for mk, keep in ((None, False), (masks, False), (masks, True)):  # keep: the attention weights kept for backward
        a = f(x, t, masks=mk, create_graph=True, keep_weights=keep)
        b = net.forces(x, t, masks=mk, create_graph=True, impl="analytic")
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)
        params = list(net.parameters())
        ga = torch.autograd.grad(a.square().sum(), params, allow_unused=True)
        gb = torch.autograd.grad(b.square().sum(), params, allow_unused=True)
        for u, v in zip(ga, gb):
            if v is not None:
                assert torch.allclose(u, v, atol=1e-5, rtol=1e-5)
    assert torch.allclose(f(x, 0.5), net.forces(x, 0.5, impl="analytic"), atol=1e-5)


def test_compiled_force_equals_eager():
    # aot_eager: dynamo's graph capture and AOTAutograd's forward/backward split, without the
    # C++ code generation of inductor (minutes on a small CPU; see the slow test below)
    net = _net()
    f = compiled_forces(net, "analytic", backend="aot_eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback
        _check_equal(f, net)
    assert f.compiled and f.compile_seconds is not None and "s" in f.note


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SCWLM_TEST_INDUCTOR"),
                    reason="set SCWLM_TEST_INDUCTOR=1 (inductor compiles C++ for minutes on a small CPU)")
def test_inductor_compiled_force_equals_eager():
    net = _net()
    f = compiled_forces(net, "analytic")
    _check_equal(f, net)
    assert f.compiled


def test_fallback_when_torch_compile_raises(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(compile_mod.torch, "compile", broken)
    net = _net()
    with pytest.warns(RuntimeWarning, match="torch.compile of the force failed .*no compiler here"):
        f = compiled_forces(net, "analytic")
    assert not f.compiled
    x = torch.randn(2, 7, 2)
    assert torch.equal(f(x, 0.2), net.forces(x, 0.2, impl="analytic"))


def test_fallback_when_the_compiled_call_raises(monkeypatch):
    def lazy_broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("inductor exploded")
        return call

    monkeypatch.setattr(compile_mod.torch, "compile", lazy_broken)
    net = _net()
    f = compiled_forces(net, "analytic")
    x = torch.randn(2, 7, 2)
    with pytest.warns(RuntimeWarning, match=r"failed after [0-9.]+ s .*inductor exploded"):
        out = f(x, 0.2, create_graph=True)
    assert not f.compiled and torch.equal(out, net.forces(x, 0.2, impl="analytic", create_graph=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        f(x, 0.2)


def test_autograd_force_is_never_compiled_and_options_are_checked(monkeypatch):
    called = []
    monkeypatch.setattr(compile_mod.torch, "compile", lambda *a, **k: called.append(1))
    net = _net()
    f = compiled_forces(net, "autograd")
    x = torch.randn(2, 5, 2)
    assert not f.compiled and not called and torch.equal(f(x, 0.1), net.forces(x, 0.1))
    with pytest.raises(ValueError):
        compiled_forces(net, "fast")
    with pytest.raises(ValueError):
        compiled_forces(net, "analytic", precision="fp8")


# ----------------------------------------------------------------------------- in training
def _fit(n_iter=6, **config):
    import scwlm

    g = torch.Generator().manual_seed(0)
    snaps = [torch.randn(24, 2, generator=g) + k for k in range(3)]
    kw = dict(hidden=8, heads=2, blocks=1, ffn=8, progress=False, warm_start=0)
    return scwlm.fit(snaps, [0.0, 1.0, 2.0], n_iter=n_iter, random_state=0, **{**kw, **config})


def _weights(mech):
    return torch.cat([p.detach().flatten() for p in mech.network.parameters()])


@pytest.fixture
def aot_eager(monkeypatch):
    """The trainer's compiled force with the aot_eager backend (no C++ compilation in the default suite)."""
    import scwlm.core.trainer as trainer

    made = []

    def fake(net, impl, **options):
        made.append(compiled_forces(net, impl, backend="aot_eager", **options))
        return made[-1]

    monkeypatch.setattr(trainer, "compiled_forces", fake)
    return made


def test_training_with_the_compiled_force_equals_the_eager_analytic_fit(aot_eager):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback
        compiled = _fit(compile_force=True)
    assert len(aot_eager) == 1 and aot_eager[0].compiled
    assert compiled.info["compile"].startswith("torch.compile of the analytic force: first call")
    eager = _fit(compile_force=False, force_impl="analytic")
    assert "compile" not in eager.info
    assert torch.allclose(_weights(compiled), _weights(eager), atol=1e-5)
    # step checkpointing recomputes eagerly (its early stop raises inside the recomputed function)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ckpt = _fit(compile_force=True, checkpoint_steps=True)
    assert torch.allclose(_weights(ckpt), _weights(eager), atol=1e-5)


def test_auto_compiles_only_long_single_model_fits_on_small_sets(aot_eager):
    from scwlm.core.config import AUTO_COMPILE_MIN_ITER, AUTO_COMPILE_ROWS, WLMConfig

    cfg = WLMConfig()
    assert cfg.compile_force == "auto" and WLMConfig.paper().compile_force == "auto"
    assert cfg.compiles(AUTO_COMPILE_ROWS, 1, AUTO_COMPILE_MIN_ITER)
    assert not cfg.compiles(AUTO_COMPILE_ROWS + 1, 1, AUTO_COMPILE_MIN_ITER)  # the attention products dominate
    assert not cfg.compiles(AUTO_COMPILE_ROWS // 2, 3, AUTO_COMPILE_MIN_ITER)  # rows of all models count
    assert not cfg.compiles(AUTO_COMPILE_ROWS, 1, AUTO_COMPILE_MIN_ITER - 1)  # too short to repay compilation
    assert not cfg.compiles(64, 1, AUTO_COMPILE_MIN_ITER, "cuda")  # not measured on a GPU: opt in there
    assert "compile" not in _fit().info and not aot_eager  # short fits stay eager


def test_compile_force_is_validated():
    from scwlm.core.config import WLMConfig

    with pytest.raises(ValueError, match="compile_force must be"):
        WLMConfig(compile_force="yes")
    with pytest.raises(ValueError, match="needs the analytic force"):
        WLMConfig(compile_force=True, force_impl="autograd")
