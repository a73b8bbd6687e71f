"""Starting a TensorFlow server for one task of a cluster (``python -m boml worker``)."""
import time

from boml.distributed.errors import ClusterSpecError


def start_server(cluster, job="worker", task_index=0):
    """Starts the in-process ``tf.distribute.Server`` of task ``task_index`` of ``job``.

    Args:
        cluster: a :class:`~boml.distributed.Cluster`.
        job: ``"worker"``, ``"ps"`` or ``"chief"``.
        task_index: index of the task in its job.

    Returns:
        The started server.

    Raises:
        ClusterSpecError: the job or index is not in the cluster.
    """
    import tensorflow.compat.v1 as tf

    if job not in cluster.jobs or isinstance(task_index, bool) or not isinstance(task_index, int) \
            or not 0 <= task_index < len(cluster.jobs[job]):
        sizes = {j: len(a) for j, a in cluster.jobs.items()}
        raise ClusterSpecError(f"task {job!r} index {task_index!r} is not in the cluster (tasks per job: {sizes}). "
                               f"Pass --job_name and --task_index of a task of --cluster_spec.")
    config = tf.ConfigProto(allow_soft_placement=False)
    return tf.distribute.Server(cluster.spec, job_name=job, task_index=task_index, config=config, start=True)


def serve(cluster, job="worker", task_index=0, lifetime=None, log=print, sleep=time.sleep):
    """Starts the server of one task and serves until killed, or for ``lifetime`` seconds.

    Args:
        cluster: a :class:`~boml.distributed.Cluster`.
        job: the task's job.
        task_index: the task's index.
        lifetime: seconds after which to return (None: serve forever).
        log: receives the "listening" line.
        sleep: the sleeping function (tests).

    Returns:
        The server, once ``lifetime`` has passed.
    """
    server = start_server(cluster, job, task_index)
    log(f"boml {job} /job:{job}/task:{task_index} serving at {cluster.jobs[job][task_index]} "
        f"({server.target}); lifetime {'unbounded' if lifetime is None else f'{lifetime:g} s'}")
    if lifetime is None:
        server.join()
    sleep(lifetime)
    return server
