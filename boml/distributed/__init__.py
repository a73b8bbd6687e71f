"""Scale-out of a meta-batch over TensorFlow's own distributed runtime (in-graph replication).

One client builds ONE graph in which the ``B`` tasks of a meta-iteration are split into ``N``
shards, one per worker task (``/job:worker/task:i``); each shard's hypergradients are computed on
its worker, the aggregation and the outer optimizer run where the meta-parameters live (the ``ps``
job, else ``chief``, else ``worker`` task 0), and one ``session.run`` performs the meta-iteration::

    cluster = boml.distributed.Cluster.from_spec("worker=10.0.0.1:2222,10.0.0.2:2222")
    with boml.distributed.replicate(cluster):
        ...  # the usual BOMLExperiment / BOMLOptimizer code, up to aggregate_all()
    sess = boml.distributed.connect(cluster)
    boml_ho.run(inner_fd, outer_fd, session=sess)

Servers are started with ``python -m boml worker --cluster_spec ... --task_index i``.
"""
import importlib

#: Public name -> module; imported on first access, so ``python -m boml --help`` stays free of TensorFlow.
_NAMES = {
    "Cluster": "cluster", "parse_cluster_spec": "cluster",
    "ClusterError": "errors", "ClusterSpecError": "errors", "WorkerFailureError": "errors",
    "WorkerUnreachableError": "errors",
    "active_plan": "placement", "replicate": "placement", "shard_sizes": "placement",
    "serve": "server", "start_server": "server",
    "ClusterSession": "session", "connect": "session", "ping": "session",
}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'boml.distributed' has no attribute {name!r}")
    return getattr(importlib.import_module(f"boml.distributed.{_NAMES[name]}"), name)


def __dir__():
    return __all__
