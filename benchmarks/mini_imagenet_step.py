"""MiniImageNet-size meta-iteration cost of MAML and FMAML with the V1 (Conv-4) and V2 (residual) networks.

5-way 1-shot, 15 queries per class, 84x84x3 synthetic pixels (``boml.meta_synthetic``
named "Mini", so ``meta_model`` resolves to ``MiniMetaInitV1`` / ``MiniMetaInitV2``),
meta-batch 4, T=5 inner SGD steps. Each configuration runs in its own process so
that its peak resident memory (``ru_maxrss``) is its own. Prints the graph build
time, the first meta-iteration, the steady-state seconds per meta-iteration
(median of ``--steps``) and the peak RSS.

    python benchmarks/mini_imagenet_step.py                         # V1, V2 x MAML, FMAML
    python benchmarks/mini_imagenet_step.py --model V2 --algorithm MAML --steps 3
    python benchmarks/mini_imagenet_step.py --model V1 --vectorize true   # vectorize_tasks=True (default: auto)
    python benchmarks/mini_imagenet_step.py --model V2 --algorithm MAML --recompute-every 1   # gradient checkpointing
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

ALGORITHMS = {"MAML": {}, "FMAML": {"first_order": True}}
MODELS = ("V1", "V2")


VECTORIZE = {"auto": "auto", "true": True, "false": False}

def run_one(args):
    """Builds and times one configuration; returns a dict of measurements."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    import boml
    from boml.workflow.validation import recompute_every

    tf.disable_eager_execution()
    dataset = boml.meta_synthetic(num_classes=args.ways, examples_train=args.shots, examples_test=args.queries,
                                  image_shape=(84, 84, 3), n_classes=(16, 5, 5),
                                  examples_per_class=args.shots + args.queries, name="Mini")
    start = time.perf_counter()
    tf.set_random_seed(0)
    ex = boml.BOMLExperiment(dataset, meta_batch_size=args.meta_batch)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model=args.model)
    ex.model = boml_ho.base_learner(ex.x, meta_learner)
    inner_objective = boml.utils.cross_entropy(ex.model.out, ex.y)
    outer_objective = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
    inner_grad = boml_ho.ll_problem(inner_objective, learning_rate=0.01, T=args.T, experiment=ex,
                                    var_list=ex.model.var_list, **ALGORITHMS[args.algorithm])
    boml_ho.ul_problem(outer_objective, 1e-3, inner_grad, parallel_iterations=args.parallel_iterations,
                       task_memory_budget=args.task_memory_budget, vectorize_tasks=VECTORIZE[args.vectorize],
                       recompute_every=recompute_every(args.recompute_every),
                       meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS))
    boml_ho.aggregate_all()
    build = time.perf_counter() - start
    task_map = boml_ho.outergradient.task_maps[0]
    n_params = int(sum(np.prod(v.shape.as_list()) for v in meta_learner.meta_parameters))
    ops = len(tf.get_default_graph().get_operations())

    rand = np.random.RandomState(0)
    config = tf.ConfigProto(intra_op_parallelism_threads=args.intra_threads,
                            inter_op_parallelism_threads=args.inter_threads)
    with tf.Session(config=config) as sess:
        sess.run(tf.global_variables_initializer())
        feeds = [ex.feed_dicts(dataset.train.generate_batch(args.meta_batch, rand=rand))
                 for _ in range(args.steps + 1)]
        start = time.perf_counter()
        first_losses = boml_ho.run(*feeds[0], session=sess)
        first = time.perf_counter() - start
        times = []
        for inner_fd, outer_fd in feeds[1:]:
            start = time.perf_counter()
            boml_ho.run(inner_fd, outer_fd, session=sess)
            times.append(time.perf_counter() - start)
    return {
        "model": args.model, "algorithm": args.algorithm,
        "network": f"{type(meta_learner).__name__}{tuple(meta_learner.dim_hidden)}",
        "meta_parameters": n_params, "ops": ops, "concurrent_tasks": task_map["concurrent_tasks"],
        "task_activation_gb": task_map["activation_bytes"] / 2 ** 30, "build_s": build, "first_s": first,
        "s_per_iter": statistics.median(times), "min_s": min(times), "max_s": max(times), "steps": len(times),
        "outer_loss": first_losses["outer_loss"],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, help="one network version (default: all, one process each)")
    parser.add_argument("--algorithm", choices=sorted(ALGORITHMS), help="one algorithm (default: both)")
    parser.add_argument("--meta-batch", type=int, default=4)
    parser.add_argument("--T", type=int, default=5)
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--steps", type=int, default=3, help="timed meta-iterations after the first")
    parser.add_argument("--parallel-iterations", type=int, default=16)
    parser.add_argument("--task-memory-budget", type=lambda text: None if text.lower() == "none" else float(text),
                        default=None, help="GB of estimated task activations computed at once (default none: "
                                           "no budget; 8 runs V2's tasks one at a time)")
    parser.add_argument("--vectorize", choices=sorted(VECTORIZE), default="auto",
                        help="vectorize_tasks (boml.vectorize; default: auto, the library's default)")
    parser.add_argument("--intra-threads", type=int, default=0, help="0: TensorFlow's default")
    parser.add_argument("--inter-threads", type=int, default=0, help="0: TensorFlow's default")
    parser.add_argument("--recompute-every", default=None,
                        help="recompute_every (gradient checkpointing): none (default), sqrt or a segment length")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.model and args.algorithm:
        print("RESULT " + json.dumps(run_one(args)), flush=True)
        return
    passthrough = [f"--meta-batch={args.meta_batch}", f"--T={args.T}", f"--ways={args.ways}",
                   f"--shots={args.shots}", f"--queries={args.queries}", f"--steps={args.steps}",
                   f"--parallel-iterations={args.parallel_iterations}",
                   f"--task-memory-budget={args.task_memory_budget}", f"--intra-threads={args.intra_threads}",
                   f"--inter-threads={args.inter_threads}", f"--vectorize={args.vectorize}",
                   f"--recompute-every={args.recompute_every}"]
    print(f"MiniImageNet-size synthetic episodes: {args.ways}-way {args.shots}-shot, {args.queries} queries, "
          f"84x84x3, meta-batch {args.meta_batch}, T={args.T}, median of {args.steps} timed iterations")
    print(f"{'model':5} {'algorithm':9} {'network':38} {'meta-params':>11} {'build s':>8} {'first s':>8} "
          f"{'s/iter':>8} {'peak RSS GB':>11} {'tasks at once':>13} {'GB/task (est.)':>14}")
    for model in ([args.model] if args.model else MODELS):
        for algorithm in ([args.algorithm] if args.algorithm else sorted(ALGORITHMS, reverse=True)):
            command = [sys.executable, os.path.abspath(__file__), f"--model={model}", f"--algorithm={algorithm}"]
            done = subprocess.run(command + passthrough, capture_output=True, text=True, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                print(f"{model:5} {algorithm:9} FAILED (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
                continue
            r = json.loads(lines[-1][len("RESULT "):])
            print(f"{model:5} {algorithm:9} {r['network']:38} {r['meta_parameters']:>11,d} {r['build_s']:>8.1f} "
                  f"{r['first_s']:>8.1f} {r['s_per_iter']:>8.2f} {r['peak_rss_gb']:>11.2f} "
                  f"{r['concurrent_tasks']:>13d} {r['task_activation_gb']:>14.2f}", flush=True)


if __name__ == "__main__":
    main()
