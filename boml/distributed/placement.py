"""In-graph replication: the tasks of a meta-batch split into shards, one per worker device.

Inside :func:`replicate`, graph building is placed on the parameter tasks (variables, the
aggregation and the outer optimizer), and :func:`boml.task.map_over_tasks` calls
:meth:`ShardPlan.map` instead of one ``tf.map_fn`` over the ``B`` tasks: the batch is sliced on the
parameter task, each shard copies the meta-parameters once to its worker and maps its tasks there,
and the per-task outputs (losses, hypergradients, adapted states) are concatenated back in task
order, so the aggregation sees exactly the tensors of a single-process run.
"""
import contextlib
import itertools
import os

import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError

_STACK = []
_GRAPHS = itertools.count()


def shard_sizes(tasks, shards):
    """Sizes of ``min(tasks, shards)`` contiguous shards of ``tasks`` tasks, as even as possible.

    Example: ``shard_sizes(5, 2) == [3, 2]``.

    Raises:
        InvalidArgumentError: ``tasks`` or ``shards`` is not a positive integer.
    """
    for name, value in (("tasks", tasks), ("shards", shards)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"shard_sizes: {name} must be a positive integer; received {value!r}.")
    used = min(tasks, shards)
    return [tasks // used + (1 if i < tasks % used else 0) for i in range(used)]


class ShardPlan:
    """Where the shards of a meta-batch run.

    Args:
        parameter_device: device of the meta-parameters and of the aggregation.
        worker_devices: one device per shard.
    """

    def __init__(self, parameter_device, worker_devices):
        self.parameter_device = parameter_device
        self.worker_devices = list(worker_devices)

    def map(self, map_shard, batches, tasks, meta_params):
        """Maps the tasks shard by shard.

        Args:
            map_shard: ``(batch_slices, meta_values) -> list of outputs with a leading task axis``.
            batches: the batched tensors (leading axis: ``tasks``).
            tasks: the number of tasks ``B`` (static).
            meta_params: the meta-parameters, copied once per shard to its worker.

        Returns:
            The outputs of all tasks, in task order, on the parameter device.
        """
        sizes = shard_sizes(int(tasks), len(self.worker_devices))
        with tf.device(self.parameter_device), tf.name_scope("shard_inputs"):
            slices = [tf.split(b, sizes, axis=0) for b in batches]
        outputs = []
        for index, device in enumerate(self.worker_devices[:len(sizes)]):
            with tf.device(device), tf.name_scope(f"shard_{index}"):
                meta_values = [tf.identity(p) for p in meta_params]
                outputs.append(map_shard([s[index] for s in slices], meta_values))
        with tf.device(self.parameter_device), tf.name_scope("shard_outputs"):
            return [tf.concat(list(parts), axis=0) if len(parts) > 1 else tf.identity(parts[0])
                    for parts in zip(*outputs)]

    def single_task_device(self):
        """Device of a task that is not batched (the first worker)."""
        return tf.device(self.worker_devices[0])


def active_plan():
    """The :class:`ShardPlan` of the innermost :func:`replicate` of the default graph, or None."""
    graph = tf.get_default_graph()
    for plan_graph, plan in reversed(_STACK):
        if plan_graph is graph:
            return plan
    return None


@contextlib.contextmanager
def replicate(cluster):
    """Builds the graph inside for ``cluster`` (in-graph replication).

    Variables (meta-parameters, optimizer slots, counters) and the ops outside the task map go to
    ``cluster.parameter_device`` (round-robin over the ``ps`` tasks for variables when there are
    several); each ``map_over_tasks`` is split into one shard per worker of ``cluster``.

    Args:
        cluster: a :class:`~boml.distributed.Cluster`.

    Yields:
        The :class:`ShardPlan`.
    """
    plan = ShardPlan(cluster.parameter_device, cluster.worker_devices)
    ps_tasks = len(cluster.jobs.get("ps", ()))
    device = tf.train.replica_device_setter(ps_tasks=ps_tasks, worker_device=cluster.parameter_device) \
        if ps_tasks > 1 else cluster.parameter_device
    graph = tf.get_default_graph()
    _STACK.append((graph, plan))
    try:
        # The servers keep resource variables by name across clients' graphs: a container of the
        # graph's own keeps a later run (another dtype or shape) from meeting an earlier run's state.
        with tf.device(device), tf.container(f"boml_{os.getpid()}_{next(_GRAPHS)}"):
            yield plan
    finally:
        _STACK.remove((graph, plan))
