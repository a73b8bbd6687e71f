"""Build time, first meta-iteration and the later ones of boml's MAML, from one checkout or another.

Builds ``maml_step.build_boml`` (conv-4 with 64 filters and batch norm, 5-way
1-shot, 15 queries) in a fresh process, times the build, the first
meta-iteration (grappler and kernel set-up included) and ``--steps`` more, and
prints one line. ``--checkout`` imports boml and the benchmark helpers from
another clone, so that two commits can be compared in alternating processes
on a shared machine:

    git worktree add ../before 38d557e
    for i in 1 2 3; do
        python benchmarks/build_and_steps.py --checkout ../before
        python benchmarks/build_and_steps.py
    done
"""
import argparse
import os
import statistics
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                        help="the boml clone to import (default: this one)")
    parser.add_argument("--algorithm", default="MAML")
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--T", type=int, default=5)
    parser.add_argument("--parallel-iterations", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8, help="meta-iterations after the first (median printed)")
    args = parser.parse_args()
    checkout = os.path.abspath(args.checkout)
    sys.path[:0] = [checkout, os.path.join(checkout, "benchmarks")]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import numpy as np
    import tensorflow.compat.v1 as tf

    import boml
    from maml_step import build_boml

    tf.disable_eager_execution()
    start = time.perf_counter()
    dataset = boml.meta_synthetic(num_classes=5, examples_train=1, examples_test=15, image_shape=(28, 28, 1),
                                  seed=0)
    boml_ho, experiment = build_boml(args.algorithm, dataset, args.meta_batch, args.T, args.parallel_iterations)
    build = time.perf_counter() - start
    feeds = experiment.feed_dicts(dataset.train.generate_batch(args.meta_batch, rand=np.random.RandomState(0)))
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        times = []
        for _ in range(args.steps + 1):
            start = time.perf_counter()
            boml_ho.run(*feeds, session=session)
            times.append(time.perf_counter() - start)
    print(f"{os.path.dirname(boml.__file__)}: {args.algorithm} build {build:.2f} s, first meta-iteration "
          f"{times[0]:.2f} s, then median {statistics.median(times[1:]):.3f} s "
          f"(range {min(times[1:]):.3f}-{max(times[1:]):.3f}, n={args.steps})")


if __name__ == "__main__":
    main()
