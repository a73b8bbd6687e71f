"""boml.memory: the resident-memory probes see a transient allocation, and degrade where /proc is missing."""
import math

import numpy as np

from boml import memory


def test_peak_after_reset_covers_a_transient_allocation():
    assert memory.reset_peak_memory()
    before = memory.current_memory_mb()
    assert before > 0 and memory.peak_memory_mb() >= before - 1.0
    block = np.ones(8_000_000)  # 64 MB, touched
    during = memory.current_memory_mb()
    del block
    assert during > before + 50
    assert memory.peak_memory_mb() >= during - 1.0
    assert memory.current_memory_mb() < during - 50  # freed, the peak stays
    assert memory.reset_peak_memory()
    assert memory.peak_memory_mb() < during - 50  # a new measurement starts


def test_without_proc_status(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "_STATUS", str(tmp_path / "missing"))
    monkeypatch.setattr(memory, "_CLEAR_REFS", str(tmp_path / "no" / "such" / "file"))
    assert math.isnan(memory.current_memory_mb())
    assert memory.peak_memory_mb() > 0  # ru_maxrss, the peak since the process started
    assert memory.reset_peak_memory() is False
