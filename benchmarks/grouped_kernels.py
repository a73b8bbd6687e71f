"""Grouped convolutions (per-task filters, tasks side by side) against plain ones of the same FLOPs.

For the two layer shapes that hold most of the Omniglot conv-4's FLOPs (a 3x3, stride-2,
64 -> 64 convolution on 14x14 and on 7x7 inputs), with the support (5 images) and the query
(75 images) batch of a task, times one forward and both derivatives of the convolution for all
``--tasks`` tasks in four forms: groups of 8 tasks (boml's default for this MAML) run one after
the other, all tasks in one grouped kernel, plain kernels on 8 tasks' images, and one plain kernel
on every task's images (the form ``compare.py --floor`` runs). Inputs are fed, so that grappler
cannot fold the kernels away; the four forms are timed alternately in one session.

    python benchmarks/grouped_kernels.py [--tasks 32] [--repeats 7]
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

FILTERS = 64
SHAPES = [("support, 14x14 input", 5, 14), ("query, 14x14 input", 75, 14),
          ("support, 7x7 input", 5, 7), ("query, 7x7 input", 75, 7)]


def convolution_and_derivatives(images, filters):
    """One scalar that needs the forward convolution and both of its derivatives."""
    outputs = tf.nn.conv2d(images, filters, [1, 2, 2, 1], "SAME")
    d_images, d_filters = tf.gradients(outputs, [images, filters], tf.ones_like(outputs))
    return tf.reduce_sum(outputs) + tf.reduce_sum(d_images) + tf.reduce_sum(d_filters)


def forms(tasks):
    """(label, images per task multiplier, channel groups, kernels run one after the other)."""
    return [("groups of 8", 1, 8, tasks // 8), (f"{tasks} groups", 1, tasks, 1),
            ("plain, 8 tasks' images", 8, 1, tasks // 8), (f"plain, {tasks} tasks' images", tasks, 1, 1)]


def time_shape(images, side, tasks, repeats, rand):
    graph = tf.Graph()
    fetches, feeds = {}, {}
    with graph.as_default():
        for label, batch_factor, groups, kernels in forms(tasks):
            x = tf.placeholder(tf.float32, [images * batch_factor, side, side, FILTERS * groups])
            w = tf.placeholder(tf.float32, [3, 3, FILTERS, FILTERS * groups])
            # distinct scalings keep grappler from merging the repeated kernels into one
            fetches[label] = tf.add_n([convolution_and_derivatives(x * (1.0 + k), w) for k in range(kernels)])
            feeds[label] = {x: rand.rand(*x.shape.as_list()), w: rand.rand(*w.shape.as_list())}
    times = {label: [] for label in fetches}
    with tf.Session(graph=graph) as session:
        for label in fetches:  # warm-up
            session.run(fetches[label], feeds[label])
        for _ in range(repeats):
            for label in fetches:
                start = time.perf_counter()
                session.run(fetches[label], feeds[label])
                times[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32, help="a multiple of 8")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.tasks % 8:
        parser.error(f"--tasks must be a multiple of 8, got {args.tasks}")
    tf.disable_eager_execution()
    rand = np.random.RandomState(0)
    print(f"forward + both derivatives of a 3x3 stride-2 {FILTERS}->{FILTERS} convolution for {args.tasks} tasks, "
          f"medians of {args.repeats}; load average {os.getloadavg()[0]:.2f}")
    for name, images, side in SHAPES:
        medians = time_shape(images, side, args.tasks, args.repeats, rand)
        plain = medians[f"plain, {args.tasks} tasks' images"]
        print(f"{name} ({images} images per task): " + "; ".join(
            f"{label} {1000 * seconds:.1f} ms ({seconds / plain:.2f}x)" for label, seconds in medians.items()))


if __name__ == "__main__":
    main()
