"""The reproduction harness and the speed benchmark run end to end on tiny configurations."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, data_dir

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import reproduce, speed  # noqa: E402
from benchmarks.experiments import settings  # noqa: E402


def test_profiles_record_their_settings():
    paper, quick = settings("eb_loo", "paper"), settings("eb_loo", "quick")
    assert paper["n_iter"] == 10_000 and paper["config"]["p"] == 1 and paper["config"]["blur"] == 1.25
    assert quick["n_iter"] < paper["n_iter"] and quick["quick_changes"]["n_iter"] == quick["n_iter"]
    with pytest.raises(ValueError):
        settings("eb_loo", "fast")


def test_paper_profile_is_the_paper_preset_and_budget_profile_only_describes_the_data():
    from scwlm.core.config import PAPER_SETTINGS

    paper, budget = settings("boids", "paper"), settings("boids", "budget")
    assert {k: paper["config"][k] for k in PAPER_SETTINGS if k != "p"} == {k: v for k, v in PAPER_SETTINGS.items() if k != "p"}
    assert budget["config"] == {"p": 1} and budget["n_iter"] is None  # scwlm.fit's default count


def test_budget_report_checks_targets_and_the_wall_time_budget():
    rec = {"experiment": "oceans_interp", "variant": "wlm", "seed": 0, "wall_s": 700.0,
           "metrics": {"mean": 0.08}, "baselines": {"mccann_mean": 0.235}}
    lines = reproduce.budget_targets([rec, {**rec, "seed": 1, "wall_s": 400.0, "metrics": {"mean": 0.14}}])
    assert any("mean t2–t8: WLM 0.110, target ≤ 0.10" in line and "missed" in line for line in lines)
    assert any(line.startswith("- oceans_interp: 550 s per model (budget 600 s)") and "met" in line for line in lines)


@pytest.mark.data
def test_harness_runs_and_reports(tmp_path):
    if data_dir() is None:
        pytest.skip("SCWLM_DATA_DIR is not set: the vortex data are needed")
    results = tmp_path / "r.jsonl"
    assert reproduce.main(["--experiment", "oceans_interp", "oceans_forecast", "--profile", "quick", "--n-iter", "2",
                           "--seeds", "0", "--device", "cpu", "--results", str(results)]) == 0
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert {r["experiment"] for r in recs} == {"oceans_interp", "oceans_forecast"}
    interp = next(r for r in recs if r["experiment"] == "oceans_interp")
    assert set(interp["metrics"]) == {"t2", "t4", "t6", "t8", "mean"}
    assert 0.0 < interp["baselines"]["mccann_mean"] < interp["baselines"]["previous_mean"]
    assert interp["n_iter"] == 2 and interp["machine"]["commit"]
    text = reproduce.report(reproduce.load(results, "quick"), "quick")
    assert "McCann" in text and "| t2 |" in text and "from t10" in text


def test_speed_worker_times_our_iteration():
    res = speed.run_ours("oceans_small_interp", iters=2, warmup=1, device="cpu", extra={"hidden": 16, "ffn": 16, "compile_force": False})
    assert res["iters"] == 2 and res["median_s"] > 0 and res["peak_gb"] > 0
    text = speed.table([res], {"date": "d", "cpu": "c", "cores": 2, "threads": 2, "cuda": None, "torch": "t", "commit": "x", "command": "c"})
    assert "oceans_small_interp" in text and res["ops"] is None
    # the measured graph of a force evaluation; the tiny rollout fits any budget: nothing checkpointed
    assert res["kept_mb_per_step"] > 0 and res["checkpointed_per_iter"] == 0


def test_speed_worker_counts_checkpointed_evaluations():
    res = speed.run_ours("oceans_small_interp", iters=1, warmup=1, device="cpu", extra={**TINY_NET, "memory_budget_gb": 1e-9})
    assert res["kept_mb_per_step"] > 0 and res["checkpointed_per_iter"] >= 1
    text = speed.table([{**res, "variant": "fp32"}], {"command": "c"})
    assert "kept graph MB / step" in text and f"{res['checkpointed_per_iter']:.1f}" in text


def test_speed_operator_profile_of_the_timed_iterations():
    res = speed.run_ours("oceans_small_interp", iters=2, warmup=1, device="cpu", extra={"hidden": 16, "ffn": 16, "compile_force": False}, ops=6)
    ops = res["ops"]
    assert len(ops) == 6 and all(o["self_s_per_iter"] > 0 and 0 < o["share"] <= 1 for o in ops)
    assert [o["self_s_per_iter"] for o in ops] == sorted((o["self_s_per_iter"] for o in ops), reverse=True)
    assert any(o["op"].startswith("aten::") for o in ops)
    assert "| operator | s/iter | share | calls/iter |" in speed.ops_table([res])


def test_speed_render_merges_saved_runs(tmp_path, capsys):
    machine = {"date": "d", "cpu": "c", "cores": 2, "threads": 2, "cuda": None, "torch": "t", "commit": "x"}
    row = {"workload": "boids_k10", "impl": "ours", "device": "cpu", "iters": 3, "median_s": 2.0, "min_s": 1.0,
           "max_s": 3.0, "peak_gb": 1.5, "ensemble": 1, "options": {}}
    files = []
    for i, extra in enumerate(([dict(row, impl="authors", median_s=8.0)], [row])):
        f = tmp_path / f"run{i}.json"
        f.write_text(json.dumps({"machine": dict(machine, command=f"cmd{i}"), "results": extra}))
        files.append(str(f))
    page = tmp_path / "perf.md"
    assert speed.main(["--render", *files, "--append", str(page)]) == 0
    text = page.read_text()
    assert "cmd0; cmd1" in text and "| 4.00x |" in text and "| 3 |" in text


def test_force_kernels_times_the_three_force_paths_and_restores_the_switch():
    import scwlm.core.potential as potential
    from benchmarks import force_kernels

    t = force_kernels.measure(12, 2, 2, 0.1, reps=2)
    assert set(t) == {"autograd", "analytic", "unfused"} and all(v > 0 for v in t.values())
    assert potential.FUSED_ATTENTION is True


def test_force_kernels_times_the_compiled_force_with_its_compile_time(monkeypatch):
    import scwlm.core.compile as compile_mod
    from benchmarks import force_kernels

    real = compile_mod.torch.compile
    monkeypatch.setattr(compile_mod.torch, "compile", lambda fn, **o: real(fn, **{**o, "backend": "aot_eager"}))
    t = force_kernels.measure(12, 1, 2, 0.0, reps=2, impls=("autograd", "compiled"))
    assert set(t) == {"autograd", "compiled", "compile_s"} and all(v > 0 for v in t.values())


def test_speed_ratios_are_computed_within_each_run_only(tmp_path, capsys):
    def run(date, authors, ours):
        rows = [{"workload": "eb_like", "impl": "authors", "median_s": authors, "peak_gb": 3.0},
                {"workload": "eb_like", "impl": "ours", "variant": "fp32", "median_s": ours, "peak_gb": 1.0},
                {"workload": "boids_k10", "impl": "ours", "variant": "fp32", "error": "boom", "median_s": None}]
        return {"machine": {"date": date}, "results": rows}

    files = []
    for i, (a, o) in enumerate(((2.0, 1.0), (4.0, 1.0))):
        f = tmp_path / f"run{i}.json"
        f.write_text(json.dumps(run(f"day{i}", a, o)))
        files.append(str(f))
    assert speed.main(["--ratios", *files]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "eb_like" in line]
    assert len(rows) == 2 and "(2.00x" in rows[0] and "(4.00x" in rows[1] and "boids" not in "".join(rows)
    p_vars = speed.parse_variant("unfused")
    assert p_vars["config"] == {"force_impl": "analytic"} and p_vars["levers"] == {"fused_attention": False}


@pytest.mark.skipif(not os.environ.get("SCWLM_AUTHORS_SRC"), reason="set SCWLM_AUTHORS_SRC to a checkout of guanton/WLM")
def test_speed_worker_times_the_authors_code():
    res = speed.run_authors("oceans_small_interp", iters=1, warmup=1, device="cpu", src=os.environ["SCWLM_AUTHORS_SRC"])
    assert res["impl"] == "authors" and res["median_s"] > 0


# ---------------------------------------------------------------------------- speed levers side by side
# compile_force=False: the speed benchmark decides "auto" as for a long fit, which would compile these
# tiny workloads with inductor (C++, tens of seconds); tests/test_compile.py tests the compiled path
TINY_NET = {"hidden": 16, "ffn": 16, "heads": 1, "blocks": 1, "compile_force": False}


def test_flops_counts_the_products_and_exponentials_of_one_iteration():
    from benchmarks import flops
    import torch

    with flops.counter() as c:
        torch.bmm(torch.ones(3, 4, 5), torch.ones(3, 5, 6))
        torch.ones(10, 7).exp_()
        torch.ones(4, 9).logsumexp(-1)
    assert c.products["aten.bmm"] == 2 * 3 * 4 * 5 * 6 and c.exponentials["aten.exp_"] == 70
    assert c.exponentials["aten.logsumexp"] == 36
    narrow = flops.count_ours("oceans_small_interp", TINY_NET)
    wide = flops.count_ours("oceans_small_interp", {**TINY_NET, "hidden": 32})
    assert 0 < narrow["products"] < wide["products"] and narrow["exponentials"] > 0
    assert narrow["products"] == sum(narrow["products_by_op"].values())
    assert "| oceans_small_interp |" in flops.table([narrow, wide], "c")


def test_kept_weights_benchmark_times_every_mode_with_the_same_result(capsys):
    from benchmarks import kept_weights

    res = kept_weights.measure(particles=12, dim=2, steps=2, dropout=0.1, reps=1, ffn=16)
    assert res["same_result"] and set(res["median"]) == set(kept_weights.MODES)
    assert all(t > 0 for t in res["min"].values())
    assert kept_weights.main(["--particles", "8", "--steps", "1", "--reps", "1", "--ffn", "8"]) == 0
    assert "| keep (pool) |" in capsys.readouterr().out


def test_speed_variants_parse_and_apply_in_process():
    assert speed.parse_variant("analytic+bf16")["config"] == {"force_impl": "analytic"}
    assert speed.parse_variant("compile")["config"] == {"compile_force": True}
    assert speed.parse_variant("cudagraph")["todo"].startswith("TODO")
    with pytest.raises(ValueError, match="unknown variant"):
        speed.parse_variant("fp32+turbo")
    import scwlm.core.trainer as trainer

    before = (trainer.SinkhornDivergence, trainer.SetPotential)
    res = speed.run_ours("oceans_small_interp", iters=1, warmup=1, device="cpu", extra=TINY_NET, variant="warm+bf16")
    assert (trainer.SinkhornDivergence, trainer.SetPotential) == before  # the trainer's classes are put back
    assert res["levers"] == {"warm_start": True, "force_precision": "bf16"} and res["loss_calls"] == 2
    assert res["eps_steps"] < res["eps_steps_first"]  # the second loss call is warm-started


def test_speed_variants_side_by_side_in_one_run(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert speed.main(["--workloads", "oceans_small_interp", "--iters", "1", "--warmup", "0", "--device", "cpu",
                       "--threads", "1", "--options", json.dumps(TINY_NET), "--variants", "fp32", "bf16", "cudagraph",
                       "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["variant"] for r in rows] == ["fp32", "bf16", "cudagraph"]
    assert rows[1]["levers"] == {"force_precision": "bf16"} and rows[0]["eps_steps"] > 0
    assert rows[2]["impl"] == "todo"
    text = capsys.readouterr().out
    assert "ε-steps / loss call" in text and "| bf16 |" in text and "TODO (not built)" in text
    with pytest.raises(SystemExit):
        speed.main(["--variants", "nope"])


def test_speed_rounds_alternate_the_order_and_pair_each_round(tmp_path, capsys, monkeypatch):
    calls = []

    def fake(name, impl, a, options=None, ensemble=1, iters=None, variant=None):  # one "measurement" per call
        calls.append((impl, variant))
        s = {"authors": 3.0, "fp32": 1.0, "warm": 1.5}[variant or impl] * (1 + len(calls) / 100)
        return {"workload": name, "impl": impl, "device": "cpu", "iters": 1, "median_s": s, "min_s": s, "max_s": s,
                "peak_gb": 1.0, "ensemble": 1, "options": {}, **({"variant": variant} if variant else {})}

    monkeypatch.setattr(speed, "_subprocess", fake)
    out = tmp_path / "speed.json"
    assert speed.main(["--workloads", "eb_like", "--authors-src", str(tmp_path), "--variants", "fp32", "warm",
                       "--rounds", "2", "--json", str(out)]) == 0
    assert calls == [("authors", None), ("ours", "fp32"), ("ours", "warm"), ("ours", "warm"), ("ours", "fp32"), ("authors", None)]
    rows = json.loads(out.read_text())["results"]
    assert [r["round"] for r in rows] == [1, 1, 1, 2, 2, 2]
    text = capsys.readouterr().out
    # round 1: 3.03 / 1.02; round 2: 3.18 / 1.05 -> each round's authors over ours of the same round
    fp32 = next(line for line in text.splitlines() if line.startswith("| eb_like | fp32 |"))
    assert "2.97x, 3.03x" in fp32 and "| 3.00x |" in fp32
    assert "| eb_like | ours, round 2 | fp32 |" in text
    with pytest.raises(SystemExit):
        speed.main(["--rounds", "0"])


def test_gpu_check_script_runs_tiny_on_cpu(tmp_path):
    import subprocess

    env = dict(os.environ, SCWLM_GPU_CHECK_TINY="1", PYTHON=sys.executable, SCWLM_GPU_CHECK_OUT=str(tmp_path))
    env.pop("SCWLM_AUTHORS_SRC", None)
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = (tmp_path / "speed_table.md").read_text()
    rows = json.loads((tmp_path / "01_tiny.json").read_text())["results"]
    assert {(r.get("variant"), r.get("ensemble", 1)) for r in rows} >= {("fp32", 1), ("bf16", 1), ("fp32", 2)}
    assert "| oceans_small_interp |" in table and "(E=2)" in table and "TODO (not built)" in table
    assert "authors' code is not measured" in proc.stderr


# ---------------------------------------------------------------------------- time to accuracy
def test_time_to_accuracy_clock_excludes_evaluations_and_marks_geometric_times(monkeypatch):
    from benchmarks import time_to_accuracy as tta

    now = [0.0]
    monkeypatch.setattr(tta.time, "perf_counter", lambda: now[0])
    clock = tta._Clock(10.0, first=2.0, ratio=2.0)  # marks 2, 4, 8, 10
    seen = []

    def evaluate():
        seen.append(clock.elapsed)
        now[0] += 100.0                   # a long evaluation, not counted

    with pytest.raises(tta._Stop):        # raised once the budget is spent
        for step in range(12):
            now[0] += 1.0                 # one second of training
            clock.after_iteration(evaluate, last=False)
    assert seen == [2.0, 4.0, 8.0, 10.0] and clock.elapsed == 10.0


@pytest.mark.skipif(data_dir() is None, reason="needs SCWLM_DATA_DIR (the small vortex)")
def test_time_to_accuracy_curve_of_our_defaults(capsys):
    from benchmarks import time_to_accuracy as tta

    r = tta.run_ours("oceans_interp", "defaults", seconds=1.0, seed=0)
    cur = r["curve"]
    assert r["n_iter"] == 2000 and cur and cur[-1]["seconds"] >= 1.0
    assert [p["iteration"] for p in cur] == sorted({p["iteration"] for p in cur})
    assert all(len(p["w1"]) == 4 and np.isfinite(p["w1_mean"]) for p in cur)  # t2, t4, t6, t8
    text = tta.table([r], {"oceans_interp": tta.baselines("oceans_interp")})
    assert "| oceans_interp | defaults | 0 |" in text


@pytest.mark.skipif(not os.environ.get("SCWLM_AUTHORS_SRC") or data_dir() is None,
                    reason="set SCWLM_AUTHORS_SRC to a checkout of guanton/WLM and SCWLM_DATA_DIR")
def test_time_to_accuracy_curve_of_the_authors_code():
    from benchmarks import time_to_accuracy as tta

    r = tta.run_authors("oceans_interp", seconds=1.0, seed=0, src=os.environ["SCWLM_AUTHORS_SRC"])
    assert r["curve"] and np.isfinite(r["curve"][-1]["w1_mean"]) and r["curve"][-1]["iteration"] >= 1


def test_sampling_floor_of_two_halves_of_one_cloud_falls_as_the_halves_grow():
    from benchmarks.sampling_floor import half_split_w1

    x = np.random.default_rng(0).normal(size=(400, 3))
    rng = np.random.default_rng(1)
    small, _ = half_split_w1(x, 25, 5, rng)
    large, se = half_split_w1(x, 200, 5, rng)
    assert 0 < large < small and se >= 0
    with pytest.raises(ValueError, match="2\\*m <= 400"):
        half_split_w1(x, 201, 1, rng)


def test_velocity_agreement_recovers_the_scale_of_transport_velocities_and_finds_noise_uninformative():
    from benchmarks.velocity_agreement import agreement, least_squares_scale
    from scwlm.core.velocities import ot_velocity

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    y = x + np.array([1.0, 0.5])  # a translation: the OT velocity over a gap of 2 is (0.5, 0.25) everywhere
    v_ot = ot_velocity(x, y, 2.0)
    exact = agreement(v_ot / 40.0, v_ot)  # measured on a scale 40x too small, as EB's RNA velocities
    assert exact.scale == pytest.approx(40.0) and exact.mean_cosine == pytest.approx(1.0)
    noise = agreement(rng.normal(size=x.shape), v_ot)
    assert abs(noise.mean_cosine) < 0.3 and abs(noise.scale) < 0.5
    with pytest.raises(ValueError, match="all zero"):
        least_squares_scale([np.zeros((3, 2))], [v_ot[:3]])
    with pytest.raises(ValueError, match="one shape"):
        agreement(v_ot[:3], v_ot)


def test_ablation_report_counts_a_rerun_seed_once_with_its_latest_record(tmp_path):
    from benchmarks.ablation import report

    def rec(seed, w1):
        return {"system": "eb", "arm": "defaults", "n_iter": 5, "seed": seed, "metrics": {"mean": w1},
                "baselines": {"mccann_mean": 0.9}, "friction": 1.0, "wall_s": 1.0}

    path = tmp_path / "ablation.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (rec(0, 0.5), rec(0, 0.7), rec(1, 0.9))) + "\n")
    row = report(path).splitlines()[-1]
    assert "| eb | defaults | 5 | 2 | 0.800 ± 0.100 |" in row


def test_ablation_gf_sde_system_scores_all_ten_models_against_carry_forward():
    from benchmarks.ablation import ARMS, gf_sde_system

    rec = gf_sde_system(n=30)(ARMS["defaults"], 0, 1, {**TINY, "eval_substeps": 1, "warm_start": 2})
    per = rec["per_model"]
    # every model's warm-start decision is recorded, not only model 0's (a 2-iteration fit is rejected: the
    # main fit starts at the more damped start, 1 / dt = 100)
    assert all(r["warm_start_accepted"] is False and r["friction_start"] == pytest.approx(100.0) for r in per.values())
    assert per["bohachevsky/paired"]["friction_start"] == rec["warm_start"]["friction_start"]
    assert len(per) == 10 and {k.split("/")[1] for k in per} == {"paired", "unpaired"}
    m, b = rec["metrics"], rec["baselines"]
    assert m["forecast"] == pytest.approx(np.mean([r["forecast"] for r in per.values()]))
    assert m["forecast"] == pytest.approx((m["paired"] + m["unpaired"]) / 2)
    assert b["carry_forward"] == pytest.approx(np.mean([r["carry_forward"] for r in per.values()]))
    assert m["beats_carry"] == sum(r["forecast"] < r["carry_forward"] for r in per.values())
    with pytest.raises(ValueError, match="no measured velocities"):
        gf_sde_system(n=30)(ARMS["obs_all"], 0, 1, TINY)


def test_ablation_scores_one_trained_model_with_other_evaluation_substeps(monkeypatch):
    import benchmarks.ablation as ab
    from scwlm import datasets as D

    ds = D.harmonic_well(n=30, random_state=0)
    run = ab.forecast_system(ds, ds.meta["n_train"])
    kw = {**TINY, "warm_start": 0}
    monkeypatch.setattr(ab, "EXTRA_EVAL_SUBSTEPS", [1, 5])  # 5 is the model's own: scored once, as "metrics"
    rec = run(ab.ARMS["defaults"], 0, 2, kw)
    assert set(rec["metrics_substeps"]) == {"1"} and set(rec["metrics_substeps"]["1"]) == set(rec["metrics"])
    assert rec["metrics_substeps"]["1"]["forecast"] != rec["metrics"]["forecast"]  # another integrator, another W1
    # the same model scored with its own step again gives its own metrics
    monkeypatch.setattr(ab, "EXTRA_EVAL_SUBSTEPS", [1])
    again = run(ab.ARMS["defaults"], 0, 2, {**kw, "eval_substeps": 1})
    assert "metrics_substeps" not in again and again["metrics"] == pytest.approx(rec["metrics_substeps"]["1"])


def test_ablation_scores_the_live_weights_of_the_same_fit_as_a_fit_without_ema(monkeypatch):
    import benchmarks.ablation as ab
    from scwlm import datasets as D

    from scwlm.mechanics import Mechanics

    original = Mechanics.__dict__["from_train_result"]
    ds = D.harmonic_well(n=30, random_state=0)
    run = ab.forecast_system(ds, ds.meta["n_train"])
    kw = {**TINY, "warm_start": 0, "ema": 0.9}
    monkeypatch.setattr(ab, "SCORE_LIVE", [True])
    with ab._capture_weights():
        rec = run(ab.ARMS["defaults"], 0, 6, kw)
    assert set(rec["metrics_live"]) == set(rec["metrics"]) and rec["metrics_live"] != rec["metrics"]
    # the EMA never feeds back into training: the live weights are those of a fit without EMA
    no_ema = run(ab.ARMS["defaults"], 0, 6, {**kw, "ema": None})
    assert "metrics_live" not in no_ema and no_ema["metrics"] == rec["metrics_live"]
    # and the fit's models got their EMA weights back: scoring again repeats the EMA's metrics
    with ab._capture_weights():
        again = run(ab.ARMS["defaults"], 0, 6, kw)
    assert again["metrics"] == rec["metrics"] and again["metrics_live"] == rec["metrics_live"]
    assert Mechanics.__dict__["from_train_result"] is original and not ab._WEIGHTS  # the library's own, restored


def test_ablation_scores_other_ema_warmups_of_the_same_fit(monkeypatch):
    import benchmarks.ablation as ab
    from scwlm import datasets as D
    from scwlm.core.trainer import TrainingState

    apply = TrainingState.apply
    ds = D.harmonic_well(n=30, random_state=0)
    run = ab.forecast_system(ds, ds.meta["n_train"])
    kw = {**TINY, "warm_start": 3, "ema": 0.99, "ema_warmup": 4.0}  # the extra EMAs start after the warm start
    monkeypatch.setattr(ab, "SCORE_EMA", [4.0, 2.0])
    with ab._capture_weights():
        rec = run(ab.ARMS["defaults"], 0, 8, kw)
    assert set(rec["metrics_ema"]) == {"4", "2"} and "metrics_live" not in rec
    # the fit's own warm-up (c = 4) tracked beside it gives its own metrics, bit for bit
    assert rec["metrics_ema"]["4"] == rec["metrics"]
    assert rec["metrics_ema"]["2"] != rec["metrics"]  # a longer average, other weights
    # tracking them changed nothing in the fit: a fit without them scores the same
    monkeypatch.setattr(ab, "SCORE_EMA", [])
    with ab._capture_weights():
        plain = run(ab.ARMS["defaults"], 0, 8, kw)
    assert plain["metrics"] == rec["metrics"] and "metrics_ema" not in plain
    assert TrainingState.apply is apply and not ab._WEIGHTS and not ab._STATE  # the library's own, restored


def test_speed_decides_compile_auto_as_for_a_long_fit(monkeypatch):
    # the timed fit is a few iterations, but the row must show what a real fit of these settings
    # computes: compile_force="auto" compiles a single model's force on 111 particles
    import scwlm.core.trainer as trainer
    from scwlm.core.compile import compiled_forces

    monkeypatch.setattr(trainer, "compiled_forces", lambda net, impl, **o: compiled_forces(net, impl, backend="aot_eager", **o))
    tiny = {k: v for k, v in TINY_NET.items() if k != "compile_force"}
    res = speed.run_ours("oceans_small_interp", iters=1, warmup=1, device="cpu", extra=tiny)
    assert res["compiled"] and res["compile_s"][0] > 0 and "first call" in res["compile_note"]
    res = speed.run_ours("oceans_small_interp", iters=1, warmup=1, device="cpu", extra=tiny, ensemble=5)
    assert "compiled" not in res  # 5 x 111 rows: eager


def test_ablation_set_takes_json_values_and_bare_strings():
    from benchmarks.ablation import main, parse_settings  # scwlm.cli's, shared with `scwlm fit --set`

    assert parse_settings(["lr=3e-4", "lr_schedule=cosine", "blur=null", 'anchor="first"', "ema_warmup=true"]) == {
        "lr": 3e-4, "lr_schedule": "cosine", "blur": None, "anchor": "first", "ema_warmup": True}
    for bad in ("lr", "=3"):
        with pytest.raises(ValueError, match="--set expects KEY=VALUE"):
            parse_settings([bad])
    with pytest.raises(SystemExit):  # argparse's usage error, before anything is fitted
        main(["run", "--systems", "harmonic", "--set", "=3"])
