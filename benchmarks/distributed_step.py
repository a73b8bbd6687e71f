"""Cost of the distributed path: MAML (second order) on synthetic 28x28 5-way 1-shot episodes.

Starts ``python -m boml worker`` processes on 127.0.0.1 (one ps holding the meta-parameters, N
workers computing the shards), builds the same graph with ``boml.distributed.replicate`` and
reports, against the single-process run: seconds per meta-iteration (median), tasks per second,
and the bytes one meta-iteration moves between the ps and the workers, counted from the tensor
sizes (meta-parameters out to every shard; per-task hypergradients, adapted states and losses
back). A model of the speed-up on N real machines follows from these numbers::

    t_N = t_1 / N + c_N      c_N = o + bytes_N / bandwidth

with ``t_1`` the single-process compute of the meta-batch, ``o`` the fixed per-step overhead of
the distributed path (measured here with 1 local worker), ``bytes_N`` as printed.

    python benchmarks/distributed_step.py [--workers 1 2 4] [--meta-batch 8] [--steps 6]
"""
import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import boml  # noqa: E402
from boml import distributed  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(dataset, meta_batch, T, cluster=None):
    graph = tf.Graph()
    with graph.as_default(), (distributed.replicate(cluster) if cluster else contextlib.nullcontext()):
        tf.set_random_seed(0)
        ex = boml.BOMLExperiment(dataset, meta_batch_size=meta_batch)
        boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
        meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1")
        ex.model = boml_ho.base_learner(ex.x, meta_learner)
        inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), 0.4, T, experiment=ex)
        boml_ho.ul_problem(boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_), 1e-3, inner_grad,
                           meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS))
        boml_ho.aggregate_all()
        init = tf.global_variables_initializer()
    return graph, ex, boml_ho, inner_grad, init


def measure(session, ex, boml_ho, init, dataset, meta_batch, steps):
    session.run(init)
    rand = np.random.RandomState(0)
    times = []
    for _ in range(steps + 1):
        feeds = ex.feed_dicts(dataset.train.generate_batch(meta_batch, rand=rand))
        start = time.perf_counter()
        boml_ho.run(*feeds, session=session)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first run registers the graphs


def bytes_per_iteration(boml_ho, inner_grad, shards, meta_batch):
    size = lambda tensors: sum(int(np.prod(t.shape.as_list())) * t.dtype.size for t in tensors)  # noqa: E731
    meta = [p for _, p in boml_ho.hypergradients]
    out = shards * size(meta)
    back = meta_batch * (size(meta) + size(inner_grad.var_list) + 2 * 4)
    return out, back


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--meta-batch", type=int, default=8)
    parser.add_argument("--T", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    dataset = boml.meta_synthetic(num_classes=5, examples_train=1, examples_test=15, image_shape=(28, 28, 1), seed=0)
    graph, ex, boml_ho, inner_grad, init = build(dataset, args.meta_batch, args.T)
    with tf.Session(graph=graph) as sess:
        single = measure(sess, ex, boml_ho, init, dataset, args.meta_batch, args.steps)
    rows = [("single process", single, 0, 0)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    for n in args.workers:
        spec = {"ps": [f"127.0.0.1:{free_port()}"], "worker": [f"127.0.0.1:{free_port()}" for _ in range(n)]}
        tasks = [("ps", 0)] + [("worker", i) for i in range(n)]
        procs = [subprocess.Popen([sys.executable, "-m", "boml", "worker", "--cluster_spec", json.dumps(spec),
                                   "--job_name", job, "--task_index", str(i), "--lifetime", "600"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for job, i in tasks]
        try:
            cluster = distributed.Cluster(spec)
            graph, ex, boml_ho, inner_grad, init = build(dataset, args.meta_batch, args.T, cluster)
            with distributed.connect(cluster, graph=graph, connect_timeout=120) as sess:
                seconds = measure(sess, ex, boml_ho, init, dataset, args.meta_batch, args.steps)
            out, back = bytes_per_iteration(boml_ho, inner_grad, min(n, args.meta_batch), args.meta_batch)
            rows.append((f"{n} local worker(s)", seconds, out, back))
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
    print(f"MAML conv-4, 5-way 1-shot 15 queries, T={args.T}, meta-batch {args.meta_batch}, float32; "
          f"median of {args.steps} steps")
    print("| run | s/iter | tasks/s | vs single | MB out (params) | MB back (per-task results) |")
    print("|---|---|---|---|---|---|")
    for name, seconds, out, back in rows:
        print(f"| {name} | {seconds:.3f} | {args.meta_batch / seconds:.1f} | {seconds / single:.2f}x | "
              f"{out / 1e6:.3f} | {back / 1e6:.3f} |")
    overhead = rows[1][1] - single if len(rows) > 1 else 0.0
    print(f"model: t_N = {single:.3f}/N + {overhead:.3f} + bytes_N / bandwidth (overhead o from 1 local worker)")
    for n in (2, 4, 8):
        out = n * rows[1][2] if len(rows) > 1 else 0
        back = rows[1][3] if len(rows) > 1 else 0
        t = single / n + overhead + (out + back) / 1.25e9
        print(f"  N={n} machines on 10 Gbit/s: t_N = {t:.3f} s, speed-up {single / t:.2f}")


if __name__ == "__main__":
    main()
