"""The `scwlm` console command."""

import numpy as np

from scwlm.cli import main


def test_demo_writes_figure_table_and_model(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n", "40", "--n-iter", "3", "--no-progress"]) == 0
    for name in ("forecast.png", "w1_table.md", "w1_table.csv", "model/config.json", "model/state.pt"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    table = (out / "w1_table.md").read_text()
    assert "carry forward" in table and "forecast" in table


def test_fit_and_info_from_npz(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", positions=rng.normal(size=(3, 20, 2)), times=np.array([0.0, 1.0, 2.0]))
    args = ["fit", str(tmp_path / "d.npz"), "--out", str(tmp_path / "m"), "--n-iter", "2", "--device", "cpu",
            "--set", "hidden=8", "--set", "heads=1", "--set", "blocks=1", "--set", "ffn=8", "--set", "progress=false"]
    assert main(args) == 0
    assert main(["info", str(tmp_path / "m")]) == 0
    assert "Mechanics(dim=2" in capsys.readouterr().out
