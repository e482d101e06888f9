"""A battery of bad inputs: every public function of the array API, saved files, and the CLI.

Each case names the exception type and a fragment of the message that names the argument, file
or key at fault. Nothing here trains for more than one or two iterations.
"""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile

import numpy as np
import pytest
import torch

import scwlm
from scwlm.cli import main
from scwlm.mechanics import MAX_ROLLOUT_STEPS, Mechanics, MechanicsEnsemble

TINY = dict(hidden=8, heads=1, blocks=1, ffn=8, progress=False)
CUDA = torch.cuda.is_available()


def _data(n=12, d=2, T=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, d)) for _ in range(T)], [float(t) for t in range(T)]


SNAPS, TIMES = _data()


@pytest.fixture(scope="module")
def mech():
    return scwlm.fit(SNAPS, TIMES, n_iter=1, device="cpu", **TINY)


@pytest.fixture(scope="module")
def saved(mech, tmp_path_factory):
    return mech.save(tmp_path_factory.mktemp("saved") / "model")


@pytest.fixture
def model_copy(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "model")


# ---------------------------------------------------------------------------- scwlm.fit
def _replace(seq, i, value):
    out = list(seq)
    out[i] = value
    return out


FIT_CASES = {
    "snapshots None": (dict(snapshots=None), "snapshots must be a sequence"),
    "snapshots a string": (dict(snapshots="abc"), "snapshots must be a sequence"),
    "one snapshot": (dict(snapshots=SNAPS[:1], times=[0.0]), "at least 2 snapshots"),
    "NaN point": (dict(snapshots=_replace(SNAPS, 1, np.full((12, 2), np.nan))), "snapshot 1 contains non-finite"),
    "3-D snapshot": (dict(snapshots=_replace(SNAPS, 0, np.zeros((2, 3, 2)))), "snapshot 0 must be a 2-D"),
    "empty snapshot": (dict(snapshots=_replace(SNAPS, 2, np.zeros((0, 2)))), "snapshot 2 is empty"),
    "dimension mismatch": (dict(snapshots=_replace(SNAPS, 1, np.zeros((12, 3)))), "snapshot 1 has dimension 3"),
    "string snapshot": (dict(snapshots=_replace(SNAPS, 0, np.array([["a", "b"]]))), "snapshot 0"),
    "complex snapshot": (dict(snapshots=_replace(SNAPS, 0, np.ones((3, 2), complex))), "snapshot 0 must be a real"),
    "bool snapshot": (dict(snapshots=_replace(SNAPS, 0, np.ones((3, 2), bool))), "snapshot 0 must be a real"),
    "float32 overflow 1e39": (dict(snapshots=_replace(SNAPS, 0, np.full((12, 2), 1e39))), "snapshot 0 has values up to 1e+39"),
    "squared distances overflow 1e30": (dict(snapshots=_replace(SNAPS, 1, np.full((12, 2), 1e30))), "snapshot 1 has values up to 1e+30, whose squares"),
    "velocity overflow": (dict(velocities=np.full((12, 2), 1e39)), "velocities[0] has values up to"),
    "unsorted times": (dict(times=[0.0, 2.0, 1.0]), "strictly increasing"),
    "duplicate times": (dict(times=[0.0, 1.0, 1.0]), "duplicate time"),
    "too few times": (dict(times=[0.0, 1.0]), "got 2 times for 3 snapshots"),
    "scalar times": (dict(times=1.0), "times must be a sequence"),
    "NaN time": (dict(times=[0.0, np.nan, 2.0]), "times contain non-finite"),
    "string times": (dict(times=["a", "b", "c"]), "times could not be converted"),
    "velocities wrong rows": (dict(velocities=np.zeros((5, 2))), "velocities[0] has shape (5, 2)"),
    "velocities wrong count": (dict(velocities=[None, None]), "got 2 velocity entries"),
    "NaN velocities": (dict(velocities=np.full((12, 2), np.nan)), "velocities[0] contains non-finite"),
    "friction word": (dict(friction="sticky"), "friction must be 'learnable' or"),
    "friction negative": (dict(friction=-1.0), "friction must be 'learnable' or a finite number >= 0"),
    "friction NaN": (dict(friction=float("nan")), "friction must be"),
    "friction bool": (dict(friction=True), "friction must be"),
    "seed float": (dict(random_state=1.5), "random_state must be an integer"),
    "seed string": (dict(random_state="0"), "random_state must be an integer"),
    "seed 2**32 (would alias 0)": (dict(random_state=2**32), "random_state must be an integer in [0, 2**32)"),
    "seed 2**70": (dict(random_state=2**70), "random_state must be an integer in [0, 2**32)"),
    "seed negative": (dict(random_state=-1), "random_state must be an integer in [0, 2**32)"),
    "seed list with 2**63": (dict(random_state=[0, 2**63]), "random_state must be an integer in [0, 2**32)"),
    "seed empty list": (dict(random_state=[]), "random_state is an empty list"),
    "n_iter 0": (dict(n_iter=0), "n_iter must be a positive integer"),
    "n_iter float": (dict(n_iter=1.5), "n_iter must be a positive integer"),
    "n_iter bool": (dict(n_iter=True), "n_iter must be a positive integer"),
    "device gpu": (dict(device="gpu"), "device must be one of 'auto', 'cpu', 'cuda'"),
    "device number": (dict(device=3), "device must be one of"),
    "unknown config key": (dict(hiden=8), "unknown config key 'hiden'; did you mean 'hidden'"),
    "hidden not a number": (dict(hidden="abc"), "hidden must be a positive integer"),
    "weight_decay inf": (dict(weight_decay=float("inf")), "weight_decay must be a finite number"),
    "dt zero": (dict(dt=0.0), "dt must be a positive number"),
    "blur_scale zero": (dict(blur_scale=0.0), "blur_scale must be a finite number > 0"),
    "friction_init word": (dict(friction_init="fast"), "friction_init must be a positive number or 'auto'"),
    "friction_init zero": (dict(friction_init=0.0), "friction_init must be a positive number or 'auto'"),
    "sinkhorn_warm_start negative": (dict(sinkhorn_warm_start=-1), "sinkhorn_warm_start must be True, False or a number"),
    "sinkhorn_warm_start float": (dict(sinkhorn_warm_start=0.5), "sinkhorn_warm_start must be True, False or a number"),
    "dtype float16": (dict(dtype="float16"), "dtype must be one of"),
    "tiny gap (10^6 training steps)": (dict(times=[0.0, 1e-6, 1.0]), "integrator steps per rollout"),
    "resume not a path": (dict(resume=3), "resume must be the path of a checkpoint file"),
}
if not CUDA:
    FIT_CASES["device cuda without CUDA"] = (dict(device="cuda"), "device='cuda' but CUDA is not available")


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_fit_rejects(case):
    kw, fragment = FIT_CASES[case]
    kw = {**dict(snapshots=SNAPS, times=TIMES, n_iter=1, **TINY), **kw}
    with pytest.raises(ValueError) as err:
        scwlm.fit(kw.pop("snapshots"), kw.pop("times"), kw.pop("velocities", None), **kw)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_fit_rejects_checkpoint_directory_and_bad_resume(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_path"):
        scwlm.fit(SNAPS, TIMES, n_iter=1, checkpoint_path=str(tmp_path), **TINY)
    with pytest.raises(ValueError, match="resume="):
        scwlm.fit(SNAPS, TIMES, n_iter=1, resume=str(tmp_path), **TINY)
    (tmp_path / "ckpt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="ckpt.pt"):
        scwlm.fit(SNAPS, TIMES, n_iter=1, resume=str(tmp_path / "ckpt.pt"), **TINY)


def test_fit_does_not_modify_the_input():
    snaps = [s.copy() for s in SNAPS]
    snaps[1][0, 0] = np.nan
    before = [s.copy() for s in snaps]
    with pytest.raises(ValueError):
        scwlm.fit(snaps, TIMES, n_iter=1, **TINY)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, snaps))


# ---------------------------------------------------------------------------- scwlm.fit_many
FIT_MANY_CASES = {
    "empty": (dict(datasets=[]), "datasets must be a non-empty sequence"),
    "a string": (dict(datasets="abc"), "datasets must be a non-empty sequence"),
    "one-element tuple": (dict(datasets=[(SNAPS,)]), "datasets[0] must be"),
    "bad times in the second": (dict(datasets=[(SNAPS, TIMES), (SNAPS, [0.0, 0.0, 1.0])]), "datasets[1]: duplicate time"),
    "overflow in the first": (dict(datasets=[(_replace(SNAPS, 0, np.full((12, 2), 1e39)), TIMES)]), "datasets[0]: snapshot 0 has values"),
    "seed per data set, wrong length": (dict(random_state=[0, 1, 2]), "random_state has 3 entries but 2 models"),
    "seed out of range": (dict(random_state=2**40), "random_state must be an integer in [0, 2**32)"),
    "device gpu": (dict(device="gpu"), "device must be one of"),
    "dimension mismatch": (dict(datasets=[(SNAPS, TIMES), ([s[:, :1] for s in SNAPS], TIMES)]), "same dimension"),
}


@pytest.mark.parametrize("case", sorted(FIT_MANY_CASES))
def test_fit_many_rejects(case):
    kw, fragment = FIT_MANY_CASES[case]
    kw = {**dict(datasets=[(SNAPS, TIMES), (SNAPS[:2], TIMES[:2])], n_iter=1, **TINY), **kw}
    with pytest.raises(ValueError) as err:
        scwlm.fit_many(kw.pop("datasets"), **kw)
    assert fragment in str(err.value)


# ---------------------------------------------------------------------------- Mechanics methods
X0 = SNAPS[0]
ROLLOUT_CASES = {
    "times 1e7 (hours of steps)": (dict(times=[1e7]), "imply 5e+07 integrator steps"),
    "times 1e300": (dict(times=[1e300]), "integrator steps"),
    "substeps huge": (dict(times=[1.0], substeps=10**7), "`substeps`"),
    "substeps 2.7": (dict(substeps=2.7), "substeps must be a positive integer, got 2.7"),
    "substeps 0": (dict(substeps=0), "substeps must be a positive integer"),
    "substeps string": (dict(substeps="5"), "substeps must be a positive integer"),
    "times of strings": (dict(times=["a"]), "times must be a sequence of numbers"),
    "times a string": (dict(times="1.0"), "times must be a sequence of numbers"),
    "times None": (dict(times=None), "times must be a sequence of numbers"),
    "times empty": (dict(times=[]), "times is empty"),
    "times NaN": (dict(times=[np.nan]), "times contain non-finite"),
    "times decreasing": (dict(times=[2.0, 1.0]), "non-decreasing"),
    "times before t0": (dict(t0=1.0, times=[0.5]), "times must be >= t0"),
    "t0 string": (dict(t0="x"), "t0 must be a finite number"),
    "t0 None": (dict(t0=None), "t0 must be a finite number"),
    "t0 inf": (dict(t0=float("inf")), "t0 must be a finite number"),
    "x0 wrong dimension": (dict(x0=np.zeros((5, 3))), "x0 has dimension 3, expected 2"),
    "x0 1-D": (dict(x0=np.zeros(5)), "x0 must be a 2-D array"),
    "x0 empty": (dict(x0=np.zeros((0, 2))), "x0 is empty"),
    "x0 NaN": (dict(x0=np.full((3, 2), np.nan)), "x0 contains non-finite"),
    "x0 beyond float32": (dict(x0=np.full((3, 2), 1e39)), "x0 has values up to 1e+39"),
    "x0 strings": (dict(x0=np.array([["a", "b"]])), "x0"),
    "v0 wrong rows": (dict(v0=np.zeros((5, 2))), "v0 has shape"),
    "v0 wrong dimension": (dict(v0=np.zeros((12, 3))), "v0 has dimension 3"),
    "v0 NaN": (dict(v0=np.full((12, 2), np.nan)), "v0 contains non-finite"),
}


@pytest.mark.parametrize("case", sorted(ROLLOUT_CASES))
def test_rollout_rejects(mech, case):
    kw, fragment = ROLLOUT_CASES[case]
    kw = {**dict(x0=X0, v0=None, t0=0.0, times=[1.0]), **kw}
    with pytest.raises(ValueError) as err:
        mech.rollout(kw.pop("x0"), kw.pop("v0"), **kw)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_rollout_step_guard_names_what_to_change(mech):
    with pytest.raises(ValueError) as err:
        mech.rollout(X0, t0=0.0, times=[1e7])
    msg = str(err.value)
    assert f"{MAX_ROLLOUT_STEPS:,}" in msg and "`times`" in msg and "`substeps`" in msg and "`dt`" in msg
    # the limit itself is reachable: exactly at it is allowed in principle, shorter rollouts run
    assert mech.rollout(X0, t0=0.0, times=[1.0], substeps=3).shape == (1, 12, 2)
    assert mech.rollout(X0, t0=0.0, times=[1.0], substeps=3.0).shape == (1, 12, 2)  # an integral float is fine


EVALUATE_CASES = {
    "unknown protocol": (dict(protocol="hindcast"), "unknown protocol 'hindcast'"),
    "n_train 0": (dict(n_train=0), "n_train must lie in"),
    "holdout out of range": (dict(protocol="interpolate", holdout=[9]), "holdout index 9 out of range"),
    "bad snapshots": (dict(snapshots=_replace(SNAPS, 1, np.full((12, 2), np.inf))), "snapshot 1 contains non-finite"),
    "wrong dimension": (dict(snapshots=[s[:, :1] for s in SNAPS]), "x0 has dimension 1, expected 2"),
    "substeps 2.7": (dict(substeps=2.7), "substeps must be a positive integer"),
    "n_train 1.5 (was truncated)": (dict(n_train=1.5), "n_train must be an integer, got 1.5"),
    "n_train string": (dict(n_train="2"), "n_train must be an integer"),
    "holdout a string (was iterated)": (dict(protocol="interpolate", holdout="1"), "holdout must be an index or a sequence of indices"),
    "holdout 1.5 (was truncated)": (dict(protocol="interpolate", holdout=[1.5]), "holdout must be an index"),
    "holdout bool": (dict(protocol="interpolate", holdout=[True]), "holdout must be an index"),
}


@pytest.mark.parametrize("case", sorted(EVALUATE_CASES))
def test_evaluate_rejects(mech, case):
    kw, fragment = EVALUATE_CASES[case]
    kw = {**dict(snapshots=SNAPS, times=TIMES), **kw}
    with pytest.raises(ValueError) as err:
        mech.evaluate(kw.pop("snapshots"), kw.pop("times"), **kw)
    assert fragment in str(err.value)


@pytest.mark.parametrize("method", ["forces", "potential"])
@pytest.mark.parametrize("args, fragment", [
    ((np.zeros((4, 3)),), "x has dimension 3"),
    ((np.full((4, 2), np.nan),), "x contains non-finite"),
    ((np.zeros(4),), "x must be a 2-D"),
    ((np.zeros((4, 2)), "noon"), "t must be a finite number"),
])
def test_forces_and_potential_reject(mech, method, args, fragment):
    with pytest.raises(ValueError, match=fragment):
        getattr(mech, method)(*args)


@pytest.mark.parametrize("device, fragment", [
    ("gpu", "device must be one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps', got 'gpu'"),
    (3, "device must be one of"),
    ("cuda:99", "cuda:99"),
])
def test_to_rejects(mech, device, fragment):
    with pytest.raises(ValueError) as err:
        mech.to(device)
    assert fragment in str(err.value)
    assert mech.device.type == "cpu"


@pytest.mark.skipif(CUDA, reason="checks the message on machines without CUDA")
def test_cuda_without_cuda_is_a_clear_error(mech, saved):
    for call in (lambda: mech.to("cuda"), lambda: scwlm.load(saved, device="cuda"),
                 lambda: scwlm.fit(SNAPS, TIMES, n_iter=1, device="cuda", **TINY),
                 lambda: scwlm.fit_many([(SNAPS, TIMES)], n_iter=1, device="cuda", **TINY)):
        with pytest.raises(ValueError, match=r"device='cuda' but CUDA is not available.*'cpu'"):
            call()


def test_save_rejects_a_file_path(mech, tmp_path):
    (tmp_path / "f").write_text("precious")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        mech.save(tmp_path / "f")
    assert (tmp_path / "f").read_text() == "precious"
    with pytest.raises(ValueError, match="path must be"):
        mech.save(None)


# ---------------------------------------------------------------------------- damaged model files
def _edit_meta(path, **changes):
    meta = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        node = meta
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        if value is _DROP:
            del node[last]
        else:
            node[last] = value
    (path / "config.json").write_text(json.dumps(meta))


_DROP = object()


def _edit_state(path, fn):
    state = torch.load(path / "state.pt", weights_only=True)
    torch.save(fn(state), path / "state.pt")


class _Evil:  # a pickled class: weights_only loading must refuse it
    pass


def _truncate(path):
    data = (path / "state.pt").read_bytes()
    (path / "state.pt").write_bytes(data[: len(data) // 2])


def _drop_tensor(s):
    del s["network"]["head_b"]
    return s


def _extra_tensor(s):
    s["network"]["extra"] = torch.zeros(2)
    return s


def _nan_weight(s):
    s["network"]["in_w"][0, 0, 0] = float("nan")
    return s


LOAD_CASES = {
    "truncated state.pt": (_truncate, "state.pt: not a readable scwlm weights file"),
    "garbage state.pt": (lambda p: (p / "state.pt").write_bytes(b"\x00garbage" * 10), "state.pt: not a readable"),
    "pickled class in state.pt": (lambda p: torch.save({"network": _Evil()}, p / "state.pt"), "state.pt: not a readable"),
    "state.pt a list": (lambda p: torch.save([torch.zeros(1)], p / "state.pt"), "state.pt: not a scwlm weights file"),
    "missing tensor": (lambda p: _edit_state(p, _drop_tensor), "state.pt: the weights do not match the architecture in the model's config; missing tensors ['head_b']"),
    "extra tensor": (lambda p: _edit_state(p, _extra_tensor), "unexpected tensors ['extra']"),
    "NaN weight": (lambda p: _edit_state(p, _nan_weight), "state.pt: weight 'in_w' contains non-finite"),
    "edited architecture (hidden)": (lambda p: _edit_meta(p, **{"architecture.hidden": 16}), "state.pt: weight"),
    "edited architecture (blocks)": (lambda p: _edit_meta(p, **{"architecture.blocks": 2}), "missing tensors"),
    "architecture nonsense": (lambda p: _edit_meta(p, **{"architecture.hidden": "abc"}), "config.json: invalid architecture"),
    "architecture unknown key": (lambda p: _edit_meta(p, **{"architecture.wings": 2}), "config.json: invalid architecture"),
    "config.json not JSON": (lambda p: (p / "config.json").write_text("{oops"), "config.json: not valid JSON"),
    "config.json binary": (lambda p: (p / "config.json").write_bytes(b"\xff\xfe\x00"), "config.json: not valid JSON"),
    "config.json not scwlm": (lambda p: _edit_meta(p, library="other"), "config.json: not a scwlm model"),
    "format from the future": (lambda p: _edit_meta(p, format=99), "config.json: unsupported model format 99"),
    "missing dt": (lambda p: _edit_meta(p, dt=_DROP), "config.json: missing entries ['dt']"),
    "friction NaN": (lambda p: _edit_meta(p, friction=float("nan")), "config.json: friction must be a finite number"),
    "friction negative": (lambda p: _edit_meta(p, friction=-1.0), "config.json: friction must be >= 0"),
    "dt zero": (lambda p: _edit_meta(p, dt=0), "config.json: dt must be > 0"),
    "dt string": (lambda p: _edit_meta(p, dt="abc"), "config.json: dt must be a finite number"),
    "dtype float16": (lambda p: _edit_meta(p, dtype="float16"), "config.json: dtype must be"),
    "invalid setting": (lambda p: _edit_meta(p, **{"config.hidden": 0}), "config.json: hidden must be a positive integer"),
    "info not a mapping": (lambda p: _edit_meta(p, info=[1, 2]), "config.json: 'info' must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(LOAD_CASES))
def test_load_rejects_damaged_files(model_copy, case):
    damage, fragment = LOAD_CASES[case]
    damage(model_copy)
    with pytest.raises(ValueError) as err:
        scwlm.load(model_copy)
    assert fragment in str(err.value)
    assert str(model_copy) in str(err.value)
    assert "\n" not in str(err.value)


def test_load_missing_and_device(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved scwlm model"):
        scwlm.load(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="not a saved scwlm model"):
        scwlm.load(saved / "config.json")
    with pytest.raises(ValueError, match="device must be one of"):
        scwlm.load(saved, device="gpu")
    with pytest.raises(ValueError, match="path must be a str or os.PathLike, got None"):
        scwlm.load(None)


def test_evaluate_accepts_a_single_holdout_index(mech):
    assert mech.evaluate(SNAPS, TIMES, protocol="interpolate", holdout=1)["holdout"] == [1]


def test_unknown_setting_loads_with_a_warning_naming_the_file(model_copy, mech):
    _edit_meta(model_copy, **{"config.warp_drive": True})
    with pytest.warns(UserWarning, match=r"config\.json.*warp_drive"):
        again = scwlm.load(model_copy)
    assert np.array_equal(again.rollout(X0, t0=0.0, times=[1.0]), mech.rollout(X0, t0=0.0, times=[1.0]))


# ---------------------------------------------------------------------------- ensembles
@pytest.fixture(scope="module")
def ensemble():
    return scwlm.fit(SNAPS, TIMES, n_iter=1, random_state=[0, 1], device="cpu", **TINY)


def test_ensemble_save_load_round_trip(ensemble, tmp_path):
    path = ensemble.save(tmp_path / "ens")
    again = scwlm.load(path)
    assert isinstance(again, MechanicsEnsemble) and len(again) == 2
    for a, b in zip(ensemble, again):
        assert np.array_equal(a.rollout(X0, t0=0.0, times=[2.0]), b.rollout(X0, t0=0.0, times=[2.0]))
        assert a.friction == b.friction and a.info["seed"] == b.info["seed"]
    assert again.frictions == ensemble.frictions
    assert main(["info", str(path)]) == 0


@pytest.mark.parametrize("damage, fragment", [
    (lambda p: (p / "ensemble.json").write_text("[1"), "ensemble.json: not valid JSON"),
    (lambda p: (p / "ensemble.json").write_text(json.dumps({"library": "scwlm", "kind": "ensemble", "members": ["../x"]})), "ensemble.json: not a scwlm ensemble index"),
    (lambda p: shutil.rmtree(p / "member_1"), "ensemble.json: member 'member_1' is missing"),
    (lambda p: _truncate(p / "member_0"), "member_0/state.pt: not a readable"),
])
def test_ensemble_load_rejects_damage(ensemble, tmp_path, damage, fragment):
    path = ensemble.save(tmp_path / "ens")
    damage(path)
    with pytest.raises(ValueError) as err:
        scwlm.load(path)
    assert fragment in str(err.value)


def test_ensemble_misuse(ensemble, tmp_path):
    path = ensemble.save(tmp_path / "ens")
    with pytest.raises(ValueError, match="holds an ensemble of models: load it with scwlm.load"):
        Mechanics.load(path)
    with pytest.raises(ValueError, match="holds a saved ensemble"):
        ensemble[0].save(path)
    with pytest.raises(ValueError, match="holds a single saved model"):
        ensemble.save(ensemble[0].save(tmp_path / "single"))
    with pytest.raises(ValueError, match="at least one Mechanics"):
        MechanicsEnsemble([]).save(tmp_path / "empty")
    with pytest.raises(ValueError, match="device must be one of"):
        ensemble.to("gpu")
    with pytest.raises(ValueError, match="substeps must be a positive integer"):
        ensemble.evaluate(SNAPS, TIMES, substeps=0.5)


# ---------------------------------------------------------------------------- the CLI
def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _good_npz(tmp):
    return _npz(tmp / "d.npz", positions=np.stack(SNAPS), times=np.asarray(TIMES))


def _truncated_npz(tmp):
    good = _good_npz(tmp)
    data = open(good, "rb").read()
    (tmp / "t.npz").write_bytes(data[: len(data) // 2])
    return str(tmp / "t.npz")


def _damaged_member_npz(tmp):
    # a zip whose central directory is fine but whose member is not an .npy array
    with zipfile.ZipFile(tmp / "z.npz", "w") as z:
        z.writestr("positions.npy", b"not an npy array")
    return str(tmp / "z.npz")


def _h5ad(tmp, **kw):
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame({"day": np.repeat([0, 1, 2], 12)}, index=[f"c{i}" for i in range(36)])
    a = ad.AnnData(np.zeros((36, 1), dtype=np.float32), obs=obs)
    a.obsm["X_pca"] = np.concatenate(SNAPS) + np.repeat([0.0, 0.5, 1.0], 12)[:, None]
    a.write_h5ad(tmp / "cells.h5ad")
    return str(tmp / "cells.h5ad")


TINY_SET = ["--set", "hidden=8", "--set", "heads=1", "--set", "blocks=1", "--set", "ffn=8", "--set", "progress=false"]

CLI_CASES = {
    # (builder of argv from tmp_path, fragment of the one-line message)
    "fit: missing file": (lambda t: ["fit", str(t / "nope.npz"), "--out", str(t / "m")], "nope.npz' not found"),
    "fit: text file named .npz": (lambda t: ["fit", (t / "x.npz").write_text("hello") and str(t / "x.npz"), "--out", str(t / "m")], "x.npz: not an .npz archive"),
    "fit: truncated npz": (lambda t: ["fit", _truncated_npz(t), "--out", str(t / "m")], "t.npz: not a readable .npz file"),
    "fit: damaged npz member": (lambda t: ["fit", _damaged_member_npz(t), "--out", str(t / "m")], "z.npz: 'positions' could not be read"),
    "fit: key x_a": (lambda t: ["fit", _npz(t / "k.npz", x_0=SNAPS[0], x_a=SNAPS[1]), "--out", str(t / "m")], "k.npz: snapshot keys must be 'x_0', 'x_1', ... (an integer after 'x_'), got 'x_a'"),
    "fit: no arrays": (lambda t: ["fit", _npz(t / "e.npz", y=np.zeros(2)), "--out", str(t / "m")], "e.npz: expected 'positions'"),
    "fit: positions 2-D": (lambda t: ["fit", _npz(t / "p.npz", positions=np.zeros((3, 2))), "--out", str(t / "m")], "'positions' must be a (T, n, d) array"),
    "fit: object array": (lambda t: ["fit", _npz(t / "o.npz", positions=np.array([SNAPS[0], SNAPS[1][:3]], dtype=object)), "--out", str(t / "m")], "o.npz: 'positions' is an object array"),
    "fit: a single .npy": (lambda t: [np.save(t / "a.npy", np.zeros(3)), (t / "a.npy").rename(t / "a.npz"), "fit", str(t / "a.npz"), "--out", str(t / "m")][2:], "a.npz: holds a single array"),
    "fit: unsorted times": (lambda t: ["fit", _npz(t / "u.npz", positions=np.stack(SNAPS), times=np.array([0.0, 2.0, 1.0])), "--out", str(t / "m")], "u.npz: times must be strictly increasing"),
    "fit: wrong v_0 rows": (lambda t: ["fit", _npz(t / "v.npz", positions=np.stack(SNAPS), v_0=np.zeros((3, 2))), "--out", str(t / "m")], "v.npz: velocities[0] has shape (3, 2)"),
    "fit: NaN data": (lambda t: ["fit", _npz(t / "n.npz", positions=np.full((3, 4, 2), np.nan)), "--out", str(t / "m")], "n.npz: snapshot 0 contains non-finite"),
    "fit: float32 overflow": (lambda t: ["fit", _npz(t / "b.npz", positions=np.full((3, 4, 2), 1e30)), "--out", str(t / "m")], "b.npz: snapshot 0 has values up to 1e+30"),
    "fit: --set unknown key": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--set", "hiden=8"], "--set: unknown config key 'hiden'"),
    "fit: --set hidden=abc": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--set", "hidden=abc"], "--set: hidden must be a positive integer, got 'abc'"),
    "fit: --set without =": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--set", "hidden"], "--set expects KEY=VALUE"),
    "fit: --friction abc": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--friction", "abc"], "argument --friction: expected 'learnable' or a finite number >= 0, got 'abc'"),
    "fit: --friction -1": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--friction", "-1"], "argument --friction"),
    "fit: --n-iter 0": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--n-iter", "0"], "argument --n-iter: expected a positive integer, got '0'"),
    "fit: --n-iter abc": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--n-iter", "abc"], "argument --n-iter"),
    "fit: --seed 2**40": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--seed", str(2**40)], "argument --seed: expected an integer in [0, 2**32)"),
    "fit: --device gpu": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--device", "gpu"], "--device must be one of 'auto', 'cpu'"),
    "fit: --out is a file": (lambda t: ["fit", _good_npz(t), "--out", (t / "f").write_text("x") and str(t / "f")], "--out"),
    "fit: --out non-empty folder": (lambda t: ["fit", _good_npz(t), "--out", [(t / "dir").mkdir(), (t / "dir" / "a.txt").write_text("x")] and str(t / "dir")], "is a non-empty folder that is not a saved scwlm model"),
    "fit: --out holds an ensemble": (lambda t: ["fit", _good_npz(t), "--out", [(t / "ens").mkdir(), (t / "ens" / "ensemble.json").write_text("{}")] and str(t / "ens")], "is a non-empty folder that is not a saved scwlm model"),
    "fit: --seeds out of range": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--seeds", "0", "-3"], "argument --seeds"),
    "fit: --parallel bogus": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--parallel", "model"], "argument --parallel: invalid choice"),
    "fit: data is a folder": (lambda t: ["fit", [(t / "d.npz").mkdir()] and str(t / "d.npz"), "--out", str(t / "m")], "is a directory"),
    "fit: .csv data": (lambda t: ["fit", str(t / "d.csv"), "--out", str(t / "m")], "must end in .npz or .h5ad"),
    "fit: --basis with npz": (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--basis", "X_umap"], "--basis apply to .h5ad input only"),
    "fit: missing --out": (lambda t: ["fit", _good_npz(t)], "the following arguments are required: --out"),
    "fit h5ad: missing time key": (lambda t: ["fit", _h5ad(t), "--out", str(t / "m"), "--time-key", "week"], "cells.h5ad: "),
    "fit h5ad: missing basis": (lambda t: ["fit", _h5ad(t), "--out", str(t / "m"), "--basis", "X_umap"], "X_umap"),
    "fit h5ad: missing velocity key": (lambda t: ["fit", _h5ad(t), "--out", str(t / "m"), "--velocity-key", "velocity_pca"], "--velocity-key 'velocity_pca' is not in adata.obsm"),
    "fit h5ad: too many dims": (lambda t: ["fit", _h5ad(t), "--out", str(t / "m"), "--n-dims", "9"], "n_dims=9"),
    "fit h5ad: garbage file": (lambda t: ["fit", (t / "g.h5ad").write_text("junk") and str(t / "g.h5ad"), "--out", str(t / "m")], "g.h5ad: not a readable .h5ad file"),
    "info: not a model folder": (lambda t: ["info", str(t)], "is not a saved scwlm model"),
    "info: missing path": (lambda t: ["info", str(t / "nope")], "is not a saved scwlm model"),
    "demo: --n 0": (lambda t: ["demo", "--out", str(t / "demo"), "--n", "0"], "argument --n: expected a positive integer"),
    "demo: --seed abc": (lambda t: ["demo", "--out", str(t / "demo"), "--seed", "abc"], "argument --seed"),
    "demo: --device gpu": (lambda t: ["demo", "--out", str(t / "demo"), "--device", "gpu"], "--device must be one of"),
    "demo: --out is a file": (lambda t: ["demo", "--out", (t / "f").write_text("x") and str(t / "f")], "--out"),
    "no subcommand": (lambda t: [], "the following arguments are required: command"),
    "unknown subcommand": (lambda t: ["train"], "invalid choice: 'train'"),
}
if not CUDA:
    CLI_CASES["fit: --device cuda without CUDA"] = (lambda t: ["fit", _good_npz(t), "--out", str(t / "m"), "--device", "cuda"], "--device='cuda' but CUDA is not available")


@pytest.fixture
def no_training(monkeypatch):
    """Fail loudly if a bad command line gets as far as training."""
    def refuse(*a, **k):
        raise AssertionError("training started although the input was bad")

    monkeypatch.setattr(scwlm, "fit", refuse)
    monkeypatch.setattr("scwlm.api.fit", refuse)
    monkeypatch.setattr("scwlm._demo.run_demo", refuse, raising=False)
    monkeypatch.delenv("SCWLM_DEBUG", raising=False)


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_user_errors(case, tmp_path, capsys, no_training):
    build, fragment = CLI_CASES[case]
    argv = build(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scwlm: error: "), err
    assert fragment in lines[0], lines[0]
    assert not (tmp_path / "m").exists()


def test_cli_info_on_damaged_model(model_copy, capsys):
    _truncate(model_copy)
    assert main(["info", str(model_copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scwlm: error: ") and "state.pt: not a readable" in err and "\n" not in err


def test_cli_runtime_failure_exits_1_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("out of memory\nsecond line")

    monkeypatch.setattr(scwlm, "fit", boom)
    monkeypatch.delenv("SCWLM_DEBUG", raising=False)
    argv = ["fit", _good_npz(tmp_path), "--out", str(tmp_path / "m")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == "scwlm: error: RuntimeError: out of memory second line (run with --debug for the traceback)"
    assert main(argv + ["--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("scwlm: error: RuntimeError")
    monkeypatch.setenv("SCWLM_DEBUG", "1")
    assert main(argv) == 1
    assert "Traceback" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_cli_fits_h5ad_and_npz(tmp_path, capsys):
    assert main(["fit", _h5ad(tmp_path), "--out", str(tmp_path / "m"), "--n-iter", "1", "--device", "cpu",
                 "--n-dims", "2", *TINY_SET]) == 0
    mech = scwlm.load(tmp_path / "m")
    assert mech.dim == 2 and mech.info["source"]["time_labels"] == ["0", "1", "2"]
    assert len(mech.info["source"]["standardization"]["std"]) == 2
    # an existing model folder may be replaced
    assert main(["fit", _good_npz(tmp_path), "--out", str(tmp_path / "m"), "--n-iter", "1", "--device", "cpu", *TINY_SET]) == 0
    assert main(["info", str(tmp_path / "m")]) == 0
    assert "Mechanics(dim=2" in capsys.readouterr().out


def test_cli_fits_an_ensemble_with_seeds(tmp_path, capsys, monkeypatch):
    for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(v, raising=False)
    assert main(["fit", _good_npz(tmp_path), "--out", str(tmp_path / "ens"), "--seeds", "0", "1", "--n-iter", "1",
                 "--device", "cpu", *TINY_SET]) == 0
    ens = scwlm.load(tmp_path / "ens")
    assert isinstance(ens, MechanicsEnsemble) and [m.info["seed"] for m in ens] == [0, 1]
    assert capsys.readouterr().out.count("saved to") == 1
