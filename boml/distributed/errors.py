"""Typed errors of :mod:`boml.distributed` (they extend boml's hierarchy, :mod:`boml.errors`)."""
from boml.errors import BOMLError, InvalidArgumentError


class ClusterError(BOMLError, RuntimeError):
    """Something is wrong with the cluster of a distributed run."""


class ClusterSpecError(InvalidArgumentError):
    """A cluster specification (``--cluster_spec`` or ``TF_CONFIG``) cannot be used."""


class WorkerUnreachableError(ClusterError, ConnectionError):
    """A task of the cluster did not answer before the connection timeout.

    Attributes:
        tasks: ``(device, address)`` pairs of the tasks that did not answer.
    """

    def __init__(self, message, tasks=()):
        super().__init__(message)
        self.tasks = list(tasks)


class WorkerFailureError(ClusterError):
    """A task failed (died, hung or became unreachable) during a meta-iteration.

    Attributes:
        tasks: ``(device, address)`` pairs of the tasks found failing.
    """

    def __init__(self, message, tasks=()):
        super().__init__(message)
        self.tasks = list(tasks)
