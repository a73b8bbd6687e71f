"""Learning curves (``python -m boml plot``): one PNG for several runs, and a clear error without matplotlib."""
import json
import pickle
import sys

import numpy as np
import pytest
from PIL import Image

from boml.__main__ import main
from boml.errors import DataError, DataNotFoundError, InvalidArgumentError, MissingDependencyError
from boml.workflow.plotting import plot_runs, read_curves

BLUE, ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib's first two colours (C0, C1)


def write_run(folder, name, slope, validation=True):
    run = folder / name
    run.mkdir(parents=True)
    progress = [{"iteration": i, "train_seconds": 0.5 * i, "outer_loss": 2.0 - slope * i, "inner_loss": 1.0,
                 "train_accuracy": 0.5} for i in range(10, 210, 10)]
    history = [{"iteration": i, "train_seconds": 0.5 * i, "val_accuracy": 0.2 + slope * i, "val_ci95": 0.02,
                "outer_loss": 2.0 - slope * i} for i in range(50, 250, 50)] if validation else []
    (run / "results.json").write_text(json.dumps({"progress": progress, "history": history}))
    return run


def colour_share(path, rgb):
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    return np.mean(np.all(np.abs(pixels - np.array(rgb)) < 12, axis=1))


def test_two_runs_on_one_figure(tmp_path):
    runs = [write_run(tmp_path, "a", 0.004), write_run(tmp_path, "b", 0.002)]
    out = plot_runs([str(r) for r in runs], out=str(tmp_path / "fig" / "both.png"))
    image = Image.open(out)
    assert image.format == "PNG" and image.size[0] > 800 and image.size[1] > 600
    assert colour_share(out, BLUE) > 1e-3 and colour_share(out, ORANGE) > 1e-3


def test_one_run_defaults_to_its_directory_and_validation_is_optional(tmp_path):
    run = write_run(tmp_path, "only", 0.003, validation=False)
    out = plot_runs([str(run)])
    assert out == str(run / "curves.png") and colour_share(out, BLUE) > 1e-3


def test_a_run_in_progress_is_read_from_its_latest_checkpoint(tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    for step in (2, 10):
        state = {"progress": [{"iteration": step, "train_seconds": 1.0, "outer_loss": 1.0}], "history": []}
        (run / f"ckpt-{step}.state.pkl").write_bytes(pickle.dumps(state))
    assert read_curves(str(run))["progress"][0]["iteration"] == 10


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(InvalidArgumentError, match="at least one run"):
        plot_runs([])
    with pytest.raises(DataNotFoundError, match="does not exist"):
        plot_runs([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no results.json and no checkpoint"):
        plot_runs([str(tmp_path / "empty")])
    run = tmp_path / "silent"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"progress": [], "history": []}))
    with pytest.raises(DataError, match="--print_interval"):
        plot_runs([str(run)])
    with pytest.raises(InvalidArgumentError, match=r"\.png"):
        plot_runs([str(write_run(tmp_path, "x", 0.001))], out=str(tmp_path / "fig.pdf"))


def test_without_matplotlib_the_error_names_the_extra(tmp_path, monkeypatch):
    run = write_run(tmp_path, "r", 0.001)
    for module in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # "import matplotlib" now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install boml\[plot\]"):
        plot_runs([str(run)])
    assert isinstance(MissingDependencyError("x"), ImportError)


def test_plot_command(tmp_path, capsys):
    runs = [str(write_run(tmp_path, n, 0.001)) for n in ("p", "q")]
    out = tmp_path / "cmd.png"
    assert main(["plot", *runs, "--out", str(out), "--title", "two runs"]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", str(tmp_path / "nothing")])
    assert exit_info.value.code == 2 and "DataNotFoundError" in capsys.readouterr().err
