"""Probe for issue 12: all tasks of a meta-batch in one set of kernels, against the per-task ``tf.map_fn`` reference.

The meta-batch's per-task networks are stacked along the channel axis: task
``b``'s 64 feature maps are channels ``64 b .. 64 b + 63`` of one tensor
``[examples, H, W, tasks * 64]``. Then

* a convolution with per-task filters is one grouped convolution (filters
  ``[3, 3, C_in, tasks * 64]``, groups = tasks);
* batch norm with per-task statistics is one fused batch norm over the
  ``tasks * 64`` channels (a channel's statistics are its task's);
* the linear head is one batched matmul over the tasks.

A task's loss depends only on its own slice of the stacked weights, so the
gradient of the summed task losses with respect to the stacked weights is every
task's inner gradient at once, and the meta-gradient of the mean query loss with
respect to the shared initialization (tiled into the stack) is the mean of the
per-task meta-gradients: the same numbers as ``maml_reference.py``, with about
1/tasks as many kernel launches. ``--check`` verifies that in float64 (where the
CPU has no grouped-convolution gradient kernel, so the check writes the grouped
convolution as one convolution per group; batch norm written out in both).

Not part of boml yet: the probe measures whether the formulation is worth
building into the engine (the task map) as a graph transformation.

    python benchmarks/grouped_tasks.py [--first-order] [--repeats 7] [--check]
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import maml_reference as reference  # noqa: E402
from maml_reference import FILTERS, QUERIES, SHOTS, SIZE, WAYS  # noqa: E402


def grouped_conv2d(x, filters, groups, split):
    """``tf.nn.conv2d`` with ``groups`` groups; ``split`` writes it as one convolution per group."""
    if not split:
        return tf.nn.conv2d(x, filters, [1, 2, 2, 1], "SAME")
    inputs = tf.split(x, groups, axis=-1)
    kernels = tf.split(filters, groups, axis=-1)
    return tf.concat([tf.nn.conv2d(a, k, [1, 2, 2, 1], "SAME") for a, k in zip(inputs, kernels)], -1)


def stacked_logits(images, params, tasks, batch_norm, split):
    """Logits ``[tasks, examples, ways]`` of ``images`` ``[tasks, examples, H, W, 1]`` under stacked weights."""
    hidden = tf.transpose(images[..., 0], [1, 2, 3, 0])  # the tasks become the input channels
    for layer in range(4):
        hidden = grouped_conv2d(hidden, params[f"conv{layer}"], tasks, split) + params[f"bias{layer}"]
        hidden = tf.nn.relu(reference.normalized(hidden, params, layer, batch_norm))
    examples, height, width = hidden.shape.as_list()[:3]
    hidden = tf.reshape(hidden, [examples, height * width, tasks, FILTERS])
    hidden = tf.reshape(tf.transpose(hidden, [2, 0, 1, 3]), [tasks, examples, height * width * FILTERS])
    return tf.matmul(hidden, params["head"]) + params["head_bias"]


def stacked(name, value, tasks):
    """``value`` (one network's parameter) repeated for every task in the stacked layout."""
    if name.startswith("conv"):
        return tf.tile(value, [1, 1, 1, tasks])
    if name == "head":
        return tf.tile(value[None], [tasks, 1, 1])
    if name == "head_bias":
        return tf.tile(value[None, None], [tasks, 1, 1])
    return tf.tile(value, [tasks])


def placeholders(meta_batch, dtype):
    return (tf.placeholder(dtype, [meta_batch, WAYS * SHOTS, SIZE, SIZE, 1]),
            tf.placeholder(dtype, [meta_batch, WAYS * SHOTS, WAYS]),
            tf.placeholder(dtype, [meta_batch, WAYS * QUERIES, SIZE, SIZE, 1]),
            tf.placeholder(dtype, [meta_batch, WAYS * QUERIES, WAYS]))


def stacked_meta_gradients(inputs, params, T, batch_norm="fused", first_order=False, split=False):
    """Mean per-task MAML meta-gradients (inner learning rate 0.4), all tasks in one set of kernels."""
    x, y, x_query, y_query = inputs
    tasks = x.shape.as_list()[0]
    names = sorted(params)

    def summed_loss(images, labels, weights):
        outputs = stacked_logits(images, weights, tasks, batch_norm, split)
        per_example = tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=outputs)
        return tf.reduce_sum(tf.reduce_mean(per_example, 1))

    fast = {n: stacked(n, params[n], tasks) for n in names}
    for _ in range(T):
        grads = tf.gradients(summed_loss(x, y, fast), [fast[n] for n in names])
        if first_order:
            grads = [tf.stop_gradient(g) for g in grads]
        fast = {n: fast[n] - 0.4 * g for n, g in zip(names, grads)}
    return tf.gradients(summed_loss(x_query, y_query, fast) / tasks, [params[n] for n in names])


def mapped_meta_gradients(inputs, params, T, batch_norm, first_order=False):
    """The same mean meta-gradients, one task at a time (``maml_reference.py``'s formulation)."""
    names = sorted(params)
    dtype = inputs[0].dtype

    def task(elements):
        xs, ys, xq, yq = elements
        fast = dict(params)
        for _ in range(T):
            grads = tf.gradients(reference.cross_entropy(reference.logits(xs, fast, batch_norm), ys),
                                 [fast[n] for n in names])
            if first_order:
                grads = [tf.stop_gradient(g) for g in grads]
            fast = {n: fast[n] - 0.4 * g for n, g in zip(names, grads)}
        query_loss = reference.cross_entropy(reference.logits(xq, fast, batch_norm), yq)
        return tf.gradients(query_loss, [params[n] for n in names])

    outputs = tf.map_fn(task, tuple(inputs), fn_output_signature=[dtype] * len(names))
    return [tf.reduce_mean(g, 0) for g in outputs]


def random_feed(inputs, seed=0):
    rand = np.random.RandomState(seed)
    x, y, x_query, y_query = inputs
    tasks = x.shape.as_list()[0]
    return {x: rand.rand(tasks, WAYS * SHOTS, SIZE, SIZE, 1),
            y: np.eye(WAYS)[rand.randint(WAYS, size=(tasks, WAYS * SHOTS))],
            x_query: rand.rand(tasks, WAYS * QUERIES, SIZE, SIZE, 1),
            y_query: np.eye(WAYS)[rand.randint(WAYS, size=(tasks, WAYS * QUERIES))]}


def check(first_order, meta_batch=4, T=3):
    """Largest relative difference of the two formulations' meta-gradients in float64."""
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        inputs = placeholders(meta_batch, tf.float64)
        with tf.variable_scope("net", dtype=tf.float64):
            params = reference.make_parameters("written")
        names = sorted(params)
        grouped = stacked_meta_gradients(inputs, params, T, "written", first_order, split=True)
        mapped = mapped_meta_gradients(inputs, params, T, "written", first_order)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            a, b = session.run([grouped, mapped], random_feed(inputs))
    scale = max(np.abs(v).max() for v in b)
    return max(np.abs(u - v).max() for u, v in zip(a, b)) / scale, names


def build_stacked_step(meta_batch, T, first_order):
    inputs = placeholders(meta_batch, tf.float32)
    params = reference.make_parameters("fused")
    names = sorted(params)
    meta_grads = stacked_meta_gradients(inputs, params, T, "fused", first_order)
    train = tf.train.AdamOptimizer(1e-3).apply_gradients(zip(meta_grads, [params[n] for n in names]))
    return train, random_feed(inputs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--T", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7, help="alternating pairs of timed meta-iterations")
    parser.add_argument("--first-order", action="store_true")
    parser.add_argument("--check", action="store_true", help="float64 equality of the two formulations first")
    args = parser.parse_args()
    tf.disable_eager_execution()
    algorithm = "FMAML" if args.first_order else "MAML"
    if args.check:
        difference, _ = check(args.first_order)
        print(f"{algorithm} float64 meta-gradients, stacked vs mapped (meta-batch 4, T=3): "
              f"largest difference {difference:.1e} of the largest entry")
    builders = {"map_fn reference": lambda: reference.build_reference(args.meta_batch, args.T, "fused",
                                                                      args.first_order),
                "stacked tasks": lambda: build_stacked_step(args.meta_batch, args.T, args.first_order)}
    sessions = {}
    for kind, build in builders.items():
        graph = tf.Graph()
        with graph.as_default():
            start = time.perf_counter()
            train, feed = build()
            built = time.perf_counter() - start
            session = tf.Session(graph=graph)
            session.run(tf.global_variables_initializer())
            start = time.perf_counter()
            session.run(train, feed)
            first = time.perf_counter() - start
            session.run(train, feed)
            sessions[kind] = (session, train, feed)
        print(f"{algorithm} {kind}: build {built:.2f} s, first meta-iteration {first:.2f} s")
    times = {kind: [] for kind in sessions}
    for round_ in range(args.repeats):
        order = list(sessions) if round_ % 2 == 0 else list(sessions)[::-1]
        for kind in order:
            session, train, feed = sessions[kind]
            start = time.perf_counter()
            session.run(train, feed)
            times[kind].append(time.perf_counter() - start)
    for kind, values in times.items():
        print(f"{algorithm} {kind}: median {statistics.median(values):.3f} s/iter "
              f"(range {min(values):.3f}-{max(values):.3f}, n={len(values)})")
    ratios = [a / b for a, b in zip(times["stacked tasks"], times["map_fn reference"])]
    print(f"{algorithm} ratio stacked/reference of the medians "
          f"{statistics.median(times['stacked tasks']) / statistics.median(times['map_fn reference']):.2f} "
          f"(per-pair {min(ratios):.2f}-{max(ratios):.2f}); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
