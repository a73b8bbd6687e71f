"""A quiet start for the command line: TensorFlow's native start-up lines are filtered out of stderr."""
import os
import subprocess
import sys

import pytest

from boml.workflow.quiet import is_noise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Lines TensorFlow 2.21 prints at import on a machine without a GPU (each of the first two twice).
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796159573.843727    4983 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "I0000 00:00:1796159573.917311    4983 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
    "compiler flags.",
    "E0000 00:00:1796159574.1    4983 cuda_executor.cc:1309] INTERNAL: failed call to cuInit: UNKNOWN ERROR (303)",
]
KEPT = [
    "Traceback (most recent call last):",
    "E0000 00:00:1796159574.1    4983 op_kernel.cc:1830] OP_REQUIRES failed at matmul_op.cc: INVALID_ARGUMENT",
    "boml: error: MissingDataError: Omniglot not found",
    "UserWarning: something the user should see",
]


@pytest.mark.parametrize("line", STARTUP)
def test_startup_lines_are_noise(line):
    assert is_noise((line + "\n").encode())


@pytest.mark.parametrize("line", KEPT)
def test_other_lines_are_kept(line):
    assert not is_noise((line + "\n").encode())


SCRIPT = """
import os, sys
from boml.workflow.quiet import StderrFilter
noise = StderrFilter().start()
print("START", file=sys.stderr, flush=True)
for line in {lines!r}:
    os.write(2, (line + "\\n").encode())   # as native code writes: to the file descriptor
print("python-level message", file=sys.stderr)
noise.stop()
print("after stop", file=sys.stderr)
"""


def test_the_filter_forwards_everything_else_in_order():
    lines = [STARTUP[0], KEPT[0], STARTUP[1], STARTUP[1], KEPT[1], STARTUP[3]]
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(lines=lines)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = done.stderr.splitlines()
    assert out[out.index("START") + 1:] == [KEPT[0], KEPT[1], "python-level message", "after stop"]


def test_a_training_command_starts_quietly_unless_verbose(tmp_path):
    """Without TF_CPP_MIN_LOG_LEVEL, the command line hides TensorFlow's start-up; --verbose shows it."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = [sys.executable, "-m", "boml", "evaluate", "--run_dir", str(tmp_path / "none")]
    quiet = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines() == [
        f"boml: error: DataNotFoundError: {tmp_path / 'none'} has no config.json; give the directory of a "
        "`boml train` run."]
    verbose = subprocess.run(argv + ["--verbose"], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert verbose.returncode == 2
    assert any(is_noise((line + "\n").encode()) for line in verbose.stderr.splitlines())
