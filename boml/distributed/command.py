"""``python -m boml worker``: starts the TensorFlow server of one task of a cluster."""
import os


def add_worker_parser(sub):
    """Adds the ``worker`` subcommand to the subparsers ``sub`` of ``python -m boml``."""
    worker = sub.add_parser("worker", allow_abbrev=False, help="serve one task of a cluster (distributed training)",
                            description="Starts TensorFlow's server for one task of a cluster and serves until "
                                        "killed (or --lifetime). The task comes from --job_name/--task_index, "
                                        "else from TF_CONFIG's task entry.")
    worker.add_argument("--cluster_spec", default=None, help='JSON {"worker": ["host:port", ...], "ps": [...]} or '
                        '"worker=host:port,host:port;ps=host:port" [default: TF_CONFIG]')
    worker.add_argument("--job_name", default=None, choices=("worker", "ps", "chief"),
                        help="job of this task [default: TF_CONFIG's, else worker]")
    worker.add_argument("--task_index", type=int, default=None, help="index of this task in its job "
                        "[default: TF_CONFIG's, else 0]")
    worker.add_argument("--lifetime", type=float, default=None, help="exit after this many seconds "
                        "[default: serve until killed]")


def run_worker_command(args, serve=None, exit=os._exit):
    """Runs ``python -m boml worker``; once ``--lifetime`` has passed, ends the process with ``exit(0)``.

    The server's threads never stop on their own, hence ``os._exit``; ``serve`` and ``exit`` are
    replaceable for tests.

    Raises:
        ClusterSpecError: no or a bad cluster specification, or a task not in it.
    """
    from boml.workflow.quiet import quiet_tensorflow

    noise = quiet_tensorflow()  # before boml.distributed imports TensorFlow
    try:
        from boml.distributed.cluster import Cluster

        cluster = Cluster.from_spec(args.cluster_spec)
        job, index = cluster.task or ("worker", 0)
        job = args.job_name or job
        index = index if args.task_index is None else args.task_index
        if serve is None:
            from boml.distributed.server import serve
        serve(cluster, job, index, lifetime=args.lifetime, log=lambda line: print(line, flush=True))
    finally:
        noise.stop()
    exit(0)
    return 0
