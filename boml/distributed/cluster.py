"""The cluster of a distributed run: parsed from ``--cluster_spec`` or ``TF_CONFIG``.

Jobs (TensorFlow's names): ``worker`` (required) computes the shards of the meta-batch; ``ps``
(optional) holds the meta-parameters (round-robin over its tasks); ``chief`` (optional, one task)
holds them when there is no ``ps``. Without either, ``worker`` task 0 holds them.
"""
import json
import os

from boml.distributed.errors import ClusterSpecError

JOBS = ("chief", "ps", "worker")
_FORMATS = ('JSON such as \'{"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}\' (or a TF_CONFIG document), or '
            '"worker=127.0.0.1:2222,127.0.0.1:2223;ps=127.0.0.1:2224"')


def _check_address(job, address):
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterSpecError(f"cluster_spec: the address {address!r} of job {job!r} is not host:port with a port "
                               f"in 1..65535. Write it as 127.0.0.1:2222.")
    return f"{host}:{int(port)}"


def parse_cluster_spec(text):
    """Parses a cluster specification into ``(jobs, task)``.

    Args:
        text: JSON (``{"worker": [...], "ps": [...]}`` or a whole ``TF_CONFIG`` document with
            ``cluster`` and ``task``), or ``"worker=host:port,host:port;ps=host:port"``.

    Returns:
        ``(jobs, task)``: dict job name -> list of ``host:port``; ``(job, index)`` from a
        ``TF_CONFIG`` ``task`` entry, or None.

    Raises:
        ClusterSpecError: the text is not in one of the formats, names an unknown job, has no
            worker, or a bad address.
    """
    text = str(text or "").strip()
    if not text:
        raise ClusterSpecError(f"cluster_spec is empty; write {_FORMATS}.")
    task = None
    if text[0] in '{["':
        try:
            document = json.loads(text)
        except ValueError as e:
            raise ClusterSpecError(f"cluster_spec is not valid JSON ({e}); received {text!r}. Write {_FORMATS}.") \
                from None
        if isinstance(document, dict) and "cluster" in document:
            task = document.get("task")
            document = document["cluster"]
        jobs = document
    else:
        jobs = {}
        for part in text.replace(" ", ";").split(";"):
            if not part:
                continue
            job, sep, addresses = part.partition("=")
            if not sep:
                raise ClusterSpecError(f"cluster_spec: {part!r} is not job=host:port[,host:port]; received "
                                       f"{text!r}. Write {_FORMATS}.")
            jobs[job.strip()] = [a for a in addresses.split(",") if a]
    if not isinstance(jobs, dict):
        raise ClusterSpecError(f"cluster_spec must map job names to address lists; received {text!r}. "
                               f"Write {_FORMATS}.")
    unknown = sorted(set(jobs) - set(JOBS))
    if unknown:
        raise ClusterSpecError(f"cluster_spec: unknown job(s) {unknown}; allowed: {list(JOBS)}. The workers compute "
                               f"the shards; ps (or chief) holds the meta-parameters.")
    jobs = {job: [_check_address(job, a) for a in (addrs if isinstance(addrs, list) else [addrs])]
            for job, addrs in jobs.items() if addrs}
    if not jobs.get("worker"):
        raise ClusterSpecError(f"cluster_spec has no worker address; received {text!r}. Write {_FORMATS}.")
    if len(jobs.get("chief", [])) > 1:
        raise ClusterSpecError(f"cluster_spec: the chief job has one task; received {jobs['chief']}.")
    if task is not None:
        task = _check_task(jobs, task.get("type"), task.get("index", 0))
    return jobs, task


def _check_task(jobs, job, index):
    if job not in jobs or isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[job]):
        sizes = {j: len(a) for j, a in jobs.items()}
        raise ClusterSpecError(f"task {job!r} index {index!r} is not in the cluster (tasks per job: {sizes}). "
                               f"Give a job of the cluster and an index below its number of tasks.")
    return job, index


class Cluster:
    """The tasks of a cluster, where the meta-parameters live and which workers compute shards.

    Args:
        jobs: dict job name -> list of ``host:port`` (see :func:`parse_cluster_spec`).
        task: optional ``(job, index)`` of this process (from ``TF_CONFIG``).
        num_workers: how many workers (the first ones) compute shards (default: all).

    Raises:
        ClusterSpecError: bad jobs or ``num_workers``.
    """

    def __init__(self, jobs, task=None, num_workers=None):
        self.jobs, self.task = parse_cluster_spec(json.dumps(jobs))[0], task
        available = len(self.jobs["worker"])
        if num_workers is None:
            num_workers = available
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or not 1 <= num_workers <= available:
            raise ClusterSpecError(f"num_workers must be an integer in 1..{available} (the cluster's workers); "
                                   f"received {num_workers!r}.")
        self.num_workers = num_workers

    @classmethod
    def from_spec(cls, spec=None, num_workers=None, environ=None):
        """A cluster from a specification string, or from ``TF_CONFIG`` when ``spec`` is None.

        Raises:
            ClusterSpecError: no specification and no ``TF_CONFIG``, or a bad one.
        """
        if spec is None:
            spec = (os.environ if environ is None else environ).get("TF_CONFIG")
            if not spec:
                raise ClusterSpecError("No cluster: pass --cluster_spec (or cluster_spec=...) or set TF_CONFIG to "
                                       '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                                       '"index": 0}}.')
        jobs, task = parse_cluster_spec(spec)
        return cls(jobs, task, num_workers)

    @property
    def spec(self):
        """The ``tf.train.ClusterSpec``."""
        import tensorflow.compat.v1 as tf

        return tf.train.ClusterSpec(self.jobs)

    @property
    def parameter_job(self):
        """The job holding the meta-parameters: ``ps``, else ``chief``, else ``worker``."""
        return next(job for job in ("ps", "chief", "worker") if job in self.jobs)

    @property
    def parameter_device(self):
        """Device of the aggregation and the outer optimizer (task 0 of ``parameter_job``)."""
        return f"/job:{self.parameter_job}/task:0"

    @property
    def worker_devices(self):
        """The devices that compute the shards, one per worker used."""
        return [f"/job:worker/task:{i}" for i in range(self.num_workers)]

    @property
    def target(self):
        """The gRPC target of the client's session (the server holding the meta-parameters)."""
        return "grpc://" + self.jobs[self.parameter_job][0]

    @property
    def devices(self):
        """Every task the graph uses: the parameter tasks, then the shard workers."""
        params = [f"/job:{self.parameter_job}/task:{i}" for i in range(len(self.jobs["ps"]))] \
            if self.parameter_job == "ps" else [self.parameter_device]
        return params + [d for d in self.worker_devices if d not in params]

    def address(self, device):
        """``host:port`` of a task device ``/job:J/task:i``."""
        job, index = device.split("/job:")[1].split("/task:")
        return self.jobs[job][int(index.split("/")[0])]

    def __repr__(self):
        return f"Cluster({self.jobs}, num_workers={self.num_workers})"
