"""Second-order MAML with a long inner loop: build time, step time and peak RSS against T.

Each T runs in its own subprocess (so the peak RSS is its own). The network is
boml's MetaInit V1 conv net with ``--filters`` filters per block (default 4,
two blocks) on synthetic ``--size`` x ``--size`` 5-way 1-shot episodes with 15
queries, meta-batch ``--meta-batch``; ``--omniglot`` uses the conv-4 with 64
filters on 28x28 instead. Simple's inner loop is a ``tf.while_loop`` from
``while_loop_threshold`` on (default: the library's), unrolled below it.

    python benchmarks/long_inner_loop.py --T 100 300 1000
    python benchmarks/long_inner_loop.py --T 100 --threshold 1000   # the unrolled graph, for comparison
    python benchmarks/long_inner_loop.py --T 100 --omniglot --meta-batch 4
    python benchmarks/long_inner_loop.py --T 100 --omniglot --recompute none sqrt 25   # gradient checkpointing

``--recompute`` lists values of ``recompute_every`` (``none``: keep every step for the reverse pass; an
integer K or ``sqrt``: keep every K-th state and recompute the segments), each run in its own subprocess.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def child(args):
    import numpy as np
    import tensorflow.compat.v1 as tf

    import boml
    from boml.workflow.validation import recompute_every

    tf.disable_eager_execution()
    size = 28 if args.omniglot else args.size
    dataset = boml.meta_synthetic(num_classes=5, examples_train=1, examples_test=15, image_shape=(size, size, 1),
                                  seed=0)
    start = time.perf_counter()
    ex = boml.BOMLExperiment(dataset, meta_batch_size=args.meta_batch)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    net = {} if args.omniglot else {"dim_hidden": (args.filters,) * args.blocks}
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", **net)
    ex.model = boml_ho.base_learner(ex.x, meta_learner)
    outer = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
    options = {} if args.threshold is None else {"while_loop_threshold": args.threshold}
    inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), learning_rate=0.1, T=args.T[0],
                                    experiment=ex, var_list=ex.model.var_list, first_order=args.first_order,
                                    **options)
    boml_ho.ul_problem(outer, 1e-3, inner_grad, meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS),
                       recompute_every=recompute_every(args.recompute[0]))
    boml_ho.aggregate_all()
    build = time.perf_counter() - start
    graph_def = tf.get_default_graph().as_graph_def()
    ops = len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)
    parameters = sum(int(np.prod(v.shape.as_list())) for v in ex.model.var_list)
    rand = np.random.RandomState(0)
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        times = []
        for _ in range(1 + args.steps):
            feeds = ex.feed_dicts(dataset.train.generate_batch(args.meta_batch, rand=rand))
            start = time.perf_counter()
            losses = boml_ho.run(*feeds, session=session)
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(json.dumps({"T": args.T[0], "recompute": args.recompute[0], "build": build, "ops": ops, "first": times[0],
                      "steady": statistics.median(times[1:]) if args.steps else None, "peak_rss_gb": peak,
                      "parameters": parameters, "finite": bool(np.isfinite(losses["outer_loss"]).all())}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--threshold", type=int, default=None, help="while_loop_threshold (default: the library's)")
    parser.add_argument("--meta-batch", type=int, default=4)
    parser.add_argument("--filters", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed meta-iterations after the first")
    parser.add_argument("--first-order", action="store_true")
    parser.add_argument("--recompute", nargs="+", default=["none"],
                        help="recompute_every values to run: none, sqrt or a segment length")
    parser.add_argument("--omniglot", action="store_true", help="conv-4 with 64 filters on 28x28")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    print(f"cpus={os.cpu_count()} load average {os.getloadavg()[0]:.2f} (a shared machine)")
    for T, recompute in ((T, r) for T in args.T for r in args.recompute):
        command = [sys.executable, os.path.abspath(__file__), "--child", "--T", str(T), "--recompute", recompute,
                   "--meta-batch", str(args.meta_batch), "--filters", str(args.filters), "--blocks",
                   str(args.blocks), "--size", str(args.size), "--steps", str(args.steps)]
        command += (["--threshold", str(args.threshold)] if args.threshold is not None else [])
        command += (["--first-order"] if args.first_order else []) + (["--omniglot"] if args.omniglot else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        steady = "-" if r["steady"] is None else f"{r['steady']:.2f} s"
        print(f"T={T}, recompute_every={recompute}: {r['parameters']} task parameters, build {r['build']:.2f} s "
              f"({r['ops']} ops incl. function "
              f"bodies), first meta-iteration {r['first']:.2f} s, steady {steady}, peak RSS {r['peak_rss_gb']:.2f} GB, "
              f"finite losses {r['finite']}")


if __name__ == "__main__":
    main()
