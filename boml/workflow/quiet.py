"""A quiet start for the command line: TensorFlow's C++ start-up lines filtered out of stderr.

TensorFlow's native code writes to file descriptor 2 before ``TF_CPP_MIN_LOG_LEVEL`` applies
(``WARNING: All log messages before absl::InitializeLog() ...``, the ``cudart_stub`` line, the
``cpu_feature_guard`` line, each twice). :class:`StderrFilter` puts a pipe in front of the real
stderr and forwards every line except these; everything else (Python tracebacks, warnings,
TensorFlow's real errors) goes through unchanged. ``python -m boml --verbose`` does not filter.
"""
import os
import re
import sys
import threading

#: Lines TensorFlow's native code prints at start-up (absl log lines of level I/W, the CPU banner,
#: and the CUDA probing errors of a machine without a GPU).
NOISE = (
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(rb"^[IW]\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\] "),
    re.compile(rb"^E\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\] .*(?:cuda|cuInit|CUDA|GPU)"),
    re.compile(rb"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"),
)


def is_noise(line: bytes) -> bool:
    """True for a start-up line of TensorFlow's native code (see ``NOISE``)."""
    return any(pattern.search(line) for pattern in NOISE)


class StderrFilter:
    """Filters file descriptor 2 through :func:`is_noise` between :meth:`start` and :meth:`stop`."""

    def __init__(self, drop=is_noise):
        self.drop = drop
        self._saved = None
        self._thread = None

    def start(self) -> "StderrFilter":
        """Puts the filter in front of stderr (does nothing if stderr has no file descriptor)."""
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            return self
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), daemon=True)
        self._thread.start()
        return self

    def _pump(self, read_end):
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not self.drop(line):
                    os.write(self._saved, line)

    def stop(self) -> None:
        """Restores the real stderr after forwarding what is left in the pipe."""
        if self._saved is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)  # closes the pipe's write end: the pump reads to its end
        self._thread.join(timeout=5)
        os.close(self._saved)
        self._saved = None


def quiet_tensorflow():
    """Starts a :class:`StderrFilter` and lowers TensorFlow's own log levels; returns the filter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return StderrFilter().start()


__all__ = ["NOISE", "is_noise", "StderrFilter", "quiet_tensorflow"]
