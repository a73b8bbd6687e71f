"""PEP 8: ruff (configured in ruff.toml) reports nothing on the package, the tests, the examples and the docs."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TARGETS = [t for t in ("boml", "tests", "examples", "benchmarks", "docs") if os.path.exists(os.path.join(ROOT, t))]


def _ruff():
    executable = shutil.which("ruff")
    return [executable] if executable else [sys.executable, "-m", "ruff"]


def test_ruff_reports_no_errors():
    result = subprocess.run(_ruff() + ["check", "--output-format", "concise", "--no-cache"] + TARGETS,
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_configuration_is_used():
    result = subprocess.run(_ruff() + ["check", "--show-settings", "boml/__init__.py"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ruff.toml" in result.stdout and "line_length = 120" in result.stdout
