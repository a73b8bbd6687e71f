"""SIGINT/SIGTERM during ``python -m boml train``: checkpoint, results so far, the resume command, exit 130."""
import json
import os
import shlex
import signal
import subprocess
import sys
import threading

import pytest

from boml.__main__ import main
from boml.workflow import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--preset", "maml-synthetic", "--image_size", "8", "--num_filters", "4", "--classes", "3", "--examples_test",
        "2", "--meta_batch_size", "2", "--test_episodes", "6", "--val_interval", "0", "--print_interval", "1",
        "--save_interval", "1000", "--meta_train_iterations", "1000000", "--name", "stop"]


def start_and_signal(logdir, number):
    """Starts a training subprocess, sends ``number`` after its first progress line, returns (code, out, err)."""
    process = subprocess.Popen([sys.executable, "-m", "boml", "train", *TINY, "--logdir", str(logdir)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(600, process.kill)  # bounded: a hung child cannot hang the suite
    timer.start()
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.split(" ", 1)[-1].startswith("it "):  # "HH:MM:SS it 1/1000000 | ..."
                process.send_signal(number)
                break
        out, err = process.communicate(timeout=300)
    finally:
        timer.cancel()
    return process.returncode, "".join(lines) + out, err


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_and_the_results_then_exits_130(tmp_path, number, capsys):
    code, out, err = start_and_signal(tmp_path, number)
    assert code == 130, err[-3000:]
    assert "Traceback" not in err and "Traceback" not in out
    name = signal.Signals(number).name
    assert f"{name} received" in out
    run_dir = tmp_path / "stop"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["stopped_by"] == name and results["test"] is None
    iterations = results["iterations"]
    assert iterations >= 1 and [p["iteration"] for p in results["progress"]] == list(range(1, iterations + 1))
    assert checkpoints.saved_iterations(str(run_dir)) == [iterations]
    assert f"boml: meta-training stopped by {name} at iteration {iterations}" in err
    command = err.strip().splitlines()[-1].strip()
    assert command == f"python -m boml train --config {run_dir / 'config.json'} --resume true"
    if number == signal.SIGINT:
        # The printed command resumes the run (two more iterations to keep the test short).
        argv = shlex.split(command)[3:] + ["--meta_train_iterations", str(iterations + 2), "--quiet"]
        assert main(argv) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["iterations"] == iterations + 2 and summary["test_episodes"] == 6
        resumed = json.loads((run_dir / "results.json").read_text())
        assert resumed["iterations_this_session"] == 2 and resumed["stopped_by"] == "iterations"
