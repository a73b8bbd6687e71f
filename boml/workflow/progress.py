"""Progress of meta-training: a smoothed estimate of the time left, and time formatting.

The estimate is an exponential moving average of the meta-iteration durations, with the
initialisation bias corrected (``average / (1 - (1 - w)^n)``, as Adam's moments), times the
iterations left. The first iteration of a session (graph warm-up) is not counted unless it is
the only one. A single slow iteration moves the estimate by about ``w`` of its excess only.
"""
import math
import time
from typing import Callable, Optional


class EtaEstimator:
    """Estimates the seconds per meta-iteration and the time left.

    Args:
        smoothing: weight ``w`` of the newest duration in the moving average (0 < w <= 1).
        clock: a monotonic clock in seconds (``time.perf_counter``; tests pass a fake one).
        skip_first: the first duration (warm-up) is ignored once a second one is known.
    """

    def __init__(self, smoothing: float = 0.05, clock: Callable[[], float] = time.perf_counter,
                 skip_first: bool = True):
        if not 0 < smoothing <= 1:
            from boml.errors import InvalidArgumentError

            raise InvalidArgumentError(f"smoothing must be in (0, 1]; received {smoothing!r}.")
        self.smoothing = float(smoothing)
        self.clock = clock
        self.skip_first = skip_first
        self._first: Optional[float] = None
        self._average = 0.0
        self._count = 0
        self._started: Optional[float] = None

    def start(self) -> None:
        """Marks the start of a meta-iteration."""
        self._started = self.clock()

    def stop(self) -> float:
        """Marks its end; returns its duration in seconds."""
        duration = self.clock() - self._started
        self._started = None
        self.observe(duration)
        return duration

    def observe(self, seconds: float) -> None:
        """Adds the duration of one meta-iteration."""
        if self.skip_first and self._first is None:
            self._first = float(seconds)
            return
        self._count += 1
        self._average = (1 - self.smoothing) * self._average + self.smoothing * float(seconds)

    @property
    def seconds_per_iteration(self) -> Optional[float]:
        """The smoothed duration of a meta-iteration (None before the first one)."""
        if self._count:
            return self._average / (1 - (1 - self.smoothing) ** self._count)
        return self._first

    def seconds_left(self, iterations_left: int, budget_left: Optional[float] = None) -> float:
        """Estimated seconds for ``iterations_left`` more iterations, capped by a time budget left.

        Returns:
            ``inf`` before the first iteration (and without a budget).
        """
        per_iteration = self.seconds_per_iteration
        eta = math.inf if per_iteration is None else max(0, iterations_left) * per_iteration
        if budget_left is not None:
            eta = min(eta, max(budget_left, 0.0))
        return eta


def format_seconds(seconds: float) -> str:
    """``MM:SS`` or ``H:MM:SS``; ``--:--`` for an unknown (infinite) time."""
    if not math.isfinite(seconds):
        return "--:--"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


__all__ = ["EtaEstimator", "format_seconds"]
