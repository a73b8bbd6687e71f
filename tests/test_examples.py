"""The example scripts run as documented, on the real Omniglot, for a few meta-iterations.

Each ``main`` returns ``(mean, ci95)`` of the test accuracy; a short run must be
above chance by more than three confidence half-widths.
"""
import importlib.util
import os

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("example,flags", [
    ("maml_omniglot", ["--num_filters", "16", "--meta_batch_size", "4", "--meta_lr", "3e-3"]),
    ("meta_feat_omniglot", ["--meta_batch_size", "4", "--T", "3"]),
])
def test_example_learns_on_real_omniglot(real_omniglot, example, flags, capsys):
    module = _load(example)
    mean, ci = module.main(["--data_folder", real_omniglot, "--iterations", "30", "--test_episodes", "50",
                            "--print_interval", "10"] + flags)
    printed = capsys.readouterr().out
    assert "Iteration 30" in printed and "test accuracy" in printed
    assert mean > 1.0 / 5 + 3 * ci, (mean, ci, printed)
