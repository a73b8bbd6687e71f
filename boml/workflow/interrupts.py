"""Stopping a training run on SIGINT (Ctrl-C) or SIGTERM without losing its work.

The first signal asks the training loop to stop after the meta-iteration in progress (a
``session.run`` cannot be cut in the middle): the loop then saves a checkpoint and the results so
far and raises :class:`TrainingInterrupted`, which ``python -m boml`` turns into a message with
the command that resumes the run and exit status 130. A second signal abandons the iteration at
once (``KeyboardInterrupt``; nothing more is saved).
"""
import signal
import threading
from typing import Any, Callable, Dict, Optional

#: Exit status of a run stopped by a signal (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED = 130


class TrainingInterrupted(KeyboardInterrupt):
    """Meta-training was stopped by a signal after saving a checkpoint and the results so far.

    Attributes:
        signal_name: ``"SIGINT"`` or ``"SIGTERM"``.
        results: the results dict written to ``results.json`` (``test`` is None).
        resume_command: the shell command that continues the run.
    """

    def __init__(self, signal_name: str, results: Dict[str, Any], resume_command: str):
        super().__init__(f"meta-training stopped by {signal_name} at iteration {results['iterations']}")
        self.signal_name = signal_name
        self.results = results
        self.resume_command = resume_command


class StopRequest:
    """Context manager: while active, SIGINT and SIGTERM request a stop instead of killing the process.

    Outside the main thread (where Python cannot install handlers) it does nothing.

    Args:
        log: receives one line when a stop is requested.
        signals: the signals handled.
    """

    def __init__(self, log: Callable[[str], None] = print, signals=(signal.SIGINT, signal.SIGTERM)):
        self.log = log
        self.signals = tuple(signals)
        self.requested: Optional[str] = None
        self._previous = {}

    def _handle(self, number, _frame):
        name = signal.Signals(number).name
        if self.requested is not None:
            raise KeyboardInterrupt(f"{name} received twice; the meta-iteration in progress is abandoned")
        self.requested = name
        self.log(f"{name} received: finishing the meta-iteration in progress, then saving a checkpoint and the "
                 f"results (send it again to stop at once without saving)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in self.signals:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
        return False


class TerminateAsInterrupt:
    """Context manager: while active (main thread only), SIGTERM raises ``KeyboardInterrupt`` as SIGINT does.

    Python's default SIGTERM ends the process without running ``finally`` blocks; with this, a
    SIGTERM before or after meta-training (graph building, final test) still releases the run lock.
    Inside the training loop :class:`StopRequest` replaces it.
    """

    def __init__(self):
        self._previous = None

    @staticmethod
    def _handle(number, _frame):
        raise KeyboardInterrupt(f"{signal.Signals(number).name} received")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
        return False


__all__ = ["EXIT_INTERRUPTED", "TrainingInterrupted", "StopRequest", "TerminateAsInterrupt"]
