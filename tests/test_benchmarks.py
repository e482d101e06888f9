"""The reproduction harness and the speed benchmark run end to end on tiny configurations."""

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import data_dir

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
    res = speed.run_ours("oceans_small_interp", iters=2, warmup=1, device="cpu", extra={"hidden": 16, "ffn": 16})
    assert res["iters"] == 2 and res["median_s"] > 0 and res["peak_gb"] > 0
    text = speed.table([res], {"date": "d", "cpu": "c", "cores": 2, "threads": 2, "cuda": None, "torch": "t", "commit": "x", "command": "c"})
    assert "oceans_small_interp" in text


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


@pytest.mark.skipif(not os.environ.get("SCWLM_AUTHORS_SRC"), reason="set SCWLM_AUTHORS_SRC to a checkout of guanton/WLM")
def test_speed_worker_times_the_authors_code():
    res = speed.run_authors("oceans_small_interp", iters=1, warmup=1, device="cpu", src=os.environ["SCWLM_AUTHORS_SRC"])
    assert res["impl"] == "authors" and res["median_s"] > 0
