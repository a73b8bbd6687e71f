"""Typed exceptions raised by boml.

Every message follows one template: what was wrong, the value received, what is
allowed, and what to do next. Each class derives from a built-in exception type
so that generic handlers (``except ValueError``) keep working.
"""


class BOMLError(Exception):
    """Root of every exception boml raises on purpose."""


class InvalidArgumentError(BOMLError, ValueError):
    """An argument has a value that boml does not accept."""


class UnknownNameError(BOMLError, KeyError):
    """A strategy, optimizer or network name is not registered."""

    def __str__(self):  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class InvalidCombinationError(BOMLError, ValueError):
    """The (method, inner_method, outer_method) triple is not allowed."""


class ShapeError(BOMLError, ValueError):
    """A tensor or array does not have the shape boml expects."""


class GraphModeError(BOMLError, RuntimeError):
    """boml was used while TensorFlow executes eagerly."""


class NotFinalizedError(BOMLError, RuntimeError):
    """``run`` was called before ``aggregate_all``."""


class PhaseError(BOMLError, RuntimeError):
    """A build step was called out of order (for example after ``aggregate_all``)."""


class DetachedOuterParameterError(BOMLError, ValueError):
    """A meta-parameter does not influence the outer objective."""


class UnsupportedGraphError(BOMLError, ValueError):
    """An objective contains an operation boml cannot re-evaluate per task."""


class DivergenceError(BOMLError, FloatingPointError):
    """A loss or hypergradient became NaN or infinite during ``run``."""


class DataError(BOMLError, ValueError):
    """A dataset folder, file or request is missing, corrupt or inconsistent."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset folder or file does not exist."""


class MissingDataError(DataNotFoundError):
    """A dataset is not where boml looked; the message names the places and the command that gets it."""


class DownloadError(DataError):
    """A dataset file could not be downloaded; the message gives the manual steps."""


class ChecksumMismatchError(DownloadError):
    """A downloaded file does not have the published checksum (it was removed)."""


def describe_allowed(values):
    """Formats a collection of allowed values for an error message."""
    return ", ".join(repr(v) for v in sorted(values, key=str))


class UnknownOptionError(InvalidArgumentError):
    """A strategy received a keyword it does not take (the message lists the ones it does)."""


class MissingDependencyError(BOMLError, ImportError):
    """An optional dependency (an extra such as ``boml[plot]``) is not installed."""


class SolverError(BOMLError, ArithmeticError):
    """An in-graph linear solve of a hypergradient missed its tolerance or broke down (``solver_failure="raise"``)."""


class SolverWarning(UserWarning):
    """An in-graph linear solve of a hypergradient missed its tolerance or broke down (``solver_failure="warn"``)."""


class InnerDivergenceWarning(UserWarning):
    """The inner loop raised the inner objective it should lower (an inner learning rate too large)."""


class VectorizationWarning(UserWarning):
    """``vectorize_tasks=True`` was asked for, but the task body runs in the per-task map (the reason is given)."""
