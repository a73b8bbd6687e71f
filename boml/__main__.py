"""Command line: ``python -m boml train ...``, ``python -m boml evaluate ...``, ``python -m boml presets``.

Examples::

    python -m boml train --preset maml-omniglot-5w1s --data_folder ../shared/data/omniglot_resized
    python -m boml train --method MetaFeat --inner_method Trad --outer_method Reverse --T 5 --lr 0.5 \\
        --meta_batch_size 8 --meta_train_iterations 3000 --dataset omniglot --learn_lr false
    python -m boml evaluate --run_dir logs/<run> --test_episodes 600 --iterations_to_test 1000 2000

Flags keep the original scripts' names (``--meta_lr``, ``--examples_train`` ...,
most with their short forms such as ``-mbs``). Booleans accept ``--flag``,
``--no-flag`` and ``--flag true|false``. Prefixes are never expanded, so a
misspelt flag is an error instead of silently setting another option.
"""
import argparse
import json
import logging
import os
import sys

from boml.errors import BOMLError

TRUE = ("true", "t", "yes", "y", "1", "on")
FALSE = ("false", "f", "no", "n", "0", "off")


def parse_bool(text):
    """``"true"``/``"false"`` (and yes/no, 1/0, on/off) to a bool, for argparse."""
    value = str(text).strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, yes/no, 1/0); received {text!r}")


def _number(kind, minimum=None, strict=False, allow_none=False):
    def convert(text):
        if allow_none and str(text).lower() in ("none", "null"):
            return None
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}; "
                                             f"received {text!r}") from None
        if kind is float and value != value:
            raise argparse.ArgumentTypeError(f"expected a number; received {text!r}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum}; received {text!r}")
        return value

    convert.__name__ = kind.__name__
    return convert


# (long name, short forms, type, help). Defaults are None: only the flags given override the preset.
OPTIONS = [
    ("algorithm", ["-alg"], str, "maml, fomaml, metasgd, mtnet, warpgrad, rhg, trhg, hoag, darts, bda"),
    ("method", ["-md"], str, "MetaInit or MetaFeat (overrides the algorithm's)"),
    ("inner_method", ["-i_d"], str, "Simple, Trad or Aggr"),
    ("outer_method", ["-o_d"], str, "Simple, Reverse, Implicit or Darts"),
    ("dataset", ["-d"], str, "omniglot, miniimagenet or synthetic"),
    ("data_folder", ["-df"], str, "dataset folder or archive (default: the loader's search)"),
    ("split", [], str, "Omniglot split: vinyals (standard), original (BOML) or lake"),
    ("classes", ["-nc"], _number(int, 2), "N-way"),
    ("examples_train", ["-etr"], _number(int, 1), "K-shot (support examples per class)"),
    ("examples_test", ["-etes"], _number(int, 1), "query examples per class"),
    ("train_examples_test", [], _number(int, 1), "query examples per class in meta-training (default: examples_test)"),
    ("meta_batch_size", ["-mbs"], _number(int, 1), "tasks per meta-update"),
    ("meta_train_iterations", ["-mti"], _number(int, 0), "meta-iterations"),
    ("max_minutes", [], _number(float, 0, strict=True, allow_none=True),
     "stop meta-training after this many minutes (none: no limit)"),
    ("T", ["-T"], _number(int, 1), "inner steps in meta-training"),
    ("T_test", ["-Tt"], _number(int, 1), "inner steps at evaluation (default: T)"),
    ("lr", ["-lr"], _number(float, 0, strict=True), "inner step size"),
    ("meta_lr", ["-mlr"], _number(float, 0, strict=True), "outer step size"),
    ("meta_lr_decay_rate", ["-mlrdr", "--meta-lr-decay-rate"], _number(float, 0), "inverse-time decay of meta_lr"),
    ("lr_granularity", [], str, "learned step sizes: scalar, tensor or element"),
    ("truncate_iter", ["-tr_ir"], _number(int, -1), "TRHG: back-propagate through the last K steps (-1: all)"),
    ("alpha", ["-alpha"], _number(float, 0), "BDA aggregation weight (initial value)"),
    ("bda_s", ["-bs"], float, "BDA weight s of the upper gradient"),
    ("bda_t", ["-bt"], float, "BDA weight t of the lower gradient"),
    ("inner_opt", ["-io"], str, "inner optimizer: SGD, Momentum or Adam"),
    ("outer_opt", ["-oo"], str, "outer optimizer: SGD, Momentum or Adam"),
    ("momentum", [], _number(float, 0), "momentum of the Momentum optimizers"),
    ("clip_value", ["-cv"], _number(float, 0), "clip hypergradients to [-v, v] (0: no clipping)"),
    ("num_filters", ["-nf"], _number(int, 1), "filters of the conv blocks (default: the network's)"),
    ("image_size", [], _number(int, 1), "side of the synthetic images"),
    ("seed", ["-s"], int, "seed of the initialization and of the training episodes"),
    ("test_seed", [], int, "seed of the fixed test episodes"),
    ("logdir", ["-ld"], str, "runs are saved in logdir/name"),
    ("name", [], str, "run name (default: derived from the settings)"),
    ("print_interval", ["-pi"], _number(int, 0), "print progress every N meta-iterations"),
    ("save_interval", ["-si"], _number(int, 0), "checkpoint every N meta-iterations"),
    ("val_interval", ["-vi"], _number(int, 0), "validation every N meta-iterations (0: never)"),
    ("val_episodes", [], _number(int, 1), "episodes of each validation"),
    ("test_episodes", ["-te"], _number(int, 1), "episodes of the final test (standard: 600)"),
    ("eval_batch_size", [], _number(int, 1), "episodes adapted per session.run at evaluation"),
    ("keep_checkpoints", [], _number(int, 1), "checkpoints kept on disk"),
    ("threads", [], _number(int, 0), "intra-op threads (0: TensorFlow's default)"),
    ("parallel_iterations", [], _number(int, 1), "tasks of a meta-batch computed concurrently"),
    ("notes", ["--Notes"], str, "free text stored with the results"),
]
BOOLEANS = [
    ("learn_lr", ["-lrl"], "learn the inner step sizes (Meta-SGD)"),
    ("first_order", ["-fo"], "first-order MAML"),
    ("use_t", ["-u_T"], "MT-net T-layers"),
    ("use_warp", ["-u_W"], "WarpGrad warp layers"),
    ("learn_alpha", ["-lralpha"], "BDA: learn the aggregation weight"),
    ("learn_alpha_itr", [], "BDA: learn one aggregation weight per step"),
    ("learn_st", ["-lrst"], "BDA: learn s and t"),
    ("xavier", ["-xi"], "MetaFeat head initialised with Glorot instead of zeros"),
    ("resume", ["-res"], "resume from the run's latest checkpoint (default: true)"),
]


def _add_bool(group, name, shorts, help_text):
    group.add_argument(f"--{name}", *shorts, dest=name, nargs="?", const=True, default=None, type=parse_bool,
                       metavar="true|false", help=f"{help_text}; --no-{name} for false")
    group.add_argument(f"--no-{name}", f"--no_{name}", dest=name, action="store_false", default=None,
                       help=argparse.SUPPRESS)


def build_parser():
    """The ``argparse`` parser of ``python -m boml`` (``allow_abbrev=False``)."""
    parser = argparse.ArgumentParser(prog="boml", description="Bilevel meta-learning with boml.",
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,presets,data}")
    sub.required = True

    train = sub.add_parser("train", allow_abbrev=False, help="meta-train and evaluate a configuration",
                           description="Meta-trains a configuration (a preset and/or flags), then evaluates it "
                                       "on the test episodes. Results go to <logdir>/<name>/results.json.")
    train.add_argument("--preset", "-p", default=None, help="standard configuration (see `boml presets`)")
    train.add_argument("--config", default=None, help="JSON file of configuration values (flags override it)")
    group = train.add_argument_group("configuration (defaults: the preset's, else boml.workflow.Config's)")
    for name, shorts, kind, help_text in OPTIONS:
        group.add_argument(f"--{name}", *shorts, dest=name, type=kind, default=None, help=help_text)
    for name, shorts, help_text in BOOLEANS:
        _add_bool(group, name, shorts, help_text)
    train.add_argument("--quiet", "-q", action="store_true", help="only print the final results")

    evaluate = sub.add_parser("evaluate", allow_abbrev=False, help="evaluate the checkpoints of a run",
                              description="Restores checkpoints of a `boml train` run and reports the mean "
                                          "accuracy with its 95% confidence interval on fixed episodes.")
    evaluate.add_argument("--run_dir", "--expdir", "-exd", required=True, help="directory of a train run")
    evaluate.add_argument("--iterations_to_test", "-itt", type=_number(int, 0), nargs="+", default=None,
                          help="checkpoint iterations to evaluate (default: the latest)")
    evaluate.add_argument("--test_episodes", "-te", type=_number(int, 1), default=None)
    evaluate.add_argument("--T_test", "-Tt", type=_number(int, 1), default=None)
    evaluate.add_argument("--split", choices=("test", "validation"), default="test")
    evaluate.add_argument("--data_folder", "-df", default=None)
    evaluate.add_argument("--eval_batch_size", type=_number(int, 1), default=None)
    evaluate.add_argument("--quiet", "-q", action="store_true")

    sub.add_parser("presets", allow_abbrev=False, help="list the standard configurations")
    from boml.data_command import add_data_parser

    add_data_parser(sub)
    return parser


def config_from_args(args):
    """The ``Config`` described by parsed ``train`` arguments (preset, then JSON file, then flags).

    Raises:
        UnknownNameError: unknown preset.
        InvalidArgumentError: bad values (from ``Config.validate``).
        DataNotFoundError: the JSON file does not exist.
    """
    from boml import workflow
    from boml.errors import DataNotFoundError, InvalidArgumentError

    config = workflow.preset(args.preset) if args.preset else workflow.Config()
    if args.config:
        if not os.path.exists(args.config):
            raise DataNotFoundError(f"Configuration file {args.config} does not exist.")
        with open(args.config) as handle:
            try:
                values = json.load(handle)
            except ValueError as e:
                raise InvalidArgumentError(f"{args.config} is not valid JSON ({e}).") from e
        config = config.replace(**values)
    names = [o[0] for o in OPTIONS] + [b[0] for b in BOOLEANS]
    changes = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if any(k in changes for k in ("method", "inner_method", "outer_method")) and "algorithm" not in changes:
        changes["algorithm"] = None  # an explicit triple replaces the preset's algorithm
        for key in ("method", "inner_method", "outer_method"):
            if key not in changes:
                changes[key] = getattr(config.resolved(), key)
    config = config.replace(**changes)
    return config


def _configure_logging(quiet):
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")


def main(argv=None):
    """Entry point of ``python -m boml`` and of the ``boml`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "data":
        from boml.data_command import run_data_command

        return run_data_command(args)
    if args.command == "presets":
        from boml import workflow

        for name, values in workflow.PRESETS.items():
            print(f"{name}: " + " ".join(f"--{k} {v}" for k, v in values.items()))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow.compat.v1 as tf

    from boml import workflow

    tf.disable_eager_execution()
    _configure_logging(args.quiet)
    try:
        if args.command == "train":
            config = config_from_args(args).validate()
            print(f"run directory: {config.run_dir}", flush=True)
            results = workflow.train(config)
            test = results["test"]
            print(json.dumps({"run_dir": results["run_dir"], "iterations": results["iterations"],
                              "train_seconds": round(results["train_seconds"], 1),
                              "test_accuracy": round(test["accuracy"], 5), "ci95": round(test["ci95"], 5),
                              "test_episodes": test["episodes"]}), flush=True)
        else:
            out = workflow.evaluate(args.run_dir, iterations=args.iterations_to_test,
                                    test_episodes=args.test_episodes, T_test=args.T_test, split=args.split,
                                    **{k: v for k, v in (("data_folder", args.data_folder),
                                                         ("eval_batch_size", args.eval_batch_size)) if v is not None})
            for row in out["results"]:
                print(json.dumps({"iteration": row["iteration"], "accuracy": round(row["accuracy"], 5),
                                  "ci95": round(row["ci95"], 5), "episodes": row["episodes"]}), flush=True)
    except BOMLError as error:
        parser.exit(2, f"boml: error: {type(error).__name__}: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
