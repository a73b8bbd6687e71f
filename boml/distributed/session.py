"""The client's session on a cluster: reachability at start, bounded meta-iterations, typed failures."""
import re
import threading
import time

import tensorflow.compat.v1 as tf

from boml.distributed.errors import WorkerFailureError, WorkerUnreachableError
from boml.errors import InvalidArgumentError

#: TensorFlow errors that mean a task failed, hung or cannot be reached.
TASK_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
               tf.errors.CancelledError)
_DEVICE = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")


def _seconds(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgumentError(f"{name} must be a positive number of seconds; received {value!r}.")
    return float(value)


def ping(cluster, device, timeout=2.0):
    """Whether the task ``device`` of ``cluster`` runs an op within ``timeout`` seconds.

    A session to that task alone (``device_filters``), so other tasks cannot make it wait.
    """
    graph = tf.Graph()
    with graph.as_default(), tf.device(device):
        probe = tf.constant(1, tf.int32) + 1
    config = tf.ConfigProto(device_filters=[device], operation_timeout_in_ms=int(1000 * timeout))
    options = tf.RunOptions(timeout_in_ms=int(1000 * timeout))
    try:
        with tf.Session("grpc://" + cluster.address(device), graph=graph, config=config) as sess:
            return int(sess.run(probe, options=options)) == 2
    except tf.errors.OpError:
        return False


def _describe(cluster, devices):
    return ", ".join(f"{d} at {cluster.address(d)}" for d in devices)


def connect(cluster, graph=None, connect_timeout=30.0, step_timeout=600.0, config=None, clock=time.monotonic):
    """Waits until every task of ``cluster`` answers, then opens the client's session.

    Args:
        cluster: a :class:`~boml.distributed.Cluster`.
        graph: the graph to run (default: the default graph).
        connect_timeout: seconds to wait for all tasks to answer.
        step_timeout: bound in seconds of every ``run`` of the session (a task that hangs fails
            the run after it).
        config: a ``tf.ConfigProto`` to start from (its ``device_filters`` are set to the tasks
            the graph uses, so unused tasks of the cluster are not waited for).

    Returns:
        A :class:`ClusterSession`.

    Raises:
        WorkerUnreachableError: a task did not answer within ``connect_timeout`` (the message names
            it and its address).
    """
    connect_timeout = _seconds("connect_timeout", connect_timeout)
    deadline = clock() + connect_timeout
    waiting = list(cluster.devices)
    while waiting:
        waiting = [d for d in waiting if not ping(cluster, d, timeout=max(0.1, min(2.0, deadline - clock())))]
        if waiting and clock() >= deadline:
            raise WorkerUnreachableError(
                f"No answer within connect_timeout={connect_timeout:g} s from {_describe(cluster, waiting)}. Start "
                f"them with `python -m boml worker --cluster_spec ... --job_name JOB --task_index I`, check the "
                f"addresses and firewalls, or raise connect_timeout.", [(d, cluster.address(d)) for d in waiting])
        if waiting:
            time.sleep(0.2)
    session_config = tf.ConfigProto() if config is None else config
    session_config.device_filters[:] = cluster.devices
    if step_timeout is not None and not session_config.operation_timeout_in_ms:
        session_config.operation_timeout_in_ms = int(1000 * _seconds("step_timeout", step_timeout))
    return ClusterSession(cluster, graph=graph, config=session_config, step_timeout=step_timeout)


class ClusterSession(tf.Session):
    """A ``tf.Session`` on a cluster whose ``run`` is bounded and reports a failed task by name.

    Args:
        cluster: the :class:`~boml.distributed.Cluster` (its ``target`` is the master).
        graph, config: as for ``tf.Session``.
        step_timeout: seconds bounding every ``run`` (None: unbounded).
        probe_timeout: seconds each task gets to answer the diagnosis ping after a failure.
    """

    def __init__(self, cluster, graph=None, config=None, step_timeout=600.0, probe_timeout=2.0):
        self.cluster = cluster
        self.step_timeout = None if step_timeout is None else _seconds("step_timeout", step_timeout)
        self.probe_timeout = _seconds("probe_timeout", probe_timeout)
        self.failure = None
        super().__init__(cluster.target, graph=graph, config=config)

    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        """``tf.Session.run`` bounded by ``step_timeout``.

        Raises:
            WorkerFailureError: a task died, hung or became unreachable; the message names the
                failing task(s) and address(es) (found by pinging every task of the graph).
        """
        if options is None and self.step_timeout is not None:
            options = tf.RunOptions(timeout_in_ms=int(1000 * self.step_timeout))
        try:
            return super().run(fetches, feed_dict=feed_dict, options=options, run_metadata=run_metadata)
        except TASK_ERRORS as error:
            self.failure = self._failure(error)
            raise self.failure from error

    def close(self):
        """Closes the session; after a task failure, waits at most ``probe_timeout`` seconds for it.

        Closing tells every task to drop its graphs; a dead task would make that wait for the
        session's ``operation_timeout_in_ms``, so after a failure it finishes in the background.
        """
        if self.failure is None:
            return super().close()
        closing = threading.Thread(target=self._close_quietly, daemon=True, name="boml-session-close")
        closing.start()
        closing.join(self.probe_timeout)

    def _close_quietly(self):
        try:
            super().close()
        except tf.errors.OpError:
            pass  # the failed task cannot answer; the failure was reported already

    def _failure(self, error):
        cluster = self.cluster
        failed = [d for d in cluster.devices if not ping(cluster, d, timeout=self.probe_timeout)]
        kind = type(error).__name__
        if failed:
            return WorkerFailureError(
                f"The meta-iteration failed ({kind}) because {_describe(cluster, failed)} did not answer. Restart "
                f"the task(s) (`python -m boml worker ...`), then resume the client from its last checkpoint.",
                [(d, cluster.address(d)) for d in failed])
        named = [d for d in cluster.devices if any(f"/job:{j}/task:{i}" == d for j, i in _DEVICE.findall(str(error)))]
        where = f"; TensorFlow names {_describe(cluster, named)}" if named else ""
        return WorkerFailureError(
            f"The meta-iteration failed ({kind}: {error.message.strip()[:300]}){where}, but every task answers now. "
            f"If a step takes longer than step_timeout={self.step_timeout} s, raise it; otherwise rerun.",
            [(d, cluster.address(d)) for d in named])
