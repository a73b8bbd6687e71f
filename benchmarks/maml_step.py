"""MAML meta-iteration cost: Omniglot conv-4 (64 filters), 5-way 1-shot, 15 queries, T=5, meta-batch 32.

Prints graph build time, first-step time, the steady-state seconds per
meta-iteration (median), the number of ``session.run`` calls per meta-iteration
and the peak resident memory. Uses the real Omniglot when ../shared/data is
present (``--data``), synthetic 28x28 episodes otherwise.

    python benchmarks/maml_step.py [--algorithm MAML|FMAML|RHG] [--meta-batch 32] [--steps 8] [--vectorize auto]
"""
import argparse
import os
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import boml  # noqa: E402

ALGORITHMS = {
    "MAML": ("MetaInit", "Simple", "Simple", {}),
    "FMAML": ("MetaInit", "Simple", "Simple", {"first_order": True}),
    "RHG": ("MetaFeat", "Trad", "Reverse", {}),
    "TRHG": ("MetaFeat", "Trad", "Reverse", {}),
    "HOAG": ("MetaFeat", "Trad", "Implicit", {}),
    "DARTS": ("MetaFeat", "Trad", "Darts", {}),
    "BDA": ("MetaFeat", "Aggr", "Reverse", {"alpha_init": 0.5}),
}


#: ``--vectorize`` values and the ``vectorize_tasks`` each stands for (shared by the benchmarks built on this one).
VECTORIZE = {"auto": "auto", "true": True, "false": False}


class CountingSession(tf.Session):
    """A session that counts its ``run`` calls."""

    calls = 0

    def run(self, *args, **kwargs):
        CountingSession.calls += 1
        return super().run(*args, **kwargs)


def load_dataset(data_root, ways, shots, queries):
    if data_root and os.path.isdir(os.path.join(data_root, "omniglot_resized")):
        return boml.meta_omniglot(os.path.join(data_root, "omniglot_resized"), std_num_classes=ways,
                                  examples_train=shots, examples_test=queries), "Omniglot (real)"
    return boml.meta_synthetic(num_classes=ways, examples_train=shots, examples_test=queries,
                               image_shape=(28, 28, 1)), "synthetic 28x28"


def build_boml(algorithm, dataset, meta_batch=32, T=5, parallel_iterations=32, batch_norm=True, ll_options=None,
               ul_options=None):
    """Builds the boml meta-iteration of ``algorithm`` in the default graph.

    Returns:
        ``(boml_ho, experiment)``: ``boml_ho.run(*experiment.feed_dicts(episodes))`` is one meta-iteration.
    """
    method, inner, outer, ll_flags = ALGORITHMS[algorithm]
    ll_flags = {**ll_flags, **(ll_options or {})}
    ex = boml.BOMLExperiment(dataset, meta_batch_size=meta_batch)
    boml_ho = boml.BOMLOptimizer(method, inner, outer, truncate_iter=1 if algorithm == "TRHG" else -1)
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", **({} if batch_norm else {"norm": None}))
    if method == "MetaInit":
        ex.model = boml_ho.base_learner(ex.x, meta_learner)
        outer_objective = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
    else:
        ex.model = boml_ho.base_learner(meta_learner.re_forward(ex.x).out, meta_learner)
        outer_objective = boml.utils.cross_entropy(
            ex.model.re_forward(meta_learner.re_forward(ex.x_).out).out, ex.y_)
    inner_objective = boml.utils.cross_entropy(ex.model.out, ex.y)
    inner_grad = boml_ho.ll_problem(inner_objective, learning_rate=0.4, T=T, experiment=ex,
                                    var_list=ex.model.var_list, outer_objective=outer_objective, **ll_flags)
    boml_ho.ul_problem(outer_objective, 1e-3, inner_grad, parallel_iterations=parallel_iterations,
                       meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS), **(ul_options or {}))
    boml_ho.aggregate_all()
    return boml_ho, ex


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="MAML", choices=sorted(ALGORITHMS))
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--T", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8, help="timed meta-iterations after the first")
    parser.add_argument("--parallel-iterations", type=int, default=32)
    parser.add_argument("--xla", action="store_true", help="XLA auto-clustering (global_jit_level ON_1)")
    parser.add_argument("--intra-threads", type=int, default=0, help="0: TensorFlow's default")
    parser.add_argument("--inter-threads", type=int, default=0, help="0: TensorFlow's default")
    parser.add_argument("--vectorize", choices=sorted(VECTORIZE), default="auto",
                        help="ul_problem's vectorize_tasks (default auto, the library's default)")
    parser.add_argument("--no-batch-norm", action="store_true", help="conv-4 without batch norm (norm=None)")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    args = parser.parse_args()
    dataset, source = load_dataset(args.data, 5, 1, 15)
    tf.disable_eager_execution()

    start = time.perf_counter()
    boml_ho, ex = build_boml(args.algorithm, dataset, args.meta_batch, args.T, args.parallel_iterations,
                             not args.no_batch_norm, ul_options={"vectorize_tasks": VECTORIZE[args.vectorize]})
    build = time.perf_counter() - start
    ops = len(tf.get_default_graph().get_operations())

    rand = np.random.RandomState(0)
    config = tf.ConfigProto(intra_op_parallelism_threads=args.intra_threads,
                            inter_op_parallelism_threads=args.inter_threads)
    if args.xla:
        config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    with CountingSession(config=config) as sess:
        sess.run(tf.global_variables_initializer())
        feeds = [ex.feed_dicts(dataset.train.generate_batch(args.meta_batch, rand=rand))
                 for _ in range(args.steps + 1)]
        CountingSession.calls = 0
        start = time.perf_counter()
        boml_ho.run(*feeds[0], session=sess)
        first = time.perf_counter() - start
        calls_first = CountingSession.calls
        times = []
        CountingSession.calls = 0
        for inner_fd, outer_fd in feeds[1:]:
            start = time.perf_counter()
            boml_ho.run(inner_fd, outer_fd, session=sess)
            times.append(time.perf_counter() - start)
        calls = CountingSession.calls / max(len(times), 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"algorithm={args.algorithm} data={source} meta_batch={args.meta_batch} T={args.T} "
          f"parallel_iterations={args.parallel_iterations} batch_norm={not args.no_batch_norm} "
          f"vectorize_tasks={args.vectorize} (vectorized: {boml_ho.outergradient.task_maps[0]['vectorized']})")
    print(f"graph build: {build:.2f} s ({ops} ops)")
    print(f"first meta-iteration: {first:.2f} s (session.run calls: {calls_first}, one reads the global step)")
    print(f"steady state: {statistics.median(times):.3f} s/iter median of {len(times)} "
          f"(min {min(times):.3f}, max {max(times):.3f})")
    print(f"session.run calls per meta-iteration: {calls:.0f}")
    print(f"peak RSS: {peak:.2f} GB")


if __name__ == "__main__":
    main()
