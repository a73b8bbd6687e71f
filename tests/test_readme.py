"""The README's code blocks run as written (so they cannot rot)."""
import os
import re
import subprocess
import sys

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def python_blocks(path):
    with open(path, encoding="utf-8") as handle:
        return re.findall(r"```python\n(.*?)```", handle.read(), flags=re.S)


def test_readme_has_python_examples():
    assert python_blocks(README)


def test_readme_examples_run():
    for block in python_blocks(README):
        result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=300,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert result.returncode == 0, result.stderr[-3000:]
        assert "outer loss" in result.stdout
