"""A plain graph-mode MAML written without boml, to put benchmarks/maml_step.py's figures in context.

The same computation as ``maml_step.py``: conv-4 (64 filters, 3x3, stride 2,
batch norm, ReLU) and a linear head, 5-way 1-shot, 15 queries per class, T=5
second-order inner steps, meta-batch 32 mapped with ``tf.map_fn`` (per-task
meta-gradients inside the map), Adam outer step. Random inputs: the kernels'
cost does not depend on the pixel values. Run both scripts back to back on the
same machine; its load changes the absolute figures by tens of percent.

    python benchmarks/maml_reference.py [--batch-norm fused|written|none] [--dynamic-shapes]
"""
import argparse
import os
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

WAYS, SHOTS, QUERIES, FILTERS, SIZE = 5, 1, 15, 64, 28


def make_parameters(batch_norm):
    params = {}
    channels = 1
    for layer in range(4):
        params[f"conv{layer}"] = tf.get_variable(f"conv{layer}", [3, 3, channels, FILTERS],
                                                 initializer=tf.glorot_uniform_initializer())
        params[f"bias{layer}"] = tf.get_variable(f"bias{layer}", [FILTERS], initializer=tf.zeros_initializer())
        if batch_norm != "none":
            params[f"scale{layer}"] = tf.get_variable(f"scale{layer}", [FILTERS], initializer=tf.ones_initializer())
            params[f"offset{layer}"] = tf.get_variable(f"offset{layer}", [FILTERS],
                                                       initializer=tf.zeros_initializer())
        channels = FILTERS
    side = SIZE
    for _ in range(4):
        side = (side + 1) // 2
    params["head"] = tf.get_variable("head", [side * side * FILTERS, WAYS],
                                     initializer=tf.glorot_uniform_initializer())
    params["head_bias"] = tf.get_variable("head_bias", [WAYS], initializer=tf.zeros_initializer())
    return params


def normalized(hidden, params, layer, batch_norm):
    """Batch norm of layer ``layer`` (batch statistics over every axis but the channels), or ``hidden`` as is."""
    if batch_norm == "fused":
        hidden, _, _ = tf.nn.fused_batch_norm(hidden, params[f"scale{layer}"], params[f"offset{layer}"],
                                              epsilon=1e-3, is_training=True)
    elif batch_norm == "written":
        mean = tf.reduce_mean(hidden, [0, 1, 2])
        variance = tf.reduce_mean(tf.square(hidden - mean), [0, 1, 2])
        hidden = tf.nn.batch_normalization(hidden, mean, variance, params[f"offset{layer}"],
                                           params[f"scale{layer}"], 1e-3)
    return hidden


def logits(images, params, batch_norm):
    hidden = images
    for layer in range(4):
        hidden = tf.nn.conv2d(hidden, params[f"conv{layer}"], [1, 2, 2, 1], "SAME") + params[f"bias{layer}"]
        hidden = tf.nn.relu(normalized(hidden, params, layer, batch_norm))
    flat = tf.reshape(hidden, [-1, int(np.prod(hidden.shape.as_list()[1:]))])
    return tf.matmul(flat, params["head"]) + params["head_bias"]


def cross_entropy(outputs, labels):
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=outputs))


def build_reference(meta_batch=32, T=5, batch_norm="fused", first_order=False, parallel_iterations=32,
                    dynamic_shapes=False, seed=0, shots=SHOTS, queries=QUERIES):
    """Builds the reference meta-iteration in the default graph.

    ``shots`` and ``queries`` are per class (``build_floor`` pools several tasks' images into one task).

    Returns:
        ``(train_op, feed_dict)``: one ``session.run(train_op, feed_dict)`` is one meta-iteration.
    """
    batch = None if dynamic_shapes else meta_batch
    support = None if dynamic_shapes else WAYS * shots
    query = None if dynamic_shapes else WAYS * queries
    x = tf.placeholder(tf.float32, [batch, support, SIZE, SIZE, 1])
    y = tf.placeholder(tf.float32, [batch, support, WAYS])
    x_ = tf.placeholder(tf.float32, [batch, query, SIZE, SIZE, 1])
    y_ = tf.placeholder(tf.float32, [batch, query, WAYS])
    params = make_parameters(batch_norm)
    names = sorted(params)

    def task(elements):
        xs, ys, xq, yq = elements
        fast = dict(params)
        for _ in range(T):
            loss = cross_entropy(logits(xs, fast, batch_norm), ys)
            grads = tf.gradients(loss, [fast[n] for n in names])
            if first_order:
                grads = [tf.stop_gradient(g) for g in grads]
            fast = {n: fast[n] - 0.4 * g for n, g in zip(names, grads)}
        query_loss = cross_entropy(logits(xq, fast, batch_norm), yq)
        return [query_loss] + tf.gradients(query_loss, [params[n] for n in names])

    outputs = tf.map_fn(task, (x, y, x_, y_), fn_output_signature=[tf.float32] * (1 + len(names)),
                        parallel_iterations=parallel_iterations)
    meta_grads = [tf.reduce_mean(g, 0) for g in outputs[1:]]
    train = tf.train.AdamOptimizer(1e-3).apply_gradients(zip(meta_grads, [params[n] for n in names]))
    rand = np.random.RandomState(seed)
    feed = {x: rand.rand(meta_batch, WAYS * shots, SIZE, SIZE, 1),
            y: np.eye(WAYS)[rand.randint(WAYS, size=(meta_batch, WAYS * shots))],
            x_: rand.rand(meta_batch, WAYS * queries, SIZE, SIZE, 1),
            y_: np.eye(WAYS)[rand.randint(WAYS, size=(meta_batch, WAYS * queries))]}
    return train, feed


def build_floor(meta_batch=32, T=5, first_order=False, groups=1):
    """The reference's FLOPs for ``meta_batch`` tasks with their images pooled into ``groups`` tasks.

    Each of the ``groups`` tasks (run at once) holds ``meta_batch / groups`` tasks' support and query
    images under one set of weights: the same floating-point operations as the meta-batch in plain
    kernels on the largest batches, the fastest any batching of the tasks can run them
    (``compare.py --floor``, ``profile_step.py --system floor``).

    Returns:
        ``(train_op, feed_dict)`` as ``build_reference``.
    """
    pooled = meta_batch // groups
    return build_reference(groups, T, "fused", first_order, groups, shots=pooled * SHOTS, queries=pooled * QUERIES)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--T", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8, help="timed meta-iterations after the first")
    parser.add_argument("--parallel-iterations", type=int, default=32)
    parser.add_argument("--batch-norm", default="fused", choices=["fused", "written", "none"])
    parser.add_argument("--first-order", action="store_true", help="first-order MAML (inner gradients constant)")
    parser.add_argument("--dynamic-shapes", action="store_true",
                        help="placeholders with unknown task and example counts (as a reusable experiment has)")
    args = parser.parse_args()
    tf.disable_eager_execution()

    start = time.perf_counter()
    train, feed = build_reference(args.meta_batch, args.T, args.batch_norm, args.first_order,
                                  args.parallel_iterations, args.dynamic_shapes)
    build = time.perf_counter() - start
    ops = len(tf.get_default_graph().get_operations())

    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        start = time.perf_counter()
        session.run(train, feed)
        first = time.perf_counter() - start
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            session.run(train, feed)
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"reference {'FMAML' if args.first_order else 'MAML'} (no boml) batch_norm={args.batch_norm} "
          f"shapes={'dynamic' if args.dynamic_shapes else 'static'} meta_batch={args.meta_batch} T={args.T}")
    print(f"graph build: {build:.2f} s ({ops} ops)")
    print(f"first meta-iteration: {first:.2f} s")
    print(f"steady state: {statistics.median(times):.3f} s/iter median of {len(times)} "
          f"(min {min(times):.3f}, max {max(times):.3f})")
    print(f"peak RSS: {peak:.2f} GB")


if __name__ == "__main__":
    main()
