"""Data hyper-cleaning on MNIST (Franceschi et al., ICML 2017, section 5.1) with five hypergradient methods.

5000 training examples, half of them with a wrong label, 5000 clean validation
examples and 10000 test examples; softmax regression; one weight in [0, 1] per
training example, learned by minimizing the validation loss after T inner
gradient steps (see ``boml/hyperclean.py`` for the exact problem).

Prints, for RHG (reverse mode), TRHG (truncated), Implicit (HOAG), BDA and
Darts, plus the baseline (no cleaning) and the oracle (corrupted examples
removed): the test accuracy of the final-round model (trained on training +
validation with the learned weights), the F1 score of "weight < 1e-3" as a
detector of the corrupted examples, the wall and CPU time of the
hyper-optimization and the peak resident memory. Each method runs in a fresh
process so the memory figures do not mix.

    python examples/hyper_cleaning.py                          # everything, default settings
    python examples/hyper_cleaning.py --methods RHG --hyper-iterations 30
    python examples/hyper_cleaning.py --mnist /path/to/mnist --seed 1 --T 100
    python examples/hyper_cleaning.py --download                # fetch MNIST first if it is missing

MNIST is read from --mnist, else from ``mnist/`` in the datasets folder (``$DATASETS_FOLDER``, else
``~/.boml/datasets``); ``python -m boml data fetch mnist`` puts it there.
"""
import argparse
import multiprocessing
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ALL_RUNS = ["baseline", "oracle", "RHG", "TRHG", "Implicit", "BDA", "Darts"]

#: Figures of the paper (Franceschi et al., 2017, table 2): test accuracy and F1.
PUBLISHED = {"baseline": (87.74, None), "oracle": (91.64, None), "RHG": (90.09, 0.9034)}


def _run(queue, name, config, data_args, verbose):
    import tensorflow.compat.v1 as tf

    from boml import hyperclean

    tf.disable_eager_execution()
    try:
        data = hyperclean.prepare_data(**data_args)
        if name in hyperclean.REFERENCES:
            result = hyperclean.run_reference(name, data, config)
        else:
            result = hyperclean.run_method(name, data, config, log_every=10 if verbose else 0,
                                           log=lambda s: print(s, flush=True))
        result.pop("weights", None)
        queue.put(result)
    except Exception as error:  # reported in the table
        queue.put({"method": name, "error": f"{type(error).__name__}: {error}"})


def run_isolated(name, config, data_args, verbose):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run, args=(queue, name, config, data_args, verbose))
    process.start()
    result = queue.get()
    process.join()
    return result


def format_row(r):
    if "error" in r:
        return f"{r['method']:9s} failed: {r['error']}"
    f1 = "-" if r.get("f1") != r.get("f1") else f"{r['f1']:.3f}"  # NaN for the baseline
    precision = "-" if r.get("precision") != r.get("precision") else f"{r['precision']:.3f}"
    recall = "-" if r.get("recall") != r.get("recall") else f"{r['recall']:.3f}"
    inner = f"{100 * r['inner_test_accuracy']:.2f}" if "inner_test_accuracy" in r else "-"
    cpu = f"{r['cpu_seconds']:.0f}" if "cpu_seconds" in r else "-"
    published = PUBLISHED.get(r["method"])
    paper = "-" if not published else f"{published[0]:.2f}" + (f" / {published[1]:.4f}" if published[1] else "")
    return (f"{r['method']:9s} {100 * r['test_accuracy']:9.2f} {inner:>9s} {f1:>6s} {precision:>6s} {recall:>6s} "
            f"{r['seconds']:8.0f} {cpu:>7s} {r['peak_mb']:8.0f} {r['peak_mb'] - r['base_mb']:7.0f}   {paper}")


def main(argv=None):
    from boml.errors import BOMLError
    from boml.hyperclean import CleaningConfig

    defaults = CleaningConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--mnist", default=None,
                        help="folder of the four MNIST IDX files (default: mnist/ in $DATASETS_FOLDER, else in "
                             "~/.boml/datasets)")
    parser.add_argument("--download", action="store_true", help="download MNIST (sha256-verified) if it is missing")
    parser.add_argument("--methods", nargs="+", default=ALL_RUNS, choices=ALL_RUNS)
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of the label corruption")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-valid", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--T", type=int, default=defaults.T, help="inner steps")
    parser.add_argument("--inner-lr", type=float, default=defaults.inner_lr)
    parser.add_argument("--inner-optimizer", default=defaults.inner_optimizer, choices=["SGD", "Momentum", "Adam"])
    parser.add_argument("--hyper-iterations", type=int, default=defaults.hyper_iterations)
    parser.add_argument("--meta-lr", type=float, default=defaults.meta_lr, help="outer Adam step size")
    parser.add_argument("--truncate-iter", type=int, default=defaults.truncate_iter, help="K of TRHG")
    parser.add_argument("--bda-alpha", type=float, default=defaults.bda_alpha)
    parser.add_argument("--final-T", type=int, default=defaults.final_T, help="steps of the final round")
    parser.add_argument("--dtype", default=defaults.dtype, choices=["float32", "float64"])
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    config = defaults.replace(T=args.T, inner_lr=args.inner_lr, inner_optimizer=args.inner_optimizer,
                              hyper_iterations=args.hyper_iterations, meta_lr=args.meta_lr,
                              truncate_iter=args.truncate_iter, bda_alpha=args.bda_alpha, final_T=args.final_T,
                              dtype=args.dtype)
    from boml.load_data.datasets.downloads import locate_dataset

    try:  # find (or fetch) the data once, before the methods start in their own processes
        folder = locate_dataset("mnist", args.mnist, download=args.download)
    except BOMLError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    data_args = {"folder": folder, "n_train": args.n_train, "n_valid": args.n_valid, "n_test": args.n_test,
                 "seed": args.seed, "dtype": args.dtype}
    print(f"Data hyper-cleaning on MNIST: {args.n_train} train (50% corrupted), {args.n_valid} validation, "
          f"{args.n_test} test, seed {args.seed}")
    print(f"T={config.T} {config.inner_optimizer} lr={config.inner_lr}, {config.hyper_iterations} hyper-iterations "
          f"(Adam {config.meta_lr}), TRHG K={config.truncate_iter}, BDA alpha={config.bda_alpha}, final round "
          f"{config.final_T} steps, {config.dtype}, {os.cpu_count()} CPUs", flush=True)
    rows = []
    start = time.perf_counter()
    for name in args.methods:
        result = run_isolated(name, config, data_args, not args.quiet)
        rows.append(result)
        if not args.quiet:
            print(format_row(result), flush=True)
    header = (f"{'method':9s} {'test acc':>9s} {'inner acc':>9s} {'F1':>6s} {'prec':>6s} {'recall':>6s} "
              f"{'wall s':>8s} {'cpu s':>7s} {'peak MB':>8s} {'+MB':>7s}   paper acc / F1")
    print()
    print(header)
    print("-" * len(header))
    for result in rows:
        print(format_row(result))
    print(f"\ntest acc: final round (train + validation, learned weights), %; inner acc: model after the T "
          f"inner steps, %;\nF1/prec/recall: weight < {config.threshold} as detector of corrupted labels;\n"
          f"wall/cpu s: graph building + hyper-optimization (baseline, oracle: their training);\n"
          f"peak MB: peak resident memory of the method's process (data loaded, TensorFlow runtime included), "
          f"+MB: above the memory at the start of the run.")
    print(f"Total {time.perf_counter() - start:.0f}s.")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
