"""boml's MAML meta-iteration under XLA, grappler, thread and map settings, alternating in one process.

Builds the configuration of issue 12 (``maml_step.build_boml``: conv-4 with 64
filters and batch norm, 5-way 1-shot, 15 queries, T=5, meta-batch 32) and the
plain reference (``maml_reference.build_reference``, default session), then runs
one session per variant and times all of them in rotated order, so the load of a
shared machine hits every variant alike. Printed per variant: the median and
range, and the ratio of its median to the reference's and to boml's default
session. Variants:

* session variants (same graph, another ``ConfigProto``): ``xla`` (global_jit_level
  ON_1; ``TF_XLA_FLAGS=--tf_xla_cpu_global_jit`` is set before TensorFlow is imported
  so that the level also clusters CPU ops; sessions without the level are not
  affected), ``no-layout``, ``no-remapper``, ``no-arithmetic``, ``no-constfold``,
  ``no-grappler`` (the whole meta optimizer off), ``no-memory`` (the memory optimizer off: it rewrites
  large gradient ``AddN`` ops into ``AssignAdd`` accumulations), ``threads-I-J`` (intra / inter-op);
* graph variants (another build): ``jit-scope`` (the whole meta-iteration built inside
  ``tf.xla.experimental.jit_scope()``: explicit XLA clusters, the per-task body of the
  map included), ``pi-N`` (the task map with ``parallel_iterations=N``; the others use
  ``--parallel-iterations``), ``ref-bf16`` (the reference with its convolutions in
  bfloat16, float32 batch norm, loss and weights: a probe for a ``precision`` option).

    python benchmarks/session_settings.py --variants default xla jit-scope --repeats 5
    python benchmarks/session_settings.py --variants default no-layout no-remapper pi-8 --repeats 5
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_XLA_FLAGS"] = (os.environ.get("TF_XLA_FLAGS", "") + " --tf_xla_cpu_global_jit").strip()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402

import boml  # noqa: E402
import maml_reference  # noqa: E402
from maml_step import build_boml  # noqa: E402

OFF = rewriter_config_pb2.RewriterConfig.OFF
REWRITES = {"no-layout": "layout_optimizer", "no-remapper": "remapping", "no-arithmetic": "arithmetic_optimization",
            "no-constfold": "constant_folding"}


def session_config(variant):
    config = tf.ConfigProto()
    if variant == "xla":
        config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    elif variant in REWRITES:
        setattr(config.graph_options.rewrite_options, REWRITES[variant], OFF)
    elif variant == "no-grappler":
        config.graph_options.rewrite_options.disable_meta_optimizer = True
    elif variant == "no-memory":
        config.graph_options.rewrite_options.memory_optimization = rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
    elif variant.startswith("threads-"):
        intra, inter = variant.split("-")[1:]
        config.intra_op_parallelism_threads, config.inter_op_parallelism_threads = int(intra), int(inter)
    return config


def bf16_logits(images, params, batch_norm):
    """The reference's forward with bfloat16 convolutions (float32 weights cast, float32 outputs)."""
    hidden = images
    for layer in range(4):
        conv = tf.nn.conv2d(tf.cast(hidden, tf.bfloat16), tf.cast(params[f"conv{layer}"], tf.bfloat16),
                            [1, 2, 2, 1], "SAME")
        hidden = tf.cast(conv, tf.float32) + params[f"bias{layer}"]
        hidden, _, _ = tf.nn.fused_batch_norm(hidden, params[f"scale{layer}"], params[f"offset{layer}"],
                                              epsilon=1e-3, is_training=True)
        hidden = tf.nn.relu(hidden)
    flat = tf.reshape(hidden, [-1, int(np.prod(hidden.shape.as_list()[1:]))])
    return tf.matmul(flat, params["head"]) + params["head_bias"]


class Runner:
    def __init__(self, name, graph, step_builder, config):
        self.name, self.graph, self.times = name, graph, []
        with graph.as_default():
            init = tf.global_variables_initializer()
        self.session = tf.Session(graph=graph, config=config)
        self.session.run(init)
        self.step = step_builder(self.session)

    def timed(self):
        start = time.perf_counter()
        self.step()
        return time.perf_counter() - start


def build_graph(kind, args, parallel_iterations, jit=False):
    graph = tf.Graph()
    start = time.perf_counter()
    with graph.as_default():
        tf.set_random_seed(0)
        if kind == "boml":
            dataset = boml.meta_synthetic(num_classes=5, examples_train=1, examples_test=15,
                                          image_shape=(28, 28, 1), seed=0)
            with tf.xla.experimental.jit_scope() if jit else _null():
                boml_ho, ex = build_boml("MAML", dataset, args.meta_batch, args.T, parallel_iterations)
            feeds = ex.feed_dicts(dataset.train.generate_batch(args.meta_batch, rand=np.random.RandomState(0)))
            builder = lambda session: (lambda: boml_ho.run(*feeds, session=session))  # noqa: E731
        else:
            original = maml_reference.logits
            if kind == "ref-bf16":
                maml_reference.logits = bf16_logits
            try:
                train, feed = maml_reference.build_reference(args.meta_batch, args.T, "fused", False,
                                                             parallel_iterations)
            finally:
                maml_reference.logits = original
            builder = lambda session: (lambda: session.run(train, feed))  # noqa: E731
    print(f"built {kind}{' (jit_scope)' if jit else ''} parallel_iterations={parallel_iterations} in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    return graph, builder


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["default", "xla"])
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--T", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parallel-iterations", type=int, default=32)
    args = parser.parse_args()
    tf.disable_eager_execution()
    print(f"meta_batch={args.meta_batch} T={args.T} repeats={args.repeats} load average "
          f"{open('/proc/loadavg').read().strip()}", flush=True)
    graphs = {}

    def graph(key, *build):
        if key not in graphs:
            graphs[key] = build_graph(*build)
        return graphs[key]

    runners = [Runner("reference", *graph("reference", "reference", args, args.parallel_iterations),
                      tf.ConfigProto())]
    for variant in args.variants:
        if variant == "jit-scope":
            g = graph("jit", "boml", args, args.parallel_iterations, True)
        elif variant.startswith("pi-"):
            n = int(variant[3:])
            g = graph(f"pi{n}", "boml", args, n)
        elif variant == "ref-bf16":
            g = graph("ref-bf16", "ref-bf16", args, args.parallel_iterations)
        else:
            g = graph("boml", "boml", args, args.parallel_iterations)
        runners.append(Runner(variant, *g, session_config(variant)))
    for runner in runners:
        start = time.perf_counter()
        runner.timed()
        first = time.perf_counter() - start
        runner.timed()
        print(f"{runner.name}: first meta-iteration {first:.2f} s", flush=True)
    for repeat in range(args.repeats):
        shift = repeat % len(runners)
        for runner in runners[shift:] + runners[:shift]:
            runner.times.append(runner.timed())
        print(f"round {repeat + 1}: " + ", ".join(f"{r.name} {r.times[-1]:.2f}" for r in runners), flush=True)
    reference = statistics.median(runners[0].times)
    default = next((statistics.median(r.times) for r in runners if r.name == "default"), None)
    for runner in runners:
        median = statistics.median(runner.times)
        per_pair = [t / r for t, r in zip(runner.times, runners[0].times)]
        line = (f"{runner.name:14s} median {median:.3f} s (range {min(runner.times):.3f}-{max(runner.times):.3f}) "
                f"/reference {median / reference:.2f} (per-round {min(per_pair):.2f}-{max(per_pair):.2f})")
        if default:
            line += f" /boml-default {median / default:.2f}"
        print(line)
    print(f"load average at the end {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
