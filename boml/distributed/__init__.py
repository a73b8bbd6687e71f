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
from boml.distributed.cluster import Cluster, parse_cluster_spec
from boml.distributed.errors import ClusterError, ClusterSpecError, WorkerFailureError, WorkerUnreachableError
from boml.distributed.placement import active_plan, replicate, shard_sizes
from boml.distributed.server import serve, start_server
from boml.distributed.session import ClusterSession, connect, ping

__all__ = ["Cluster", "ClusterError", "ClusterSession", "ClusterSpecError", "WorkerFailureError",
           "WorkerUnreachableError", "active_plan", "connect", "parse_cluster_spec", "ping", "replicate", "serve",
           "shard_sizes", "start_server"]
