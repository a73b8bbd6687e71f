"""Resident-memory probes of the current process, for benchmarks and examples (Linux ``/proc``).

``reset_peak_memory()`` then ``peak_memory_mb()`` measures the peak of one piece of work, e.g. one
method of ``examples/hyper_cleaning.py`` after the data were loaded. Outside Linux the figures are
NaN (``current_memory_mb``) or the peak since the process started (``peak_memory_mb``).
"""
import resource

__all__ = ["current_memory_mb", "peak_memory_mb", "reset_peak_memory"]

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def current_memory_mb():
    """Resident memory of this process now.

    Returns:
        The ``VmRSS`` of ``/proc/self/status`` in MB, NaN where it cannot be read.
    """
    return _status_mb("VmRSS")


def peak_memory_mb():
    """Peak resident memory of this process since it started or since ``reset_peak_memory()``.

    Returns:
        ``VmHWM`` of ``/proc/self/status`` in MB; where it cannot be read, ``ru_maxrss`` (the peak since the
        process started).
    """
    value = _status_mb("VmHWM")
    if value != value:  # NaN
        value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return value


def reset_peak_memory():
    """Resets the peak-RSS counter to the current RSS (Linux >= 4.0).

    Returns:
        True on success, False where the kernel does not allow it.
    """
    try:
        with open(_CLEAR_REFS, "w") as stream:
            stream.write("5")
        return True
    except OSError:
        return False


def _status_mb(key):
    try:
        with open(_STATUS) as stream:
            for line in stream:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")
