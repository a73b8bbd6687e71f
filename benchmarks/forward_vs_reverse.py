"""Forward- vs reverse-mode hypergradients: memory and time as the number of inner steps T grows.

Problem: learn the L2 regularization strength of a softmax regression on MNIST,

    lower:  f(w, rho) = CE_train(W, b) + 1/2 * sum_c rho_c * ||W[:, c]||^2     (T steps of gradient descent)
    upper:  F(rho)    = CE_valid(W_T, b_T)

with one scalar ``rho`` (D = 1) or one strength per class (D = 10). For every
(method, D, T) a fresh process builds the graph, computes the hypergradient
once (first run, includes TensorFlow's graph optimization), then times
``--repeats`` meta-iterations. Reported: the median seconds per meta-iteration,
the process CPU seconds per meta-iteration, and the peak resident memory above
the memory measured right before the first run (Linux ``VmHWM``, reset at that
point). Forward's carry holds the state and D tangents only, so its memory does
not depend on T; Reverse keeps the trajectory for the backward pass.

The hypergradients of both methods are compared (same T, same initial point).

TRHG (``--methods TRHG``) back-propagates the last ``--truncate-iter`` steps only:
its memory grows with K, not T.

    python benchmarks/forward_vs_reverse.py [--T 10 100 1000] [--dims 1 10] [--n-train 2000]
                                            [--methods Forward Reverse TRHG] [--truncate-iter 10]
"""
import argparse
import multiprocessing
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

DEFAULT_MNIST = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist"))


def load_data(folder, n_train, n_valid, seed):
    """A seeded subset of the MNIST training images: (x_train, y_train, x_valid, y_valid), one-hot float32."""
    import boml

    datasets = boml.mnist(folder, one_hot=True, validation_size=0)
    order = np.random.RandomState(seed).permutation(datasets.train.num_examples)
    train, valid = order[:n_train], order[n_train:n_train + n_valid]
    x, y = datasets.train.data, datasets.train.target
    return x[train].copy(), y[train].copy(), x[valid].copy(), y[valid].copy()


def measure(method, dim, T, args):
    """Builds and runs one configuration in the current process; returns its figures."""
    import tensorflow.compat.v1 as tf

    import boml
    from boml.memory import current_memory_mb, peak_memory_mb, reset_peak_memory

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    x_train, y_train, x_valid, y_valid = load_data(args.mnist, args.n_train, args.n_valid, args.seed)
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        feeds = {}

        def constant(name, array):
            placeholder = tf.placeholder(tf.float32, array.shape, name=f"{name}_value")
            feeds[placeholder] = array
            return tf.Variable(placeholder, trainable=False, name=name).read_value()

        xt, yt, xv, yv = (constant(n, a) for n, a in (("x_train", x_train), ("y_train", y_train),
                                                       ("x_valid", x_valid), ("y_valid", y_valid)))
        W = tf.get_variable("W", initializer=tf.zeros([784, 10]), trainable=False)
        b = tf.get_variable("b", initializer=tf.zeros([10]), trainable=False)
        shape = [] if dim == 1 else [dim]
        rho = boml.get_outerparameter("l2_strength", np.full(shape, args.rho0, np.float32))
        inner = (boml.utils.cross_entropy(tf.matmul(xt, W) + b, yt)
                 + 0.5 * tf.reduce_sum(rho * tf.reduce_sum(tf.square(W), axis=0)))
        outer = boml.utils.cross_entropy(tf.matmul(xv, W) + b, yv)
        truncate = args.truncate_iter if method == "TRHG" else -1
        boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse" if method == "TRHG" else method,
                                     truncate_iter=truncate)
        inner_grad = boml_ho.ll_problem(inner, args.lr, T, var_list=[W, b],
                                        inner_objective_optimizer=args.optimizer)
        boml_ho.ul_problem(outer, 1e-3, inner_grad, meta_param=[rho], mlr_decay=0.0)
        boml_ho.aggregate_all()
        hypergradient = boml_ho.hypergradients[0][0]
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer(), feeds)
        graph.finalize()
        del x_train, y_train, x_valid, y_valid
        feeds.clear()
        base = current_memory_mb()
        reset_peak_memory()
        start = time.perf_counter()
        value = sess.run(hypergradient)
        first = time.perf_counter() - start
        times, cpu = [], []
        for _ in range(args.repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            boml_ho.run(session=sess)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
        peak = peak_memory_mb()
        sess.close()
    return {"method": method, "dim": dim, "T": T, "first_s": first, "step_s": statistics.median(times),
            "cpu_s": statistics.median(cpu), "peak_mb": peak - base, "base_mb": base,
            "hypergradient": np.asarray(value, np.float64)}


def _child(queue, method, dim, T, args):
    try:
        queue.put(measure(method, dim, T, args))
    except Exception as error:  # reported by the parent
        queue.put({"method": method, "dim": dim, "T": T, "error": f"{type(error).__name__}: {error}"})


def run_isolated(method, dim, T, args):
    """Runs ``measure`` in a fresh process (clean memory figures)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, method, dim, T, args))
    process.start()
    result = queue.get()
    process.join()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=os.environ.get("BOML_MNIST", DEFAULT_MNIST), help="MNIST folder")
    parser.add_argument("--T", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 10], choices=[1, 10])
    parser.add_argument("--methods", nargs="+", default=["Forward", "Reverse"],
                        choices=["Forward", "Reverse", "TRHG"])
    parser.add_argument("--truncate-iter", type=int, default=10, help="K of TRHG (Reverse through the last K steps)")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-valid", type=int, default=2000)
    parser.add_argument("--optimizer", default="SGD", choices=["SGD", "Momentum", "Adam"])
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--rho0", type=float, default=1e-3, help="initial regularization strength")
    parser.add_argument("--repeats", type=int, default=3, help="timed meta-iterations after the first run")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: TensorFlow's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(f"L2 strength of softmax regression on MNIST ({args.n_train} train / {args.n_valid} validation), "
          f"inner {args.optimizer} lr={args.lr}; {os.cpu_count()} CPUs")
    header = f"{'method':8s} {'D':>3s} {'T':>5s} {'first run s':>11s} {'s/iter':>8s} {'cpu s/iter':>10s} " \
             f"{'peak MB':>8s}"
    print(header)
    print("-" * len(header))
    results = {}
    for dim in args.dims:
        for T in args.T:
            for method in args.methods:
                r = run_isolated(method, dim, T, args)
                results[(method, dim, T)] = r
                if "error" in r:
                    print(f"{method:8s} {dim:3d} {T:5d}  failed: {r['error']}")
                    continue
                print(f"{method:8s} {dim:3d} {T:5d} {r['first_s']:11.2f} {r['step_s']:8.3f} {r['cpu_s']:10.3f} "
                      f"{r['peak_mb']:8.1f}", flush=True)
            fw, rv = results.get(("Forward", dim, T)), results.get(("Reverse", dim, T))
            if fw and rv and "error" not in fw and "error" not in rv:
                rel = np.max(np.abs(fw["hypergradient"] - rv["hypergradient"])) / max(
                    np.max(np.abs(rv["hypergradient"])), 1e-30)
                print(f"{'':8s} {dim:3d} {T:5d}  Forward vs Reverse hypergradient: max relative difference {rel:.1e}"
                      f" (float32)")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
