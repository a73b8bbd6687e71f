"""Learning curves of runs (``python -m boml plot RUN_DIR ...``), drawn with matplotlib.

matplotlib is an optional dependency (``pip install boml[plot]``): the library and the training
loop need only numpy and TensorFlow. One figure has four panels: the training (outer) loss and the
validation accuracy with its 95% confidence band, each against meta-iterations and against
meta-training time (validation excluded); every run is one colour on all four.
"""
import glob
import os
import pickle
from typing import Any, Dict, List, Optional, Sequence

from boml.errors import DataError, DataNotFoundError, InvalidArgumentError, MissingDependencyError
from boml.workflow.results import RESULTS_FILE, read_json

DEFAULT_FILE = "curves.png"


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingDependencyError(
            f"Plotting needs matplotlib, which is not installed ({error}). Install it with: pip install boml[plot]"
            " (or pip install matplotlib)."
        ) from None
    return Figure, FigureCanvasAgg


def read_curves(run_dir: str) -> Dict[str, Any]:
    """The recorded curves of a run: ``{"name", "progress", "history"}``.

    Read from ``results.json``; a run still in progress (or killed) is read from its latest
    checkpoint's sidecar instead.

    Raises:
        DataNotFoundError: ``run_dir`` holds neither ``results.json`` nor a checkpoint.
        DataError: the run recorded no point (no progress line and no validation).
    """
    if not os.path.isdir(run_dir):
        raise DataNotFoundError(f"Run directory {run_dir} does not exist; give the directory of a `boml train` run.")
    if os.path.exists(os.path.join(run_dir, RESULTS_FILE)):
        saved = read_json(run_dir, RESULTS_FILE, "a `boml train` run")
    else:
        sidecars = glob.glob(os.path.join(run_dir, "ckpt-*.state.pkl"))
        if not sidecars:
            raise DataNotFoundError(f"{run_dir} has no {RESULTS_FILE} and no checkpoint; give the directory of a "
                                    "`boml train` run.")
        saved = None
        for path in sorted(sidecars, key=lambda p: -int(os.path.basename(p)[len("ckpt-"):].split(".")[0])):
            try:  # the newest state file that loads (one being written or damaged is skipped)
                with open(path, "rb") as handle:
                    saved = pickle.load(handle)
                break
            except Exception:
                continue
        if not isinstance(saved, dict):
            raise DataError(f"{run_dir} has no results.json and none of its checkpoint state files can be read.")
    curves = {"name": os.path.basename(os.path.normpath(run_dir)), "progress": list(saved.get("progress") or []),
              "history": list(saved.get("history") or [])}
    if not curves["progress"] and not curves["history"]:
        raise DataError(f"{run_dir} recorded no curve point; train with --print_interval N and/or "
                        "--val_interval N (N > 0).")
    return curves


def _loss_points(curves):
    rows = curves["progress"] or curves["history"]
    return ([r["iteration"] for r in rows], [r["train_seconds"] / 60.0 for r in rows],
            [r["outer_loss"] for r in rows])


def plot_runs(run_dirs: Sequence[str], out: Optional[str] = None, title: Optional[str] = None) -> str:
    """Draws the learning curves of ``run_dirs`` into one PNG.

    Args:
        run_dirs: directories of ``boml train`` runs (finished, interrupted or in progress).
        out: the PNG path (default: ``<run_dir>/curves.png`` for one run, ``curves.png`` for several).
        title: the figure's title (default: "learning curves"; the legend names the runs).

    Returns:
        The path of the PNG written.

    Raises:
        InvalidArgumentError: no run directory, or ``out`` does not end with ``.png``.
        DataNotFoundError, DataError: a run has no recorded curve (see :func:`read_curves`).
        MissingDependencyError: matplotlib is not installed (``pip install boml[plot]``).
    """
    run_dirs = list(run_dirs)
    if not run_dirs:
        raise InvalidArgumentError("Give at least one run directory to plot; received none.")
    if out is None:
        out = os.path.join(run_dirs[0], DEFAULT_FILE) if len(run_dirs) == 1 else DEFAULT_FILE
    if not str(out).lower().endswith(".png"):
        raise InvalidArgumentError(f"The figure is written as PNG; give a file name ending in .png, received {out!r}.")
    runs: List[Dict[str, Any]] = [read_curves(d) for d in run_dirs]
    Figure, FigureCanvasAgg = _matplotlib()
    figure = Figure(figsize=(11, 7.5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2)
    colours = [f"C{k % 10}" for k in range(len(runs))]
    for run, colour in zip(runs, colours):
        iterations, minutes, loss = _loss_points(run)
        for column, x in enumerate((iterations, minutes)):
            axes[0, column].plot(x, loss, color=colour, label=run["name"])
        rows = run["history"]
        if rows:
            acc = [r["val_accuracy"] for r in rows]
            low = [r["val_accuracy"] - r["val_ci95"] for r in rows]
            high = [r["val_accuracy"] + r["val_ci95"] for r in rows]
            for column, key in enumerate(("iteration", "train_seconds")):
                x = [r[key] / (60.0 if column else 1.0) for r in rows]
                axes[1, column].plot(x, acc, color=colour, marker="o", markersize=3, label=run["name"])
                axes[1, column].fill_between(x, low, high, color=colour, alpha=0.2, linewidth=0)
    for column, xlabel in enumerate(("meta-iteration", "meta-training time (minutes)")):
        axes[0, column].set_ylabel("training (outer) loss")
        axes[1, column].set_ylabel("validation accuracy (95% CI band)")
        for row in range(2):
            axes[row, column].set_xlabel(xlabel)
            axes[row, column].grid(alpha=0.3)
    if not any(run["history"] for run in runs):
        for column in range(2):
            axes[1, column].text(0.5, 0.5, "no validation recorded (--val_interval)", ha="center", va="center",
                                 transform=axes[1, column].transAxes)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    columns = 1 if len(runs) > 4 else min(len(runs), 2)
    rows = -(-len(runs) // columns)
    top = 0.93 - 0.03 * rows
    figure.suptitle(title or "learning curves", fontsize="medium", y=0.99)
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.96), ncol=columns, fontsize="small",
                  frameon=False)
    figure.tight_layout(rect=(0, 0, 1, top))
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    figure.savefig(out)
    return out


__all__ = ["read_curves", "plot_runs"]
