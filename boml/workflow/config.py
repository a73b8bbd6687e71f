"""The configuration of a run: one dataclass that is also the list of command-line flags.

Every field of :class:`Config` is declared with :func:`option`, which stores its help text, its
short flags, the group it belongs to (a strategy or a part of the run) and whether it is
*structural* -- whether it changes the graph or the episodes, so that a run cannot resume with
another value. ``python -m boml train`` builds its flags, defaults and help from these fields;
the resume check (:func:`check_resumable`) and the run name (:attr:`Config.run_name`) read the
same structural list. This module imports no TensorFlow (``--help`` stays fast); the checks that
need the registries import them in :meth:`Config.validate`.
"""
import dataclasses
import math
import os
import typing
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from boml.errors import InvalidArgumentError, UnknownNameError, describe_allowed

#: Algorithm name -> (method, inner_method, outer_method, settings it implies); one per row of the
#: README's algorithm table.
ALGORITHMS: Dict[str, Tuple[str, str, str, Dict[str, Any]]] = {
    "maml": ("MetaInit", "Simple", "Simple", {}),
    "fomaml": ("MetaInit", "Simple", "Simple", {"first_order": True}),
    "metasgd": ("MetaInit", "Simple", "Simple", {"learn_lr": True}),
    "mtnet": ("MetaInit", "Simple", "Simple", {"use_t": True, "use_mask": True}),
    "warpgrad": ("MetaInit", "Simple", "Simple", {"use_warp": True}),
    "reptile": ("MetaInit", "Simple", "Reptile", {}),
    "rhg": ("MetaFeat", "Trad", "Reverse", {}),
    "trhg": ("MetaFeat", "Trad", "Reverse", {"truncate_iter": 1}),
    "hoag": ("MetaFeat", "Trad", "Implicit", {}),
    "darts": ("MetaFeat", "Trad", "Darts", {}),
    "forward": ("MetaFeat", "Trad", "Forward", {}),
    "bda": ("MetaFeat", "Aggr", "Reverse", {"alpha": 0.5}),
    "imaml": ("MetaInit", "Proximal", "Implicit", {}),
    "anil": ("MetaInit", "ANIL", "Simple", {}),
    "maml++": ("MetaInit", "Simple", "MAML++", {"multi_step_loss": True}),
}
#: Other spellings of the algorithm names (the README's: FMAML, Forward-mode HG).
ALGORITHM_ALIASES = {"fmaml": "fomaml", "forwardmode": "forward", "forwardmodehg": "forward"}

DATASETS = ("omniglot", "miniimagenet", "synthetic")
SPLITS = ("original", "vinyals", "lake")
LR_GRANULARITIES = ("scalar", "tensor", "element")
#: ``Implicit``'s solvers and failure modes (the same as ``boml.upper_iter.implicit.SOLVERS`` and
#: ``boml.upper_iter.solvers.FAILURE_MODES``; kept here so that reading a configuration needs no TensorFlow).
IMPLICIT_SOLVERS = ("cg", "neumann", "fixed_point")
SOLVER_FAILURE_MODES = ("warn", "raise", "ignore")
#: The meta learning rate's schedules (``boml.boml_optimizer.meta_update.META_LR_SCHEDULES``).
META_LR_SCHEDULES = ("inverse_time", "cosine")
#: Largest seed NumPy's ``RandomState`` accepts.
SEED_MAX = 2 ** 32 - 1

#: Flag groups of ``python -m boml train --help``, in display order.
GROUPS = {
    "algorithm": "algorithm (a name, or the BOML triple)",
    "data": "data and episodes",
    "training": "meta-training",
    "metainit": "MetaInit family (MAML, Meta-SGD, MT-net, WarpGrad, iMAML, ANIL, MAML++)",
    "metafeat": "MetaFeat family (RHG, TRHG, HOAG, DARTS, Forward, BDA)",
    "run": "run directory, checkpoints and printing",
    "evaluation": "validation and test",
    "system": "system",
}


def option(default, help, flags=(), group="run", structural=False, tag=None, minimum=None, strict=False,
           choices=None, maximum=None):
    """A :class:`Config` field with what the command line and the resume check need.

    Args:
        default: the default value.
        help: one line of help for ``--help``.
        flags: extra flag spellings (the original scripts' short forms, e.g. ``("-mbs",)``).
        group: a key of ``GROUPS``.
        structural: the value changes the graph or the episodes (a run cannot resume with another).
        tag: short label of the value in derived run names (structural fields only).
        minimum: smallest value the command line accepts (numbers).
        strict: ``minimum`` itself is excluded.
        choices: allowed values, shown in the help.
        maximum: largest value accepted (numbers; None: no bound).

    Returns:
        A ``dataclasses.field`` carrying these settings in its metadata.
    """
    return dataclasses.field(default=default, metadata=dict(
        help=help, flags=tuple(flags), group=group, structural=structural, tag=tag, minimum=minimum,
        strict=strict, choices=choices, maximum=maximum))


@dataclass
class Config:
    """Everything a run needs; the fields follow the original scripts' flags.

    Each field's help text is in its ``option(...)`` declaration below (``python -m boml train
    --help`` prints them with the defaults). ``algorithm`` names a row of ``ALGORITHMS`` and fills
    ``method``/``inner_method``/``outer_method`` and the flags it implies when those are not given.
    """

    # algorithm
    algorithm: Optional[str] = option("maml", "algorithm: " + ", ".join(ALGORITHMS), ("-alg",), "algorithm")
    method: Optional[str] = option(None, "MetaInit or MetaFeat (overrides the algorithm's)", ("-md",), "algorithm",
                                   structural=True)
    inner_method: Optional[str] = option(None, "Simple, Trad, Aggr, Proximal or ANIL", ("-i_d",), "algorithm",
                                         structural=True)
    outer_method: Optional[str] = option(None, "Simple, Reptile, Reverse, Implicit, Darts, Forward, MAML++", ("-o_d",),
                                         "algorithm", structural=True)
    # data
    dataset: str = option("omniglot", "dataset", ("-d",), "data", structural=True, choices=DATASETS)
    data_folder: Optional[str] = option(
        None, "dataset folder or archive (default: $DATASETS_FOLDER/<dataset>, then ~/.boml/datasets)", ("-df",),
        "data")
    download: bool = option(False, "download the dataset into the datasets folder when it is missing", (), "data")
    split: str = option("vinyals", "Omniglot class split: vinyals (standard 1028/172/423), original (BOML) or lake",
                        (), "data", structural=True, choices=SPLITS)
    classes: int = option(5, "N-way", ("-nc",), "data", structural=True, minimum=2)
    examples_train: int = option(1, "K-shot (support examples per class)", ("-etr",), "data", structural=True,
                                 minimum=1)
    examples_test: int = option(15, "query examples per class", ("-etes",), "data", structural=True, tag="q",
                                minimum=1)
    train_examples_test: Optional[int] = option(
        None, "query examples per class of the meta-training episodes (default: examples_test)", (), "data",
        structural=True, tag="tq", minimum=1)
    image_size: int = option(28, "side of the synthetic images (the real datasets fix it)", (), "data",
                             structural=True, tag="img", minimum=1)
    # meta-training
    meta_batch_size: int = option(4, "tasks per meta-update", ("-mbs",), "training", structural=True, tag="mbs",
                                  minimum=1)
    meta_train_iterations: int = option(2000, "meta-iterations", ("-mti",), "training", minimum=0)
    max_minutes: Optional[float] = option(
        None, "stop meta-training after this many minutes, validation excluded (none: no limit)", (), "training",
        minimum=0, strict=True)
    T: int = option(5, "inner steps in meta-training", ("-T",), "training", structural=True, tag="T", minimum=1)
    T_test: Optional[int] = option(None, "inner steps at evaluation (default: T)", ("-Tt",), "evaluation",
                                   minimum=1)
    lr: float = option(0.1, "inner step size", ("-lr",), "training", structural=True, tag="lr", minimum=0,
                       strict=True)
    meta_lr: float = option(1e-3, "outer step size", ("-mlr",), "training", structural=True, tag="mlr", minimum=0,
                            strict=True)
    meta_lr_decay_rate: float = option(1e-5, "inverse-time decay of meta_lr", ("-mlrdr", "--meta-lr-decay-rate"),
                                       "training", structural=True, tag="mlrdr", minimum=0)
    meta_lr_schedule: str = option(
        "inverse_time", "meta_lr schedule: inverse_time (meta_lr_decay_rate) or cosine (anneals to meta_lr_min over "
        "meta_train_iterations, MAML++)", ("-mlrs",), "training", structural=True, tag="mlrs",
        choices=META_LR_SCHEDULES)
    meta_lr_min: float = option(0.0, "cosine schedule: the final meta_lr", (), "training", structural=True,
                                tag="mlrmin", minimum=0)
    inner_opt: str = option("SGD", "inner optimizer (a registered name: SGD, Momentum, Adam ...)", ("-io",),
                            "training", structural=True, tag="io")
    outer_opt: str = option("Adam", "outer optimizer: SGD, Momentum or Adam", ("-oo",), "training", structural=True,
                            tag="oo")
    momentum: float = option(0.5, "momentum of the Momentum optimizers", (), "training", structural=True,
                             tag="mom", minimum=0)
    clip_value: float = option(0.0, "clip hypergradients to [-v, v] (0: no clipping)", ("-cv",), "training",
                               structural=True, tag="clip", minimum=0)
    seed: int = option(0, "seed of the initialization and of the training episodes", ("-s",), "training",
                       structural=True, tag="seed", minimum=0, maximum=SEED_MAX)
    num_filters: Optional[int] = option(None, "filters of the four conv blocks (default: the network's)", ("-nf",),
                                        "training", structural=True, tag="nf", minimum=1)
    # MetaInit family
    learn_lr: bool = option(False, "learn the inner step sizes (Meta-SGD)", ("-lrl",), "metainit", structural=True,
                            tag="learnlr")
    lr_granularity: str = option("scalar", "learned step sizes: one scalar (as the original), one per tensor or "
                                 "one per element", (), "metainit", structural=True, tag="lrg",
                                 choices=LR_GRANULARITIES)
    first_order: bool = option(False, "first-order MAML", ("-fo",), "metainit", structural=True, tag="fo")
    use_t: bool = option(False, "MT-net T-layers", ("-u_T",), "metainit", structural=True, tag="tlayers")
    use_mask: bool = option(False, "MT-net learned update mask", (), "metainit", structural=True, tag="mask")
    use_warp: bool = option(False, "WarpGrad warp layers", ("-u_W",), "metainit", structural=True, tag="warp")
    multi_step_loss: bool = option(False, "MAML++: optimize the annealed weighted query losses of every inner step",
                                   (), "metainit", structural=True, tag="msl")
    msl_anneal_iterations: int = option(1000, "MAML++: meta-iterations over which the multi-step weights anneal", (),
                                        "metainit", structural=True, tag="msln", minimum=1)
    first_order_iterations: int = option(0, "MAML++: first-order meta-gradient for the first N meta-iterations", (),
                                         "metainit", structural=True, tag="foit", minimum=0)
    learn_step_sizes: bool = option(False, "MAML++ LSLR: learned step size per layer and inner step (also used at "
                                    "evaluation)", (), "metainit", structural=True, tag="lslr")
    per_step_bn_weights: bool = option(False, "MAML++ BNWB: batch-norm offset and scale per inner step", (),
                                       "metainit", structural=True, tag="bnwb")
    per_step_bn_statistics: bool = option(False, "MAML++ BNRS: per-step running batch-norm statistics, used at "
                                          "evaluation instead of the batch's", (), "metainit", structural=True,
                                          tag="bnrs")
    bn_momentum: float = option(0.9, "MAML++ BNRS: momentum m of r <- m r + (1 - m) batch", (), "metainit",
                                structural=True, tag="bnm", minimum=0)
    proximal_lambda: float = option(1.0, "iMAML: weight lambda of the proximal term lambda/2 ||theta - x||^2", (),
                                    "metainit", structural=True, tag="plambda", minimum=0, strict=True)
    # MetaFeat family
    truncate_iter: int = option(-1, "TRHG: back-propagate through the last K inner steps (-1: all)", ("-tr_ir",),
                                "metafeat", structural=True, tag="trunc", minimum=-1)
    xavier: bool = option(False, "MetaFeat head initialised with Glorot instead of zeros", ("-xi",), "metafeat",
                          structural=True, tag="xavier")
    cg_max_iter: int = option(50, "Implicit (HOAG, iMAML): maximum conjugate-gradient iterations", (), "metafeat",
                              structural=True, tag="cg", minimum=1)
    solver: str = option("cg", "Implicit: linear solver of the hypergradient system", (), "metafeat",
                         structural=True, tag="solver", choices=IMPLICIT_SOLVERS)
    cg_damping: float = option(0.0, "Implicit (cg, neumann): d >= 0 added to the Hessian, (H + d I) q = grad F",
                               (), "metafeat", structural=True, tag="damp", minimum=0)
    neumann_terms: int = option(20, "Implicit (neumann): number K of Hessian-vector products of the series", (),
                                "metafeat", structural=True, tag="nterms", minimum=0)
    solver_failure: str = option("warn", "Implicit (cg, fixed_point): what an unsolved system does", (),
                                 "metafeat", choices=SOLVER_FAILURE_MODES)
    forward_max_dim: int = option(1000, "Forward: largest number of scalar hyperparameters allowed", (),
                                  "metafeat", minimum=1)
    alpha: float = option(0.0, "BDA aggregation weight (initial value)", ("-alpha",), "metafeat", structural=True,
                          tag="alpha", minimum=0)
    learn_alpha: bool = option(False, "BDA: learn the aggregation weight", ("-lralpha",), "metafeat",
                               structural=True, tag="learnalpha")
    learn_alpha_itr: bool = option(False, "BDA: learn one aggregation weight per step", (), "metafeat",
                                   structural=True, tag="alphaitr")
    learn_st: bool = option(False, "BDA: learn s and t", ("-lrst",), "metafeat", structural=True, tag="learnst")
    bda_s: float = option(1.0, "BDA weight s of the upper gradient", ("-bs",), "metafeat", structural=True,
                          tag="s")
    bda_t: float = option(1.0, "BDA weight t of the lower gradient", ("-bt",), "metafeat", structural=True,
                          tag="t")
    # evaluation
    test_seed: int = option(12345, "seed of the fixed test (and validation: test_seed + 1) episodes", (),
                            "evaluation", minimum=0, maximum=SEED_MAX - 1)
    val_interval: int = option(0, "validation every N meta-iterations (0: never)", ("-vi",), "evaluation",
                               minimum=0)
    val_episodes: int = option(100, "episodes of each validation", (), "evaluation", minimum=1)
    test_episodes: int = option(600, "episodes of the final test (standard: 600)", ("-te",), "evaluation",
                                minimum=1)
    eval_batch_size: int = option(25, "episodes adapted per session.run at evaluation", (), "evaluation",
                                  minimum=1)
    # run
    logdir: str = option("logs", "runs are saved in logdir/name", ("-ld",), "run")
    name: Optional[str] = option(None, "run name (default: derived from every structural setting)", (), "run")
    resume: bool = option(True, "resume from the run's latest checkpoint", ("-res",), "run")
    print_interval: int = option(100, "print progress every N meta-iterations (0: never)", ("-pi",), "run",
                                 minimum=0)
    save_interval: int = option(1000, "checkpoint every N meta-iterations (0: only at the end)", ("-si",), "run",
                                minimum=0)
    keep_checkpoints: int = option(3, "checkpoints kept on disk", (), "run", minimum=1)
    notes: str = option("", "free text stored with the results", ("--Notes",), "run")
    # system
    threads: int = option(0, "intra-op threads (0: TensorFlow's default)", (), "system", minimum=0)
    parallel_iterations: int = option(16, "tasks of a meta-batch computed concurrently", (), "system", minimum=1)
    task_memory_budget: Optional[float] = option(
        None, "GB of estimated task activations computed at once: fewer concurrent tasks than parallel_iterations "
        "for big networks, less memory but slower (none: no budget)", (), "system", minimum=0, strict=True)
    vectorize_tasks: Optional[bool] = option(
        None, "compute groups of tasks of a meta-batch at once, each op once for a whole group (grouped "
        "convolutions): same numbers, faster for small tasks, more memory; true: whenever possible, false: never "
        "(default: auto, vectorized when a group's estimated activations stay under 2 GB; see "
        "docs/performance.rst)", (), "system")
    while_loop_threshold: int = option(
        16, "Simple and ANIL inner loops (MAML family): from this many inner steps T on, one tf.while_loop "
        "(graph size independent of T), unrolled below it; same numbers either way", (), "system", minimum=1)
    recompute_every: Optional[str] = option(
        None, "Reverse and Simple (RHG, TRHG, the MAML family): gradient checkpointing of the inner trajectory, "
        "the reverse pass keeps every K-th state and recomputes the K steps in between (K, or sqrt for "
        "ceil(sqrt(T))): same numbers, less memory, one more forward pass (none: keep every step)", (), "system")
    prefetch: int = option(2, "training meta-batches sampled ahead in a background thread, same order "
                                "(0: sample in the loop)", (), "system", minimum=0)
    cluster_spec: Optional[str] = option(None, "shard each meta-batch over the workers of a cluster started with "
                                         "`python -m boml worker` (JSON or worker=host:port,host:port;ps=host:port; "
                                         "default: one process)", (), "system")

    # ------------------------------------------------------------------ derived values
    def resolved(self) -> "Config":
        """A copy with ``method``/``inner_method``/``outer_method`` (and implied flags) filled in.

        Raises:
            UnknownNameError: ``algorithm`` is not in ``ALGORITHMS``.
            InvalidArgumentError: neither an algorithm nor a full triple is given.
        """
        values = dataclasses.asdict(self)
        if self.algorithm is not None:
            key = algorithm_key(self.algorithm)
            method, inner, outer, implied = ALGORITHMS[key]
            values["algorithm"] = key
            values["method"] = values["method"] or method
            values["inner_method"] = values["inner_method"] or inner
            values["outer_method"] = values["outer_method"] or outer
            for k, v in implied.items():
                if getattr(self, k) == field_default(k):
                    values[k] = v
        elif not (self.method and self.inner_method and self.outer_method):
            raise InvalidArgumentError(
                "Give an algorithm (e.g. 'maml', 'rhg') or all of method, inner_method and outer_method; received "
                f"algorithm=None, method={self.method!r}, inner_method={self.inner_method!r}, "
                f"outer_method={self.outer_method!r}."
            )
        return Config(**values)

    @property
    def run_name(self) -> str:
        """``name``, or a name derived from every structural field (see :func:`derived_run_name`)."""
        return self.name or derived_run_name(self)

    @property
    def run_dir(self) -> str:
        """``logdir/run_name``."""
        return os.path.join(self.logdir, self.run_name)

    @property
    def eval_T(self) -> int:
        """Inner steps at evaluation: ``T_test``, else ``T``."""
        return self.T if self.T_test is None else self.T_test

    def to_dict(self) -> Dict[str, Any]:
        """The fields as a dict (what ``config.json`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "Config":
        """Builds a config from a dict (e.g. a saved ``config.json``).

        Raises:
            InvalidArgumentError: a key is not a configuration field.
        """
        names = set(field_names())
        unknown = sorted(set(values) - names)
        if unknown:
            raise InvalidArgumentError(
                f"Unknown configuration keys {unknown}; allowed: {', '.join(sorted(names))}."
            )
        return cls(**values)

    def replace(self, **changes) -> "Config":
        """A copy with ``changes`` applied (unknown keys raise ``InvalidArgumentError``)."""
        values = self.to_dict()
        values.update(changes)
        return Config.from_dict(values)

    def validate(self) -> "Config":
        """Checks every field and returns the resolved configuration (see :mod:`boml.workflow.validation`).

        Raises:
            UnknownNameError: unknown algorithm, dataset, split or optimizer name.
            InvalidCombinationError: the method triple is not allowed.
            InvalidArgumentError: a value is out of range or flags contradict each other.
        """
        from boml.workflow.validation import validate

        return validate(self.resolved())


# ---------------------------------------------------------------------------------------------- field tables
def fields():
    """The ``dataclasses.Field`` objects of :class:`Config`, in declaration order."""
    return dataclasses.fields(Config)


def field_names():
    """The names of the configuration fields."""
    return [f.name for f in fields()]


def field_default(name):
    """The default value of field ``name``."""
    return Config.__dataclass_fields__[name].default


def structural_fields():
    """Names of the fields that change the graph or the episodes (a run resumes only with the same values)."""
    return [f.name for f in fields() if f.metadata["structural"]]


def field_type(field) -> Tuple[type, bool]:
    """``(base type, optional)`` of a field: ``Optional[int]`` gives ``(int, True)``."""
    kind = field.type
    args = typing.get_args(kind)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return kind, False


def algorithm_key(name) -> str:
    """The ``ALGORITHMS`` key of an algorithm name (case, hyphens and aliases are accepted).

    Raises:
        UnknownNameError: the name is not an algorithm.
    """
    key = str(name).lower().replace("-", "").replace("_", "").replace(" ", "")
    key = ALGORITHM_ALIASES.get(key, key)
    if key not in ALGORITHMS:
        raise UnknownNameError(
            f"Unknown algorithm {name!r}; allowed: {describe_allowed(ALGORITHMS)} "
            f"(or give method, inner_method and outer_method with algorithm=None)."
        )
    return key


def _name_value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def derived_run_name(config: Config) -> str:
    """A run name that differs whenever a structural field differs.

    The name starts with the algorithm (or the triple), the dataset, the Omniglot split and the
    N-way K-shot setting, then every other structural field: ``mbs``, ``T``, ``lr``, ``mlr`` and
    ``seed`` always, the others (each with its ``tag``) when they differ from the defaults that the
    algorithm implies. Two configurations that :func:`check_resumable` would refuse to mix never
    share a derived name.

    Raises:
        UnknownNameError, InvalidArgumentError: as :meth:`Config.resolved`.
    """
    c = config.resolved()
    baseline = Config(algorithm=c.algorithm).resolved() if c.algorithm else Config(
        algorithm=None, method=c.method, inner_method=c.inner_method, outer_method=c.outer_method)
    label = c.algorithm or f"{c.method}-{c.inner_method}-{c.outer_method}"
    if c.algorithm and (c.method, c.inner_method, c.outer_method) != tuple(ALGORITHMS[c.algorithm][:3]):
        label = f"{c.algorithm}-{c.method}-{c.inner_method}-{c.outer_method}"
    parts = [label, c.dataset]
    if c.dataset == "omniglot":
        parts.append(c.split)
    parts.append(f"{c.classes}way{c.examples_train}shot")
    always = ("meta_batch_size", "T", "lr", "meta_lr", "seed")
    named = {"method", "inner_method", "outer_method", "dataset", "split", "classes", "examples_train"}
    for f in fields():
        if not f.metadata["structural"] or f.name in named:
            continue
        value = getattr(c, f.name)
        if f.name not in always and value == getattr(baseline, f.name):
            continue
        if isinstance(value, bool):
            parts.append(f.metadata["tag"] if value else f"no{f.metadata['tag']}")
        elif value is None:
            parts.append(f"{f.metadata['tag']}default")
        else:
            parts.append(f"{f.metadata['tag']}{_name_value(value)}")
    return "_".join(parts)


def structural_values(values: Dict[str, Any]) -> Dict[str, Any]:
    """The structural fields of a configuration dict (what a checkpoint records)."""
    return {k: values[k] for k in structural_fields() if k in values}


def structural_hash(values: Dict[str, Any]) -> str:
    """SHA-256 of the structural fields of ``values`` (a configuration dict), as hexadecimal."""
    import hashlib
    import json

    text = json.dumps(structural_values(values), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_resumable(saved: Dict[str, Any], config: Config, run_dir: str, ignore=()) -> None:
    """Refuses to resume ``run_dir`` when a structural field differs from the saved configuration.

    Args:
        saved: the configuration of the run (``config.json`` or a checkpoint's record).
        config: the resolved configuration of the new session.
        run_dir: the run directory (named in the message).
        ignore: fields allowed to differ (``meta_lr`` when resuming after a divergence).

    Raises:
        InvalidArgumentError: names each changed field with both values.
    """
    changed = [k for k in structural_fields() if k in saved and k not in ignore and saved[k] != getattr(config, k)]
    if changed:
        details = ", ".join(f"{k}: saved {saved[k]!r} vs now {getattr(config, k)!r}" for k in changed)
        raise InvalidArgumentError(
            f"Cannot resume {run_dir}: the configuration changed ({details}). Use another --name or logdir, "
            f"or --no-resume to start afresh in a new run directory."
        )


def is_number(value) -> bool:
    """True for ints and floats (numpy's too), False for bools."""
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_finite_number(value) -> bool:
    """A number that is neither NaN nor infinite."""
    return is_number(value) and math.isfinite(value)


__all__ = ["ALGORITHMS", "ALGORITHM_ALIASES", "DATASETS", "SPLITS", "LR_GRANULARITIES",
           "IMPLICIT_SOLVERS", "SOLVER_FAILURE_MODES", "META_LR_SCHEDULES", "SEED_MAX", "GROUPS", "Config",
           "option", "fields", "field_names", "field_default", "structural_fields", "field_type", "algorithm_key",
           "derived_run_name", "structural_values", "structural_hash", "check_resumable"]
