"""Command line: ``python -m boml train|evaluate|plot|presets|data ...``.

Examples::

    python -m boml train --preset maml-omniglot-5w1s --download
    python -m boml train --method MetaFeat --inner_method Trad --outer_method Reverse --T 5 --lr 0.5 \\
        --meta_batch_size 8 --meta_train_iterations 3000 --dataset omniglot --learn_lr false
    python -m boml evaluate --run_dir logs/<run> --test_episodes 600 --iterations_to_test 1000 2000
    python -m boml plot logs/<run_a> logs/<run_b> --out curves.png

The ``train`` flags are generated from the fields of :class:`boml.workflow.config.Config` (name,
short forms, help, default) and keep the original scripts' names (``--meta_lr``,
``--examples_train`` ..., most with their short forms such as ``-mbs``). Booleans accept
``--flag``, ``--no-flag`` and ``--flag true|false``. Prefixes are never expanded, so a misspelt
flag is an error instead of silently setting another option. TensorFlow is imported only by the
commands that need it, so ``--help`` and ``presets`` answer at once.
"""
import argparse
import json
import logging
import os
import sys

from boml.errors import BOMLError
from boml.workflow.config import GROUPS, Config, field_default, field_type, fields

TRUE = ("true", "t", "yes", "y", "1", "on")
FALSE = ("false", "f", "no", "n", "0", "off")
#: The configuration fields that ``evaluate`` accepts as flags.
EVALUATE_FIELDS = ("test_episodes", "T_test", "eval_batch_size", "data_folder", "download", "threads")


def parse_bool(text):
    """``"true"``/``"false"`` (and yes/no, 1/0, on/off) to a bool, for argparse."""
    value = str(text).strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, yes/no, 1/0); received {text!r}")


def parse_optional_bool(text):
    """``parse_bool``, and ``"auto"`` / ``"none"`` to None (the field's automatic choice)."""
    if str(text).strip().lower() in ("auto", "none"):
        return None
    return parse_bool(text)


def _number(kind, minimum=None, strict=False, allow_none=False, maximum=None):
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
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}; received {text!r}")
        return value

    convert.__name__ = kind.__name__
    return convert


def _help(field):
    text = field.metadata["help"]
    if field.metadata["choices"]:
        text += f" ({', '.join(field.metadata['choices'])})"
    if "(default:" in text:
        return text.replace("%", "%%")
    default = field_default(field.name)
    shown = "none" if default is None else ("true" if default is True else "false" if default is False else default)
    return f"{text} [default: {shown}]".replace("%", "%%")


def _add_field(group, field):
    kind, optional = field_type(field)
    flags = [f"--{field.name}", *field.metadata["flags"]]
    if kind is bool:
        group.add_argument(*flags, dest=field.name, nargs="?", const=True, default=None,
                           type=parse_optional_bool if optional else parse_bool,
                           metavar="auto|true|false" if optional else "true|false",
                           help=_help(field) + f"; --no-{field.name} for false")
        group.add_argument(f"--no-{field.name}", f"--no_{field.name}", dest=field.name, action="store_false",
                           default=None, help=argparse.SUPPRESS)
        return
    if kind in (int, float):
        convert = _number(kind, field.metadata["minimum"], field.metadata["strict"], allow_none=optional,
                          maximum=field.metadata["maximum"])
    else:
        convert = str
    group.add_argument(*flags, dest=field.name, type=convert, default=None, help=_help(field),
                       metavar=field.name.upper())


def add_config_flags(parser, names=None):
    """Adds one flag per :class:`~boml.workflow.config.Config` field (or per field of ``names``), grouped."""
    groups = {}
    for field in fields():
        if names is not None and field.name not in names:
            continue
        key = field.metadata["group"]
        if key not in groups:
            groups[key] = parser.add_argument_group(GROUPS[key])
        _add_field(groups[key], field)


def _common():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", "-v", action="store_true",
                        help="show TensorFlow's start-up messages (filtered out by default)")
    return common


def build_parser():
    """The ``argparse`` parser of ``python -m boml`` (``allow_abbrev=False``)."""
    common = _common()
    parser = argparse.ArgumentParser(prog="boml", description="Bilevel meta-learning with boml.",
                                     allow_abbrev=False, parents=[common])
    sub = parser.add_subparsers(dest="command")
    sub.required = True

    train = sub.add_parser("train", allow_abbrev=False, parents=[common], help="meta-train and evaluate a "
                           "configuration", description="Meta-trains a configuration (a preset and/or flags), then "
                           "evaluates it on the test episodes. Results go to <logdir>/<name>/results.json. Ctrl-C "
                           "saves a checkpoint and prints the command that resumes the run.")
    train.add_argument("--preset", "-p", default=None, help="standard configuration (see `boml presets`); its "
                       "values replace the defaults below")
    train.add_argument("--config", default=None, help="JSON file of configuration values, e.g. a run's "
                       "config.json (flags override it)")
    train.add_argument("--quiet", "-q", action="store_true", help="only print the final results")
    add_config_flags(train)

    evaluate = sub.add_parser("evaluate", allow_abbrev=False, parents=[common],
                              help="evaluate the checkpoints of a run",
                              description="Restores checkpoints of a `boml train` run and reports the mean "
                                          "accuracy with its 95%% confidence interval on fixed episodes. Options "
                                          "not given keep the run's values.")
    evaluate.add_argument("--run_dir", "--expdir", "-exd", required=True, help="directory of a train run")
    evaluate.add_argument("--iterations_to_test", "-itt", type=_number(int, 0), nargs="+", default=None,
                          help="checkpoint iterations to evaluate [default: the latest]")
    evaluate.add_argument("--split", choices=("test", "validation"), default="test",
                          help="episodes of the test or of the validation classes [default: test]")
    evaluate.add_argument("--quiet", "-q", action="store_true", help="only print the result rows")
    add_config_flags(evaluate, EVALUATE_FIELDS)

    plot = sub.add_parser("plot", allow_abbrev=False, parents=[common], help="draw learning curves of runs",
                          description="Writes a PNG of the training loss and the validation accuracy (95%% CI "
                                      "band) against meta-iterations and meta-training time; several runs share "
                                      "one figure. Needs matplotlib: pip install boml[plot].")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="directories of train runs")
    plot.add_argument("--out", "-o", default=None, help="PNG file [default: RUN_DIR/curves.png for one run, "
                      "curves.png for several]")
    plot.add_argument("--title", default=None, help="figure title [default: learning curves]")

    sub.add_parser("presets", allow_abbrev=False, parents=[common],
                   help="list the standard configurations with their descriptions")
    from boml.data_command import add_data_parser  # no TensorFlow: `data` answers at once too

    add_data_parser(sub)
    from boml.distributed.command import add_worker_parser

    add_worker_parser(sub)
    return parser


def config_from_args(args):
    """The ``Config`` described by parsed ``train`` arguments (preset, then JSON file, then flags).

    Raises:
        UnknownNameError: unknown preset.
        InvalidArgumentError: bad values (from ``Config.replace``) or a JSON file that is not valid.
        DataNotFoundError: the JSON file does not exist.
    """
    from boml.errors import DataNotFoundError, InvalidArgumentError
    from boml.workflow.presets import preset

    config = preset(args.preset) if args.preset else Config()
    if args.config:
        if not os.path.exists(args.config):
            raise DataNotFoundError(f"Configuration file {args.config} does not exist.")
        with open(args.config) as handle:
            try:
                values = json.load(handle)
            except ValueError as e:
                raise InvalidArgumentError(f"{args.config} is not valid JSON ({e}).") from e
        config = config.replace(**values)
    changes = {f.name: getattr(args, f.name) for f in fields() if getattr(args, f.name) is not None}
    if any(k in changes for k in ("method", "inner_method", "outer_method")) and "algorithm" not in changes:
        changes["algorithm"] = None  # an explicit triple replaces the preset's algorithm
        for key in ("method", "inner_method", "outer_method"):
            if key not in changes:
                changes[key] = getattr(config.resolved(), key)
    return config.replace(**changes)


def _configure_logging(quiet, verbose):
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    if not verbose:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _start_tensorflow(verbose):
    """Imports TensorFlow (quietly unless ``verbose``) and boml's strategies; returns the stderr filter."""
    from boml.workflow.quiet import quiet_tensorflow

    noise = None if verbose else quiet_tensorflow()
    import tensorflow.compat.v1 as tf

    from boml import BOMLOptimizer  # noqa: F401  (the first access to boml's names registers its strategies)
    tf.disable_eager_execution()
    return noise


def locate_data(config):
    """``config`` with ``data_folder`` set to where its dataset is (fetched first with ``download``).

    Runs before TensorFlow is imported, so a missing dataset is reported at once.

    Raises:
        DataError: the dataset is missing (the message ends with the command that fetches it).
    """
    if config.dataset not in ("omniglot", "miniimagenet"):
        return config
    from boml.load_data.datasets.downloads import locate_dataset

    return config.replace(data_folder=locate_dataset(config.dataset, folder=config.data_folder,
                                                     download=config.download, log=print))


def _train(config):
    from boml import workflow

    results = workflow.train(config.validate())  # logs its run directory (a new one with --no-resume)
    test = results["test"]
    print(json.dumps({"run_dir": results["run_dir"], "iterations": results["iterations"],
                      "train_seconds": round(results["train_seconds"], 1),
                      "test_accuracy": round(test["accuracy"], 5), "ci95": round(test["ci95"], 5),
                      "test_episodes": test["episodes"]}), flush=True)


def _evaluate(args):
    from boml import workflow

    overrides = {k: getattr(args, k) for k in EVALUATE_FIELDS if getattr(args, k) is not None}
    out = workflow.evaluate(args.run_dir, iterations=args.iterations_to_test, split=args.split, **overrides)
    for row in out["results"]:
        print(json.dumps({"iteration": row["iteration"], "accuracy": round(row["accuracy"], 5),
                          "ci95": round(row["ci95"], 5), "episodes": row["episodes"]}), flush=True)


def _run(args):
    if args.command == "presets":
        from boml.workflow.presets import describe_presets

        print(describe_presets())
        return 0
    if args.command == "plot":
        from boml.workflow.plotting import plot_runs

        print(plot_runs(args.run_dirs, out=args.out, title=args.title))
        return 0
    if args.command == "data":
        from boml.data_command import run_data_command

        return run_data_command(args) or 0
    if args.command == "worker":
        from boml.distributed.command import run_worker_command

        return run_worker_command(args)
    config = None
    if args.command == "train":
        config = config_from_args(args)
        config.resolved()  # a bad algorithm name is reported before the data search
        config = locate_data(config)
    noise = _start_tensorflow(args.verbose)
    _configure_logging(args.quiet, args.verbose)
    try:
        if config is not None:
            _train(config)
        else:
            _evaluate(args)
    finally:
        if noise is not None:
            noise.stop()
    return 0


def main(argv=None):
    """Entry point of ``python -m boml`` and of the ``boml`` console script; returns the exit status."""
    from boml.workflow.interrupts import EXIT_INTERRUPTED, TrainingInterrupted

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except BOMLError as error:
        parser.exit(2, f"boml: error: {type(error).__name__}: {error}\n")
    except TrainingInterrupted as stop:
        sys.stdout.flush()
        sys.stderr.write(f"boml: {stop}; checkpoint and results so far saved in {stop.results['run_dir']}.\n"
                         f"Resume with:\n    {stop.resume_command}\n")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt as stop:
        sys.stdout.flush()
        sys.stderr.write(f"boml: interrupted ({stop or 'before meta-training started'}); nothing more was saved.\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
