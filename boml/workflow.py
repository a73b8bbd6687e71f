"""The meta-training workflow: configuration, graph, training loop, checkpoints, evaluation, results.

This module is what ``python -m boml train ...`` runs. It builds the graph the
original README teaches (a ``BOMLExperiment``, a ``BOMLOptimizer``, its
meta-learner and base learner, ``ll_problem``, ``ul_problem``,
``aggregate_all``) for a chosen algorithm and dataset, then meta-trains it with
one ``session.run`` per meta-iteration and evaluates it with the standard
few-shot protocol.

Typical use::

    from boml import workflow

    config = workflow.preset("maml-omniglot-5w1s", data_folder="../shared/data/omniglot_resized")
    results = workflow.train(config)            # writes <logdir>/<name>/results.json
    print(results["test"]["accuracy"], results["test"]["ci95"])

Run directory layout (``config.run_dir``)::

    config.json             the configuration of the run
    ckpt-<step>.*           TensorFlow checkpoints (global variables: meta-parameters,
                            learned step sizes, outer optimizer slots, global step)
    ckpt-<step>.state.pkl   sidecar: episode RandomState, running statistics, elapsed time
    events.out.tfevents.*   TensorBoard scalars (losses, accuracies, speed)
    results.json            configuration and final figures
    evaluation.json         written by ``evaluate``

Checkpoints resume exactly: the next episode, the outer optimizer state and the
global step are those the uninterrupted run would have had.
"""
import dataclasses
import json
import logging
import math
import os
import pickle
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension, utils
from boml.boml_optimizer import BOMLOptimizer, allowed_triples
from boml.errors import DataNotFoundError, InvalidArgumentError, InvalidCombinationError, UnknownNameError, \
    describe_allowed
from boml.load_data import BOMLExperiment, meta_mini_imagenet, meta_omniglot, meta_synthetic

LOGGER = logging.getLogger("boml.workflow")

#: Algorithm name -> (method, inner_method, outer_method, settings it implies).
ALGORITHMS: Dict[str, Tuple[str, str, str, Dict[str, Any]]] = {
    "maml": ("MetaInit", "Simple", "Simple", {}),
    "fomaml": ("MetaInit", "Simple", "Simple", {"first_order": True}),
    "metasgd": ("MetaInit", "Simple", "Simple", {"learn_lr": True}),
    "mtnet": ("MetaInit", "Simple", "Simple", {"use_t": True}),
    "warpgrad": ("MetaInit", "Simple", "Simple", {"use_warp": True}),
    "rhg": ("MetaFeat", "Trad", "Reverse", {}),
    "trhg": ("MetaFeat", "Trad", "Reverse", {"truncate_iter": 1}),
    "hoag": ("MetaFeat", "Trad", "Implicit", {}),
    "darts": ("MetaFeat", "Trad", "Darts", {}),
    "bda": ("MetaFeat", "Aggr", "Reverse", {"alpha": 0.5}),
}

DATASETS = ("omniglot", "miniimagenet", "synthetic")
OPTIMIZERS = ("SGD", "Momentum", "Adam")
SPLITS = ("original", "vinyals", "lake")
LR_GRANULARITIES = ("scalar", "tensor", "element")

_OMNIGLOT_5W1S = dict(dataset="omniglot", split="vinyals", classes=5, examples_train=1, examples_test=15)

#: Standard configurations, sized for 30 minutes of meta-training (``max_minutes``) on a 2-core CPU.
#: The 5-way 1-shot MAML and RHG presets were run on the real Omniglot (see the README's results
#: table); the 5-way 5-shot and 20-way 1-shot ones follow the same recipe and were not run to the end.
#: MAML trains on 5 queries per class (``train_examples_test``), which makes a meta-iteration about
#: twice cheaper; every evaluation uses ``examples_test`` (15) queries per class.
PRESETS: Dict[str, Dict[str, Any]] = {
    "maml-omniglot-5w1s": dict(
        _OMNIGLOT_5W1S, algorithm="maml", num_filters=32, train_examples_test=5, meta_batch_size=8, T=1, T_test=3,
        lr=0.4, meta_lr=1e-3, meta_train_iterations=60000, max_minutes=30.0, save_interval=500, val_interval=500),
    "maml-omniglot-5w5s": dict(
        _OMNIGLOT_5W1S, algorithm="maml", examples_train=5, num_filters=32, train_examples_test=5, meta_batch_size=8,
        T=1, T_test=3, lr=0.4, meta_lr=1e-3, meta_train_iterations=60000, max_minutes=30.0, save_interval=500,
        val_interval=500),
    "maml-omniglot-20w1s": dict(
        _OMNIGLOT_5W1S, algorithm="maml", classes=20, num_filters=32, train_examples_test=5, meta_batch_size=4,
        T=1, T_test=3, lr=0.1, meta_lr=1e-3, meta_train_iterations=60000, max_minutes=30.0, save_interval=500,
        val_interval=500),
    "rhg-omniglot-5w1s": dict(
        _OMNIGLOT_5W1S, algorithm="rhg", meta_batch_size=8, T=5, T_test=20, lr=0.1, meta_lr=1e-3,
        meta_train_iterations=6000, max_minutes=30.0, save_interval=500, val_interval=500),
    "maml-synthetic": dict(
        dataset="synthetic", algorithm="maml", classes=5, examples_train=1, examples_test=5, meta_batch_size=4,
        T=1, lr=0.4, meta_lr=1e-3, meta_train_iterations=200, num_filters=16, image_size=16,
        test_episodes=100, val_episodes=20, val_interval=50, save_interval=100, print_interval=20),
    "rhg-synthetic": dict(
        dataset="synthetic", algorithm="rhg", classes=5, examples_train=1, examples_test=5, meta_batch_size=4,
        T=3, lr=0.5, meta_lr=1e-3, meta_train_iterations=200, num_filters=16, image_size=16,
        test_episodes=100, val_episodes=20, val_interval=50, save_interval=100, print_interval=20),
}

# Configuration fields that change the graph or the data: a run can only resume with the same values.
_STRUCTURAL = ("method", "inner_method", "outer_method", "dataset", "split", "classes", "examples_train",
               "examples_test", "train_examples_test", "meta_batch_size", "T", "lr", "meta_lr",
               "meta_lr_decay_rate", "learn_lr",
               "lr_granularity", "first_order", "use_t", "use_warp", "truncate_iter", "alpha", "learn_alpha",
               "learn_alpha_itr", "learn_st", "bda_s", "bda_t", "inner_opt", "outer_opt", "momentum",
               "clip_value", "xavier", "num_filters", "image_size", "seed")


@dataclass
class Config:
    """Everything a run needs; the fields follow the original scripts' flags.

    Attributes:
        algorithm: a name of ``ALGORITHMS`` that sets ``method``, ``inner_method``,
            ``outer_method`` (and the flags it implies) when those are not given.
        method, inner_method, outer_method: the BOML triple (``"MetaInit"``, ``"Simple"``, ``"Simple"`` ...).
        dataset: ``"omniglot"``, ``"miniimagenet"`` or ``"synthetic"``.
        data_folder: the dataset folder or archive (default: the loader's search).
        split: Omniglot class split: ``"vinyals"`` (standard 1028/172/423), ``"original"`` (BOML) or ``"lake"``.
        classes, examples_train, examples_test: N-way, K-shot and queries per class.
        train_examples_test: queries per class of the meta-training episodes (default
            ``examples_test``; fewer make a meta-iteration cheaper, evaluation keeps ``examples_test``).
        meta_batch_size: tasks per meta-update.
        meta_train_iterations: number of meta-iterations.
        max_minutes: stop meta-training after this many minutes (None: no limit); the
            time spent in periodic validation does not count.
        T: inner steps during meta-training; ``T_test``: at evaluation (default ``T``).
        lr: inner step size; ``meta_lr``: outer step size; ``meta_lr_decay_rate``: its inverse-time decay.
        learn_lr: learn the inner step sizes (Meta-SGD); ``lr_granularity``: ``"scalar"``
            (one, as the original), ``"tensor"`` or ``"element"``.
        first_order: first-order MAML; ``use_t``: MT-net; ``use_warp``: WarpGrad.
        truncate_iter: TRHG truncation (-1: full reverse).
        alpha, learn_alpha, learn_alpha_itr, learn_st, bda_s, bda_t: BDA settings.
        inner_opt, outer_opt: ``"SGD"``, ``"Momentum"`` or ``"Adam"``; ``momentum`` for both.
        clip_value: clip the hypergradients to ``[-clip_value, clip_value]`` (0: no clipping).
        xavier: MetaFeat head initialised with Glorot instead of zeros.
        num_filters: filters of the four conv blocks (None: the network's default).
        image_size: synthetic images' side (the real datasets fix it).
        seed: seed of TensorFlow's initializers and of the training episodes.
        test_seed: seed of the fixed test (and validation) episodes.
        logdir, name: the run directory is ``logdir/name`` (name default: derived from the settings).
        print_interval, save_interval, val_interval: every N meta-iterations (0: never).
        val_episodes, test_episodes: episodes of the periodic validation and of the final test.
        eval_batch_size: episodes adapted per ``session.run`` at evaluation.
        resume: continue from the latest checkpoint of the run directory.
        keep_checkpoints: checkpoints kept on disk.
        threads: intra-op threads (0: TensorFlow's default).
        parallel_iterations: tasks of a meta-batch computed concurrently.
        notes: free text stored with the results.
    """

    algorithm: Optional[str] = "maml"
    method: Optional[str] = None
    inner_method: Optional[str] = None
    outer_method: Optional[str] = None
    dataset: str = "omniglot"
    data_folder: Optional[str] = None
    split: str = "vinyals"
    classes: int = 5
    examples_train: int = 1
    examples_test: int = 15
    train_examples_test: Optional[int] = None
    meta_batch_size: int = 4
    meta_train_iterations: int = 2000
    max_minutes: Optional[float] = None
    T: int = 5
    T_test: Optional[int] = None
    lr: float = 0.1
    meta_lr: float = 1e-3
    meta_lr_decay_rate: float = 1e-5
    learn_lr: bool = False
    lr_granularity: str = "scalar"
    first_order: bool = False
    use_t: bool = False
    use_warp: bool = False
    truncate_iter: int = -1
    alpha: float = 0.0
    learn_alpha: bool = False
    learn_alpha_itr: bool = False
    learn_st: bool = False
    bda_s: float = 1.0
    bda_t: float = 1.0
    inner_opt: str = "SGD"
    outer_opt: str = "Adam"
    momentum: float = 0.5
    clip_value: float = 0.0
    xavier: bool = False
    num_filters: Optional[int] = None
    image_size: int = 28
    seed: int = 0
    test_seed: int = 12345
    logdir: str = "logs"
    name: Optional[str] = None
    print_interval: int = 100
    save_interval: int = 1000
    val_interval: int = 0
    val_episodes: int = 100
    test_episodes: int = 600
    eval_batch_size: int = 25
    resume: bool = True
    keep_checkpoints: int = 3
    threads: int = 0
    parallel_iterations: int = 16
    notes: str = ""

    # ------------------------------------------------------------------ derived values
    def resolved(self) -> "Config":
        """A copy with ``method``/``inner_method``/``outer_method`` (and implied flags) filled in.

        Raises:
            UnknownNameError: ``algorithm`` is not in ``ALGORITHMS``.
            InvalidArgumentError: neither an algorithm nor a full triple is given.
        """
        values = dataclasses.asdict(self)
        if self.algorithm is not None:
            key = str(self.algorithm).lower()
            if key not in ALGORITHMS:
                raise UnknownNameError(
                    f"Unknown algorithm {self.algorithm!r}; allowed: {describe_allowed(ALGORITHMS)} "
                    f"(or give method, inner_method and outer_method with algorithm=None)."
                )
            method, inner, outer, implied = ALGORITHMS[key]
            values["algorithm"] = key
            values["method"] = values["method"] or method
            values["inner_method"] = values["inner_method"] or inner
            values["outer_method"] = values["outer_method"] or outer
            defaults = Config()
            for k, v in implied.items():
                if getattr(self, k) == getattr(defaults, k):
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
        """``name`` or a name derived from the settings (like the original's ``exp_string``)."""
        if self.name:
            return self.name
        c = self.resolved()
        label = c.algorithm or f"{c.method}-{c.inner_method}-{c.outer_method}"
        return (f"{label}_{c.dataset}_{c.classes}way{c.examples_train}shot_mbs{c.meta_batch_size}_T{c.T}"
                f"_lr{c.lr:g}_mlr{c.meta_lr:g}_seed{c.seed}")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.logdir, self.run_name)

    @property
    def eval_T(self) -> int:
        return self.T if self.T_test is None else self.T_test

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "Config":
        """Builds a config from a dict (e.g. a saved ``config.json``).

        Raises:
            InvalidArgumentError: a key is not a configuration field.
        """
        names = {f.name for f in dataclasses.fields(cls)}
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

    # ------------------------------------------------------------------ validation
    def validate(self) -> "Config":
        """Checks every field and returns the resolved configuration.

        Raises:
            UnknownNameError: unknown algorithm, dataset, split or optimizer name.
            InvalidCombinationError: the method triple is not allowed.
            InvalidArgumentError: a value is out of range or flags contradict each other.
        """
        c = self.resolved()
        if (c.method, c.inner_method, c.outer_method) not in set(allowed_triples()):
            raise InvalidCombinationError(
                f"The combination (method={c.method!r}, inner_method={c.inner_method!r}, "
                f"outer_method={c.outer_method!r}) is not allowed; allowed triples: "
                f"{', '.join(str(t) for t in allowed_triples())}."
            )
        for what, value, allowed in (("dataset", c.dataset, DATASETS), ("split", c.split, SPLITS),
                                     ("inner_opt", c.inner_opt, OPTIMIZERS), ("outer_opt", c.outer_opt, OPTIMIZERS),
                                     ("lr_granularity", c.lr_granularity, LR_GRANULARITIES)):
            if value not in allowed:
                raise UnknownNameError(f"Unknown {what} {value!r}; allowed: {describe_allowed(allowed)}.")
        positive_ints = ("classes", "examples_train", "meta_batch_size", "T", "test_episodes", "eval_batch_size",
                         "parallel_iterations", "image_size", "keep_checkpoints")
        for name in positive_ints:
            _check_int(name, getattr(c, name), minimum=1)
        for name in ("examples_test", "meta_train_iterations", "print_interval", "save_interval", "val_interval",
                     "val_episodes", "threads"):
            _check_int(name, getattr(c, name), minimum=0)
        _check_int("truncate_iter", c.truncate_iter, minimum=-1)
        if c.T_test is not None:
            _check_int("T_test", c.T_test, minimum=1)
        if c.train_examples_test is not None:
            _check_int("train_examples_test", c.train_examples_test, minimum=1)
        if c.examples_test < 1:
            raise InvalidArgumentError(
                f"examples_test must be >= 1: the query set gives the outer objective; received {c.examples_test}."
            )
        if c.classes < 2:
            raise InvalidArgumentError(f"classes must be >= 2 (N-way classification); received {c.classes}.")
        for name in ("lr", "meta_lr"):
            value = getattr(c, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise InvalidArgumentError(f"{name} must be a positive finite number; received {value!r}.")
        for name in ("meta_lr_decay_rate", "clip_value", "momentum"):
            value = getattr(c, name)
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise InvalidArgumentError(f"{name} must be a finite number >= 0; received {value!r}.")
        if c.max_minutes is not None and (not _is_number(c.max_minutes) or c.max_minutes <= 0):
            raise InvalidArgumentError(f"max_minutes must be a positive number or None; received {c.max_minutes!r}.")
        if c.num_filters is not None:
            _check_int("num_filters", c.num_filters, minimum=1)
        if c.truncate_iter >= 0 and c.outer_method != "Reverse":
            raise InvalidArgumentError(
                f"truncate_iter={c.truncate_iter} needs outer_method='Reverse' (TRHG); received "
                f"outer_method={c.outer_method!r}."
            )
        if c.truncate_iter > c.T:
            raise InvalidArgumentError(f"truncate_iter={c.truncate_iter} cannot exceed T={c.T}.")
        bda = (c.learn_alpha, c.learn_alpha_itr, c.learn_st)
        if any(bda) and c.inner_method != "Aggr":
            raise InvalidArgumentError(
                "learn_alpha, learn_alpha_itr and learn_st are BDA settings; they need inner_method='Aggr' "
                f"(algorithm 'bda'); received inner_method={c.inner_method!r}."
            )
        if c.method == "MetaFeat" and (c.first_order or c.use_t or c.use_warp):
            raise InvalidArgumentError(
                "first_order, use_t and use_warp apply to the MetaInit family (MAML, MT-net, WarpGrad); "
                f"received method={c.method!r}."
            )
        if c.name is not None and (not c.name or os.sep in c.name):
            raise InvalidArgumentError(f"name must be a non-empty directory name without {os.sep!r}; "
                                       f"received {c.name!r}.")
        return c


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}; received {value!r}.")


def preset(preset_name: str, /, **overrides) -> Config:
    """The ``Config`` of a standard configuration, with ``overrides`` applied.

    Underscores and hyphens are interchangeable in ``preset_name``.

    Raises:
        UnknownNameError: ``preset_name`` is not in ``PRESETS``.
    """
    key = str(preset_name).replace("_", "-")  # maml_omniglot_5w1s == maml-omniglot-5w1s
    if key not in PRESETS:
        raise UnknownNameError(f"Unknown preset {preset_name!r}; allowed: {describe_allowed(PRESETS)}.")
    values = dict(PRESETS[key])
    values.update(overrides)
    return Config().replace(**values)


# ====================================================================== data
def load_dataset(config: Config):
    """The ``Datasets(train, validation, test)`` of ``config.dataset``.

    Raises:
        DataNotFoundError: the dataset files are missing.
    """
    c = config
    dataset = _load(c)
    if c.train_examples_test is not None and c.train_examples_test != c.examples_test:
        dataset.train.num_examples = (c.classes * c.examples_train, c.classes * c.train_examples_test)
    return dataset


def _load(c):
    if c.dataset == "synthetic":
        side = int(c.image_size)
        return meta_synthetic(num_classes=c.classes, examples_train=c.examples_train, examples_test=c.examples_test,
                              image_shape=(side, side, 1), seed=c.seed)
    if c.dataset == "omniglot":
        return meta_omniglot(c.data_folder, std_num_classes=c.classes, examples_train=c.examples_train,
                             examples_test=c.examples_test, split=c.split)
    if c.dataset == "miniimagenet":
        return meta_mini_imagenet(c.data_folder, std_num_classes=c.classes, examples_train=c.examples_train,
                                  examples_test=c.examples_test)
    raise UnknownNameError(f"Unknown dataset {c.dataset!r}; allowed: {describe_allowed(DATASETS)}.")


# ====================================================================== graph
@dataclass
class Model:
    """The graph of a run (built by :func:`build_model`).

    Attributes:
        config: the resolved configuration.
        boml_ho: the ``BOMLOptimizer``.
        experiment: the batched ``BOMLExperiment``.
        inner_grad: the lower strategy returned by ``ll_problem``.
        accuracy: query accuracy of one task (built on the task variables).
        adapted_accuracy, adapted_loss: per-task query accuracy and loss after adapting
            each task with the training dynamics for ``config.eval_T`` steps.
        saver: ``tf.train.Saver`` over the global variables.
    """

    config: Config
    boml_ho: BOMLOptimizer
    experiment: BOMLExperiment
    inner_grad: Any
    accuracy: tf.Tensor
    adapted_accuracy: tf.Tensor
    adapted_loss: tf.Tensor
    saver: tf.train.Saver
    extras: Dict[str, tf.Tensor] = field(default_factory=dict)

    @property
    def global_step(self):
        return self.boml_ho.global_step


def build_model(config: Config, dataset) -> Model:
    """Builds the meta-learning graph of ``config`` in the default graph.

    The construction is the original README's: a meta-learner, a base learner
    per task (the MetaInit task network, or a linear head on the MetaFeat
    features), the inner objective on the support set and the outer one on the
    query set, then ``ll_problem``, ``ul_problem`` and ``aggregate_all``.

    Args:
        config: a configuration (validated here).
        dataset: the ``Datasets`` returned by :func:`load_dataset`.

    Returns:
        The :class:`Model`.
    """
    c = config.validate()
    tf.set_random_seed(c.seed)
    ex = BOMLExperiment(dataset, meta_batch_size=c.meta_batch_size)
    boml_ho = BOMLOptimizer(c.method, c.inner_method, c.outer_method, truncate_iter=c.truncate_iter)
    net_args = {"dim_hidden": (c.num_filters,) * 4} if c.num_filters else {}
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", use_t=c.use_t, use_warp=c.use_warp,
                                        **net_args)
    if c.method == "MetaInit":
        ex.model = boml_ho.base_learner(ex.x, meta_learner, name="task_net")
        query_out = ex.model.re_forward(ex.x_).out
    else:
        head_init = tf.glorot_uniform_initializer if c.xavier else tf.zeros_initializer
        features = meta_learner.re_forward(ex.x).out
        ex.model = boml_ho.base_learner(features, meta_learner, name="classifier", weights_initializer=head_init)
        query_out = ex.model.re_forward(meta_learner.re_forward(ex.x_).out).out
    inner_objective = utils.cross_entropy(ex.model.out, ex.y)
    outer_objective = utils.cross_entropy(query_out, ex.y_)
    accuracy = utils.classification_acc(query_out, ex.y_)
    ex.errors.update(training=inner_objective, validation=outer_objective)
    ex.scores["accuracy"] = accuracy

    ll_options = dict(inner_objective_optimizer=c.inner_opt, outer_objective=outer_objective,
                      learn_lr=c.learn_lr, first_order=c.first_order, momentum=c.momentum,
                      lr_granularity=c.lr_granularity)
    if c.inner_method == "Aggr":
        ll_options.update(alpha_init=c.alpha, s=c.bda_s, t=c.bda_t, learn_alpha=c.learn_alpha,
                          learn_alpha_itr=c.learn_alpha_itr, learn_st=c.learn_st)
    inner_grad = boml_ho.ll_problem(inner_objective, learning_rate=c.lr, T=c.T, experiment=ex,
                                    var_list=ex.model.var_list, **ll_options)
    boml_ho.ul_problem(outer_objective, meta_learning_rate=c.meta_lr, inner_grad=inner_grad,
                       mlr_decay=c.meta_lr_decay_rate, outer_objective_optimizer=c.outer_opt, momentum=c.momentum,
                       meta_param=tf.get_collection(extension.GraphKeys.METAPARAMETERS),
                       parallel_iterations=c.parallel_iterations)
    clip = (lambda g: tf.clip_by_value(g, -c.clip_value, c.clip_value)) if c.clip_value > 0 else None
    boml_ho.aggregate_all(gradient_clip=clip)
    adapted_accuracy, adapted_loss = boml_ho.adapted([accuracy, outer_objective], inner_grad, T=c.eval_T)
    extras = {}
    learned = boml_ho.param_dict
    if c.learn_lr:
        extras["lr"] = tf.reduce_mean(boml_ho.learning_rate)
    for key in ("alpha", "s", "t"):
        if key in learned and isinstance(learned[key], tf.Variable):
            extras[key] = tf.reduce_mean(learned[key])
    saver = tf.train.Saver(tf.global_variables(), max_to_keep=c.keep_checkpoints)
    return Model(config=c, boml_ho=boml_ho, experiment=ex, inner_grad=inner_grad, accuracy=accuracy,
                 adapted_accuracy=adapted_accuracy, adapted_loss=adapted_loss, saver=saver, extras=extras)


# ====================================================================== evaluation
def mean_ci95(values: Sequence[float]) -> Tuple[float, float, float]:
    """``(mean, ci95, std)``: the 95% confidence half-width is ``1.96 * std / sqrt(n)``.

    ``std`` is the sample standard deviation (``ddof=1``).

    Raises:
        InvalidArgumentError: ``values`` is empty.
    """
    mean, std, ci = utils.mean_std_ci(values)
    return float(mean), float(ci), float(std)


def evaluate_episodes(session, model: Model, meta_dataset, n_episodes: int, seed: int,
                      batch_size: Optional[int] = None) -> Dict[str, Any]:
    """Adapts to ``n_episodes`` fixed episodes and measures the query accuracy.

    The episodes are drawn from ``RandomState(seed)``, so the same seed gives the
    same episodes for every checkpoint. Each task is adapted with the inner
    optimizer, the (learned) step sizes and the aggregation used in training.

    Returns:
        dict with ``accuracy`` (mean), ``ci95``, ``std``, ``loss``, ``episodes``, ``T``, ``seconds``.
    """
    start = time.perf_counter()
    accuracies, losses = utils.run_on_episodes(session, [model.adapted_accuracy, model.adapted_loss],
                                               model.experiment, meta_dataset, n_episodes, seed,
                                               int(batch_size or model.config.eval_batch_size))
    mean, ci, std = mean_ci95(accuracies)
    return {"accuracy": mean, "ci95": ci, "std": std, "loss": float(np.mean(losses)), "episodes": len(accuracies),
            "T": model.config.eval_T, "seed": int(seed), "seconds": time.perf_counter() - start}


# ====================================================================== checkpoints
def latest_checkpoint(run_dir: str) -> Optional[str]:
    """The prefix of the newest checkpoint in ``run_dir`` (None if there is none)."""
    if not os.path.isdir(run_dir):
        return None
    return tf.train.latest_checkpoint(run_dir)


def checkpoint_for_iteration(run_dir: str, iteration: int) -> str:
    """The checkpoint prefix saved at ``iteration``.

    Raises:
        DataNotFoundError: no checkpoint of that iteration exists.
    """
    prefix = os.path.join(run_dir, f"ckpt-{int(iteration)}")
    if not os.path.exists(prefix + ".index"):
        available = sorted(_saved_iterations(run_dir))
        raise DataNotFoundError(
            f"No checkpoint for iteration {iteration} in {run_dir}; available iterations: {available or 'none'}."
        )
    return prefix


def _saved_iterations(run_dir):
    out = []
    if os.path.isdir(run_dir):
        for f in os.listdir(run_dir):
            if f.startswith("ckpt-") and f.endswith(".index"):
                try:
                    out.append(int(f[len("ckpt-"):-len(".index")]))
                except ValueError:
                    pass
    return out


def _sidecar(prefix):
    return prefix + ".state.pkl"


def save_checkpoint(session, model: Model, run_dir: str, state: Dict[str, Any]) -> str:
    """Saves the global variables and the Python state (episode RandomState ...) at the current step."""
    step = int(session.run(model.global_step))
    prefix = model.saver.save(session, os.path.join(run_dir, "ckpt"), global_step=step, write_meta_graph=False)
    tmp = _sidecar(prefix) + ".tmp"
    with open(tmp, "wb") as handle:
        pickle.dump(state, handle)
    os.replace(tmp, _sidecar(prefix))
    for stale in os.listdir(run_dir):  # sidecars of the checkpoints the Saver deleted
        if stale.endswith(".state.pkl"):
            base = os.path.join(run_dir, stale[:-len(".state.pkl")])
            if not os.path.exists(base + ".index"):
                os.remove(os.path.join(run_dir, stale))
    return prefix


def restore_checkpoint(session, model: Model, prefix: str) -> Dict[str, Any]:
    """Restores the variables of ``prefix`` and returns its Python state (empty dict if no sidecar)."""
    model.saver.restore(session, prefix)
    model.boml_ho.sync_step(session)
    path = _sidecar(prefix)
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as handle:
        return pickle.load(handle)


# ====================================================================== training
def _session_config(threads):
    return tf.ConfigProto(intra_op_parallelism_threads=int(threads), inter_op_parallelism_threads=0)


def _scalar_summary(values: Dict[str, float]):
    return tf.Summary(value=[tf.Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()])


def _format_seconds(seconds):
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _check_resumable(saved: Dict[str, Any], config: Config, run_dir: str):
    changed = [k for k in _STRUCTURAL if k in saved and saved[k] != getattr(config, k)]
    if changed:
        details = ", ".join(f"{k}: saved {saved[k]!r} vs now {getattr(config, k)!r}" for k in changed)
        raise InvalidArgumentError(
            f"Cannot resume {run_dir}: the configuration changed ({details}). Use another --name or logdir, "
            f"or --no-resume to start over."
        )


def train(config: Config, dataset=None, log=None) -> Dict[str, Any]:
    """Meta-trains ``config`` (resuming from its run directory), then evaluates it on the test split.

    Args:
        config: the configuration.
        dataset: optional pre-loaded ``Datasets`` (default: :func:`load_dataset`).
        log: callable receiving progress lines (default: ``logging`` at INFO).

    Returns:
        The results dict also written to ``<run_dir>/results.json``.

    Raises:
        DivergenceError: a loss became NaN or infinite (the last checkpoint is kept).
    """
    c = config.validate()
    log = log or LOGGER.info
    run_dir = c.run_dir
    os.makedirs(run_dir, exist_ok=True)
    config_path = os.path.join(run_dir, "config.json")
    prefix = latest_checkpoint(run_dir) if c.resume else None
    if prefix and os.path.exists(config_path):
        with open(config_path) as handle:
            _check_resumable(json.load(handle), c, run_dir)
    if not c.resume:
        for f in os.listdir(run_dir):
            if f.startswith("ckpt-") or f == "checkpoint":
                os.remove(os.path.join(run_dir, f))
    _write_json(config_path, c.to_dict())
    dataset = dataset if dataset is not None else load_dataset(c)

    graph = tf.Graph()
    with graph.as_default():
        model = build_model(c, dataset)
        init = tf.global_variables_initializer()
        graph.finalize()
    writer = tf.summary.FileWriter(run_dir)
    wall_start = time.perf_counter()
    with tf.Session(graph=graph, config=_session_config(c.threads)) as sess:
        sess.run(init)
        state = {"rand": np.random.RandomState(c.seed).get_state(), "train_seconds": 0.0, "history": [],
                 "running": {}}
        if prefix:
            state.update(restore_checkpoint(sess, model, prefix))
            log(f"resumed from {prefix} at iteration {int(sess.run(model.global_step))}")
        model.boml_ho.sync_step(sess)
        rand = np.random.RandomState()
        rand.set_state(state["rand"])
        running = dict(state["running"])
        step = int(sess.run(model.global_step))
        start_step, train_seconds = step, float(state["train_seconds"])
        budget = None if c.max_minutes is None else 60.0 * c.max_minutes
        last_saved = step if prefix else None
        tick, tick_step = time.perf_counter(), step

        def checkpoint():
            state.update(rand=rand.get_state(), train_seconds=train_seconds, running=dict(running))
            return save_checkpoint(sess, model, run_dir, state)

        while step < c.meta_train_iterations and (budget is None or train_seconds < budget):
            t0 = time.perf_counter()
            episodes = dataset.train.generate_batch(c.meta_batch_size, rand=rand)
            inner_fd, outer_fd = model.experiment.feed_dicts(episodes)
            try:
                losses = model.boml_ho.run(inner_fd, outer_fd, session=sess)
            except Exception:
                if last_saved is None or last_saved != step:
                    log(f"meta-iteration {step + 1} failed; the last checkpoint is kept")
                raise
            step += 1
            train_seconds += time.perf_counter() - t0
            for key, value in losses.items():
                running[key] = value if key not in running else 0.95 * running[key] + 0.05 * value
            scalars = {f"train/{k}": v for k, v in losses.items()}
            if c.print_interval and (step % c.print_interval == 0 or step == c.meta_train_iterations):
                acc = sess.run(model.adapted_accuracy, {**inner_fd, **outer_fd})
                acc = float(np.mean(acc))
                running["accuracy"] = acc if "accuracy" not in running else 0.7 * running["accuracy"] + 0.3 * acc
                now = time.perf_counter()
                speed = (step - tick_step) / max(now - tick, 1e-9)
                tick, tick_step = now, step
                remaining = c.meta_train_iterations - step
                eta = remaining / speed if speed > 0 else float("inf")
                if budget is not None:
                    eta = min(eta, max(budget - train_seconds, 0.0))
                extras = sess.run(model.extras) if model.extras else {}
                extra_text = "".join(f" {k} {float(v):.4g}" for k, v in extras.items())
                log(f"it {step}/{c.meta_train_iterations} | {speed:.2f} it/s | ETA {_format_seconds(eta)} | "
                    f"outer loss {running['outer_loss']:.4f} | inner loss {running['inner_loss']:.4f} | "
                    f"train acc {running['accuracy']:.3f} | time {_format_seconds(train_seconds)}{extra_text}")
                scalars.update({"train/accuracy": acc, "speed/iterations_per_second": speed,
                                **{f"learned/{k}": float(v) for k, v in extras.items()}})
            if c.val_interval and step % c.val_interval == 0 and dataset.validation is not None:
                val = evaluate_episodes(sess, model, dataset.validation, c.val_episodes, c.test_seed + 1)
                state["history"].append({"iteration": step, "train_seconds": train_seconds,
                                         "val_accuracy": val["accuracy"], "val_ci95": val["ci95"],
                                         "outer_loss": running["outer_loss"]})
                log(f"it {step} | validation accuracy {val['accuracy']:.4f} +- {val['ci95']:.4f} "
                    f"({val['episodes']} episodes, {val['seconds']:.1f}s)")
                scalars.update({"validation/accuracy": val["accuracy"], "validation/loss": val["loss"]})
                tick = time.perf_counter()  # validation time does not count in the speed
            writer.add_summary(_scalar_summary(scalars), step)
            if c.save_interval and step % c.save_interval == 0:
                checkpoint()
                last_saved = step
        if last_saved != step:
            checkpoint()
        stopped = "budget" if step < c.meta_train_iterations else "iterations"
        log(f"meta-training stopped at iteration {step} ({stopped}) after {_format_seconds(train_seconds)} "
            f"of meta-training; evaluating on {c.test_episodes} test episodes")
        test = evaluate_episodes(sess, model, dataset.test, c.test_episodes, c.test_seed)
        writer.add_summary(_scalar_summary({"test/accuracy": test["accuracy"], "test/ci95": test["ci95"]}), step)
        learned = {k: float(v) for k, v in sess.run(model.extras).items()} if model.extras else {}
    writer.close()
    log(f"test accuracy {100 * test['accuracy']:.2f}% +- {100 * test['ci95']:.2f}% over {test['episodes']} "
        f"episodes (T={test['T']})")
    results = {
        "config": c.to_dict(),
        "iterations": step,
        "iterations_this_session": step - start_step,
        "stopped_by": stopped,
        "train_seconds": train_seconds,
        "wall_seconds_this_session": time.perf_counter() - wall_start,
        "seconds_per_iteration": train_seconds / step if step else None,
        "final_running": running,
        "learned": learned,
        "test": test,
        "history": state["history"],
        "checkpoint": latest_checkpoint(run_dir),
        "run_dir": os.path.abspath(run_dir),
    }
    _write_json(os.path.join(run_dir, "results.json"), results)
    return results


def load_run_config(run_dir: str) -> Config:
    """The configuration saved in ``run_dir/config.json``.

    Raises:
        DataNotFoundError: the run directory has no ``config.json``.
    """
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise DataNotFoundError(f"{run_dir} has no config.json; give the directory of a `boml train` run.")
    with open(path) as handle:
        return Config.from_dict(json.load(handle))


def evaluate(run_dir: str, iterations: Optional[Sequence[int]] = None, test_episodes: Optional[int] = None,
             T_test: Optional[int] = None, split: str = "test", dataset=None, log=None,
             **overrides) -> Dict[str, Any]:
    """Evaluates the checkpoints of a run on fixed episodes and writes ``evaluation.json``.

    Args:
        run_dir: the directory of a ``train`` run.
        iterations: checkpoint iterations to evaluate (default: the latest).
        test_episodes: number of episodes (default: the run's ``test_episodes``).
        T_test: adaptation steps (default: the run's).
        split: ``"test"`` or ``"validation"``.
        dataset: optional pre-loaded ``Datasets``.
        log: progress callable.
        **overrides: other configuration changes (e.g. ``data_folder``, ``eval_batch_size``).

    Returns:
        ``{"config": ..., "results": [{"iteration": i, "accuracy": ..., "ci95": ...}, ...]}``.
    """
    log = log or LOGGER.info
    if split not in ("test", "validation"):
        raise InvalidArgumentError(f"split must be 'test' or 'validation'; received {split!r}.")
    changes = dict(overrides)
    if test_episodes is not None:
        changes["test_episodes"] = test_episodes
    if T_test is not None:
        changes["T_test"] = T_test
    c = load_run_config(run_dir).replace(**changes).validate()
    if iterations:
        prefixes = [checkpoint_for_iteration(run_dir, i) for i in iterations]
    else:
        prefix = latest_checkpoint(run_dir)
        if prefix is None:
            raise DataNotFoundError(f"{run_dir} has no checkpoint to evaluate; train first.")
        prefixes = [prefix]
    dataset = dataset if dataset is not None else load_dataset(c)
    meta_dataset = getattr(dataset, split)
    if meta_dataset is None:
        raise InvalidArgumentError(f"The {c.dataset} dataset has no {split} split.")
    graph = tf.Graph()
    with graph.as_default():
        model = build_model(c, dataset)
        graph.finalize()
    rows = []
    with tf.Session(graph=graph, config=_session_config(c.threads)) as sess:
        for prefix in prefixes:
            restore_checkpoint(sess, model, prefix)
            iteration = int(sess.run(model.global_step))
            seed = c.test_seed if split == "test" else c.test_seed + 1
            row = evaluate_episodes(sess, model, meta_dataset, c.test_episodes, seed)
            row["iteration"] = iteration
            rows.append(row)
            log(f"iteration {iteration}: {split} accuracy {100 * row['accuracy']:.2f}% +- "
                f"{100 * row['ci95']:.2f}% ({row['episodes']} episodes, T={row['T']}, {row['seconds']:.1f}s)")
    out = {"config": c.to_dict(), "split": split, "results": rows}
    _write_json(os.path.join(run_dir, "evaluation.json"), out)
    return out


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(obj, handle, indent=2, default=_json_default)
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


__all__ = ["ALGORITHMS", "PRESETS", "Config", "Model", "preset", "load_dataset", "build_model", "train",
           "evaluate", "evaluate_episodes", "mean_ci95", "latest_checkpoint", "checkpoint_for_iteration",
           "save_checkpoint", "restore_checkpoint", "load_run_config"]
