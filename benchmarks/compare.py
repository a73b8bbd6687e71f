"""boml's MAML / FMAML meta-iteration against the plain graph-mode reference, back to back in one process.

Both graphs (``maml_step.build_boml`` and ``maml_reference.build_reference``, the
configuration of issue 12: Omniglot-shaped conv-4 with 64 filters and batch
norm, 5-way 1-shot, 15 queries, T=5, meta-batch 32, synthetic 28x28 episodes)
are built in their own ``tf.Graph`` and session in this process; their
meta-iterations are then timed alternately (boml, reference, boml, ...) so
that the load of a shared machine hits both alike. Printed: the medians and
ranges, the ratio of the medians boml / reference and the range of the
per-pair ratios. Build time, first meta-iteration and peak RSS are measured in
one subprocess per system (so they do not share memory). ``--sampling``
measures the share of a meta-iteration spent sampling and feeding episodes in
the workflow's path (``boml.workflow.model.build_model`` + the trainer's
``generate_batch`` / ``feed_dicts``), on real Omniglot when found.

``--floor`` times a third program in the same alternation: the reference with
one task that holds every task's images (``meta_batch`` x 5 support and
``meta_batch`` x 75 query images, one set of weights; ``--floor-groups N``: N
such tasks at once, each with ``meta_batch / N`` tasks' images). It runs the
same floating-point operations as the meta-batch, in plain kernels on the
largest batches there are, with no per-task weights to group and no per-task
kernel launches. Its ratio to the reference is what batching the tasks can
reach on this machine at best: boml's tasks have weights of their own, so
their kernels cannot be plainer or fewer than these.

    python benchmarks/compare.py                       # MAML and FMAML, 7 alternating pairs each
    python benchmarks/compare.py --quick               # meta-batch 4, T 2, 3 pairs (a smoke run)
    python benchmarks/compare.py --algorithms MAML --repeats 9 --no-subprocess --sampling
    python benchmarks/compare.py --vectorize true      # boml with vectorize_tasks=True (default: auto)
    python benchmarks/compare.py --floor               # also the one-task floor of any batching
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import boml  # noqa: E402
from boml.memory import peak_memory_mb  # noqa: E402
from maml_reference import build_floor, build_reference  # noqa: E402
from maml_step import VECTORIZE, build_boml  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


class System:
    """One built meta-iteration (its graph, session and a callable running one step)."""

    def __init__(self, kind, algorithm, args):
        self.kind, self.graph = kind, tf.Graph()
        start = time.perf_counter()
        with self.graph.as_default():
            tf.set_random_seed(0)
            if kind == "boml":
                dataset = boml.meta_synthetic(num_classes=5, examples_train=1, examples_test=15,
                                              image_shape=(28, 28, 1), seed=0)
                boml_ho, ex = build_boml(algorithm, dataset, args.meta_batch, args.T, args.parallel_iterations,
                                         ll_options=_ll_options(args),
                                         ul_options={"vectorize_tasks": VECTORIZE[args.vectorize]})
                self.task_map = boml_ho.outergradient.task_maps[0]
                rand = np.random.RandomState(0)
                feeds = ex.feed_dicts(dataset.train.generate_batch(args.meta_batch, rand=rand))
                self.step = lambda: boml_ho.run(*feeds, session=self.session)
            elif kind == "reference":
                train, feed = build_reference(args.meta_batch, args.T, "fused", algorithm == "FMAML",
                                              args.parallel_iterations)
                self.step = lambda: self.session.run(train, feed)
            else:  # "floor": the tasks' images pooled into floor_groups tasks, the same FLOPs in plain kernels
                train, feed = build_floor(args.meta_batch, args.T, algorithm == "FMAML", args.floor_groups)
                self.step = lambda: self.session.run(train, feed)
            init = tf.global_variables_initializer()
            graph_def = self.graph.as_graph_def()  # the map_fn and while_loop bodies are library functions
            self.ops = len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)
        self.build = time.perf_counter() - start
        self.session = tf.Session(graph=self.graph)
        self.session.run(init)

    def timed(self):
        start = time.perf_counter()
        self.step()
        return time.perf_counter() - start


def _ll_options(args):
    return {} if args.while_loop_threshold is None else {"while_loop_threshold": args.while_loop_threshold}


def _summary(values):
    return f"median {statistics.median(values):.3f} s (range {min(values):.3f}-{max(values):.3f}, n={len(values)})"


def child(args):
    """Build + first meta-iteration + peak RSS of one system (run in its own process)."""
    tf.disable_eager_execution()
    system = System(args.child, args.algorithms[0], args)
    first = system.timed()
    second = system.timed()
    # VmHWM: ru_maxrss survives exec, so a child forked from the grown parent would report the parent's peak.
    peak = peak_memory_mb() / 1024
    print(json.dumps({"build": system.build, "first": first, "second": second, "peak_rss_gb": peak,
                      "ops": system.ops}))


def alternate(algorithm, args):
    kinds = ["boml", "reference"] + (["floor"] if args.floor else [])
    systems = [System(kind, algorithm, args) for kind in kinds]
    task_map = systems[0].task_map
    print(f"{algorithm}: boml's task map: " + (f"vectorized, {task_map['concurrent_tasks']} tasks at once"
                                               if task_map["vectorized"] else
                                               f"tf.map_fn ({task_map.get('vectorization_error', 'not vectorized')})")
          + f"; {task_map['activation_bytes'] / 2 ** 30:.3f} GB of estimated activations per task")
    for system in systems:  # first (slow) meta-iterations
        system.timed()
        system.timed()
    times = {kind: [] for kind in kinds}
    for repeat in range(args.repeats):
        order = systems if repeat % 2 == 0 else systems[::-1]
        for system in order:
            times[system.kind].append(system.timed())
    for system in systems:
        system.session.close()
    ratios = [b / r for b, r in zip(times["boml"], times["reference"])]
    ratio = statistics.median(times["boml"]) / statistics.median(times["reference"])
    print(f"{algorithm}: boml {_summary(times['boml'])}")
    print(f"{algorithm}: reference {_summary(times['reference'])}")
    print(f"{algorithm}: ratio boml/reference of the medians {ratio:.2f} "
          f"(per-pair ratios {min(ratios):.2f}-{max(ratios):.2f}, median {statistics.median(ratios):.2f})")
    result = dict(times, ratio=ratio)
    if args.floor:
        floor = statistics.median(times["floor"]) / statistics.median(times["reference"])
        print(f"{algorithm}: floor ({args.floor_groups} task(s) holding {args.meta_batch // args.floor_groups} "
              f"tasks' images each) {_summary(times['floor'])}")
        print(f"{algorithm}: ratio floor/reference {floor:.2f}: no batching of the tasks gets below it; "
              f"boml/floor {ratio / floor:.2f}")
        result["floor_ratio"] = floor
    return result


def subprocess_figures(algorithm, args):
    results = {}
    for kind in ("boml", "reference"):
        command = [sys.executable, os.path.abspath(__file__), "--child", kind, "--algorithms", algorithm,
                   "--meta-batch", str(args.meta_batch), "--T", str(args.T),
                   "--parallel-iterations", str(args.parallel_iterations)]
        if args.while_loop_threshold is not None:
            command += ["--while-loop-threshold", str(args.while_loop_threshold)]
        command += ["--vectorize", args.vectorize]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[kind] = json.loads(out.strip().splitlines()[-1])
        r = results[kind]
        print(f"{algorithm}: {kind} build {r['build']:.2f} s ({r['ops']} ops incl. function bodies), "
              f"first meta-iteration {r['first']:.2f} s, build + first {r['build'] + r['first']:.2f} s, "
              f"peak RSS {r['peak_rss_gb']:.2f} GB")
    return results


def sampling_share(args):
    """Seconds of sampling + feed-dict building against the whole meta-iteration, in the workflow's path."""
    from boml.workflow.config import Config
    from boml.workflow.data import load_dataset
    from boml.workflow.model import build_model
    from boml.workflow.prefetch import Prefetcher

    real = os.path.isdir(os.path.join(args.data, "omniglot_resized"))
    config = Config(algorithm="maml", dataset="omniglot" if real else "synthetic",
                    data_folder=os.path.join(args.data, "omniglot_resized") if real else None,
                    meta_batch_size=args.meta_batch, T=args.T, num_filters=64, lr=0.4,
                    parallel_iterations=args.parallel_iterations)
    start = time.perf_counter()
    dataset = load_dataset(config.validate(), log=lambda line: None)
    load = time.perf_counter() - start
    graph = tf.Graph()
    with graph.as_default():
        model = build_model(config, dataset)
        init = tf.global_variables_initializer()
    def sample(rand):
        return model.experiment.feed_dicts(dataset.train.generate_batch(config.meta_batch_size, rand=rand))

    with tf.Session(graph=graph) as sess:
        sess.run(init)
        model.boml_ho.run(*sample(np.random.RandomState(1)), session=sess)  # one-time costs
        shares = {}
        for prefetch in (0, 2):  # the trainer's two paths: sampled in the loop, or ahead in a thread
            rand, waits, runs = np.random.RandomState(0), [], []
            with Prefetcher(sample, rand, prefetch or 1) as ahead:
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    feeds = ahead.next()[0] if prefetch else sample(rand)
                    middle = time.perf_counter()
                    model.boml_ho.run(*feeds, session=sess)
                    waits.append(middle - start)
                    runs.append(time.perf_counter() - middle)
            shares[prefetch] = [w / (w + r) for w, r in zip(waits, runs)]
            what = "waiting for the prefetched batch" if prefetch else "generate_batch + feed_dicts"
            print(f"sampling ({'real Omniglot' if real else 'synthetic'}, prefetch={prefetch}): {what} "
                  f"{_summary(waits)}; boml_ho.run {_summary(runs)}; share of the meta-iteration "
                  f"{100 * statistics.median(shares[prefetch]):.2f}% (range {100 * min(shares[prefetch]):.2f}-"
                  f"{100 * max(shares[prefetch]):.2f}%)")
    print(f"dataset load {load:.1f} s")
    return shares


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", default=["MAML", "FMAML"], choices=["MAML", "FMAML"])
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--T", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7, help="alternating pairs of timed meta-iterations")
    parser.add_argument("--parallel-iterations", type=int, default=32)
    parser.add_argument("--while-loop-threshold", type=int, default=None,
                        help="Simple's while_loop_threshold (default: the library's)")
    parser.add_argument("--vectorize", choices=sorted(VECTORIZE), default="auto",
                        help="boml's vectorize_tasks (boml.vectorize; default: auto, the library's default)")
    parser.add_argument("--quick", action="store_true", help="meta-batch 4, T 2, 3 pairs")
    parser.add_argument("--no-subprocess", action="store_true", help="skip build / first-step / RSS subprocesses")
    parser.add_argument("--sampling", action="store_true", help="also measure the episode-sampling share")
    parser.add_argument("--floor", action="store_true",
                        help="also time one task holding every task's images: the floor of any batching")
    parser.add_argument("--floor-groups", type=int, default=1,
                        help="--floor with this many tasks (run at once), each holding meta_batch / N tasks' images")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--child", choices=["boml", "reference"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.meta_batch, args.T, args.repeats = 4, 2, 3
    if args.meta_batch % args.floor_groups:
        parser.error(f"--floor-groups must divide --meta-batch ({args.meta_batch}), got {args.floor_groups}")
    tf.disable_eager_execution()
    if args.child:
        return child(args)
    print(f"meta_batch={args.meta_batch} T={args.T} repeats={args.repeats} vectorize_tasks={args.vectorize} "
          f"parallel_iterations={args.parallel_iterations} cpus={os.cpu_count()} "
          f"load average {os.getloadavg()[0]:.2f} (a shared machine: compare ratios, not absolute times)")
    for algorithm in args.algorithms:
        if not args.no_subprocess:
            subprocess_figures(algorithm, args)
        alternate(algorithm, args)
    if args.sampling:
        sampling_share(args)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
