"""Data hyper-cleaning on MNIST (Franceschi et al., ICML 2017, section 5.1) with seven hypergradient methods.

A training set whose labels are partly corrupted is cleaned by learning one
weight per training example. With ``lambda_i`` in ``[0, 1]`` weighting the loss of
example ``i``, softmax-regression parameters ``w = (W, b)`` and the lower
dynamics ``w_T(lambda)`` (T steps of heavy-ball gradient descent from ``w_0 = 0``)::

    lower:  f(w, lambda) = 1/n * sum_i lambda_i * CE(x_i W + b, y~_i)       (noisy training set)
    upper:  min_lambda  F(lambda) = CE_valid(w_T(lambda))                    (clean validation set)

Examples whose corrupted label conflicts with the validation set get their
weight pushed to 0, so ``lambda_i ~ 0`` detects the corrupted examples.

Constraint: after every outer (Adam) step the weights are projected onto
``[0, 1]^n`` (optionally intersected with the l1 ball ``sum_i lambda_i <= R``, as
in the original experiment) by an assign op run right after the meta-update
(``HyperCleaner.step``). Projection rather than a sigmoid parametrization: it
gives exact zeros, so "weight < 1e-3" is a meaningful detector, and it leaves
the hypergradient undistorted (a sigmoid's derivative vanishes as a weight
approaches 0 or 1). ``tf.train`` optimizers ignore a variable's ``constraint``
outside Keras, hence the explicit assign.

Evaluation ("final round", as in the paper): a softmax regression is trained
from scratch on the training set weighted by the learned ``lambda`` together
with the clean validation set (weight 1), by ``final_T`` steps of heavy-ball
gradient descent, and its test accuracy is reported. The baseline trains the
same model on training + validation without cleaning (all weights 1), the
oracle with the corrupted examples removed (their weight 0).

Methods (``METHODS``): RHG (``Trad``/``Reverse``), TRHG (``Reverse`` with
``truncate_iter``), Implicit (HOAG, ``solver="cg"``), Neumann (``Implicit`` with
``solver="neumann"``), FixedPoint (``Implicit`` with ``solver="fixed_point"``), BDA
(``Aggr``/``Reverse``) and Darts, all with the same lower dynamics, meta-optimizer
and number of meta-iterations. Forward mode is not offered: it propagates one
tangent per hyperparameter, and there are 5000 of them.

The three implicit methods share the hypergradient at ``w_T``::

    dF/dlambda = - (d grad_w f / d lambda)^T q,    H q = grad_w F(w_T),    H = Hessian of f at w_T,

and differ in how ``q`` is found:

* Implicit: conjugate gradient, at most ``cg_max_iter = 30`` Hessian-vector products,
  tolerance ``1e-4`` (Pedregosa, 2016).
* Neumann: ``q = sum_{j=0..K} (I - alpha H)^j alpha grad_w F`` with ``K = neumann_terms = 30``
  products (CG's budget) and ``alpha = neumann_alpha = 0.25`` (Lorraine et al., 2020). The series
  converges for ``alpha < 2 / lambda_max(H)``; on this data ``lambda_max(H)`` at ``w_T`` is about
  1.9 with every weight 0.5 and 3.9 with every weight 1 (power iteration, float64), and it grows
  with the weights, which stay in ``[0, 1]``. ``alpha = 0.25 ~ 1 / 3.9`` keeps every factor
  ``1 - alpha * lambda`` in ``[0, 1)`` for any weights, so the series never overshoots, and it
  reaches the directions of small curvature 2.5 times faster than the library default (the inner
  step 0.1). The Momentum run's effective step ``lr / (1 - momentum) = 1`` would diverge. Every
  solve takes exactly K products: no tolerance, hence no ``solver_failure`` report.
* FixedPoint: the hypergradient of the fixed point of the real heavy-ball update (parameters
  and momentum buffer), by ``w <- grad F + (d Phi / d z)^T w`` (Grazzi et al., 2020): no step to
  choose, and the Momentum dynamics are differentiated as they are. Its contraction factor is
  ``sqrt(momentum) ~ 0.95`` in every direction of curvature above ``(1 - sqrt(0.9))^2 / lr ~ 0.03``
  (slower below), hence ``fixed_point_max_iter = 100`` products (``0.95^100 ~ 0.005``) and the
  tolerance ``1e-4`` of CG.

CG and FixedPoint solves that stop above their tolerance are counted (``solver_failures``, the
meta-iterations with such a solve, and ``solver_iterations``, the mean products per solve) and,
with ``solver_failure="warn"`` (default), reported by a ``SolverWarning``.

The script prints, for every method plus the baseline and the oracle: the test
accuracy of the final-round model, the F1 score of "weight < 1e-3" as a
detector of the corrupted examples, the wall and CPU time of the
hyper-optimization and the peak resident memory (:mod:`boml.memory`). Each
method runs in a fresh process so the memory figures do not mix::

    python examples/hyper_cleaning.py                          # everything, default settings
    python examples/hyper_cleaning.py --methods RHG --hyper-iterations 30
    python examples/hyper_cleaning.py --mnist /path/to/mnist --seed 1 --T 100
    python examples/hyper_cleaning.py --download                # fetch MNIST first if it is missing

MNIST is read from --mnist, else from ``mnist/`` in the datasets folder (``$DATASETS_FOLDER``, else
``~/.boml/datasets``); ``python -m boml data fetch mnist`` puts it there. The pieces can also be used
from Python (``prepare_data``, ``CleaningConfig``, ``HyperCleaner``, ``run_method``, ``run_reference``).

This was ``boml.hyperclean`` before it moved out of the library (it is an experiment, not library code).

References:
    Franceschi, Donini, Frasconi and Pontil, "Forward and Reverse Gradient-Based
    Hyperparameter Optimization", ICML 2017 (section 5.1, data hyper-cleaning).
"""
import argparse
import dataclasses
import multiprocessing
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import boml  # noqa: E402
from boml import extension  # noqa: E402
from boml.errors import BOMLError, DataError, InvalidArgumentError, UnknownNameError, describe_allowed  # noqa: E402
from boml.load_data.datasets.downloads import locate_dataset  # noqa: E402
from boml.memory import current_memory_mb, peak_memory_mb, reset_peak_memory  # noqa: E402
from boml.upper_iter.implicit import ImplicitOptions  # noqa: E402
from boml.upper_iter.solvers import FAILURE_MODES  # noqa: E402

NUM_CLASSES = 10


# ===================================================================================== data
@dataclasses.dataclass
class CleaningData:
    """The three sets of the hyper-cleaning problem (numpy arrays).

    Attributes:
        x_train, y_train: training images (n, 784) and their one-hot labels, of
            which ``corrupted`` ones were replaced by a different random class.
        clean_labels: the true labels of the training examples (int, (n,)).
        corrupted: boolean mask (n,), True where the label was replaced.
        x_valid, y_valid: clean validation set (one-hot labels).
        x_test, y_test: clean test set (one-hot labels).
        seed: the seed the split and the corruption were drawn with.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    clean_labels: np.ndarray
    corrupted: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int = 0

    @property
    def n_train(self):
        return int(self.x_train.shape[0])

    def describe(self):
        return (f"{self.n_train} training examples ({int(self.corrupted.sum())} corrupted), "
                f"{self.x_valid.shape[0]} validation, {self.x_test.shape[0]} test (seed {self.seed})")


def _one_hot(labels, dtype):
    out = np.zeros((labels.shape[0], NUM_CLASSES), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def prepare_data(folder=None, n_train=5000, n_valid=5000, n_test=10000, corruption=0.5, seed=0,
                 dtype=np.float32, download=False):
    """Loads MNIST and builds the hyper-cleaning split.

    Training and validation examples are disjoint, drawn (with ``seed``) from the
    60,000 official training images; the test examples are the first
    ``n_test`` official test images. A fraction ``corruption`` of the training
    examples (chosen with ``seed``) get a label drawn uniformly among the nine
    *other* classes.

    Args:
        folder: the folder of the four MNIST IDX files (default: ``mnist/`` in the datasets folder,
            ``$DATASETS_FOLDER`` else ``~/.boml/datasets``; see ``boml.mnist``).
        n_train: training examples (5000 in the paper).
        n_valid: clean validation examples (5000 in the paper).
        n_test: test examples, at most 10,000.
        corruption: fraction of training labels replaced (0.5 in the paper).
        seed: seed of the split and of the corruption.
        dtype: floating type of the images and one-hot labels.
        download: fetch MNIST (sha256-verified) when it is not found, like ``python -m boml data fetch mnist``.

    Returns:
        A ``CleaningData``.

    Raises:
        InvalidArgumentError: sizes or ``corruption`` out of range.
        DataNotFoundError, DataError: the MNIST files are missing or corrupt.
    """
    from boml.load_data import mnist

    for name, value in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidArgumentError(f"{name} must be a positive integer; received {value!r}.")
    if n_train + n_valid > 60000 or n_test > 10000:
        raise InvalidArgumentError(
            f"MNIST has 60,000 training and 10,000 test images; received n_train + n_valid = {n_train + n_valid} "
            f"and n_test = {n_test}."
        )
    if not 0.0 <= float(corruption) <= 1.0:
        raise InvalidArgumentError(f"corruption must be a fraction in [0, 1]; received {corruption!r}.")
    datasets = mnist(folder, one_hot=False, validation_size=0, download=download)
    x_all, labels_all = datasets.train.data, datasets.train.target
    if x_all.shape[0] < n_train + n_valid:
        raise DataError(f"The MNIST training set in {datasets.train.info['base_folder']} has only {x_all.shape[0]} "
                        f"images; n_train + n_valid = {n_train + n_valid} were asked for. Ask for fewer.")
    rng = np.random.RandomState(seed)
    order = rng.permutation(x_all.shape[0])
    train_idx, valid_idx = order[:n_train], order[n_train:n_train + n_valid]
    clean = labels_all[train_idx].astype(np.int64)
    corrupted = np.zeros(n_train, dtype=bool)
    corrupted[rng.permutation(n_train)[:int(round(corruption * n_train))]] = True
    noisy = clean.copy()
    noisy[corrupted] = (clean[corrupted] + rng.randint(1, NUM_CLASSES, size=int(corrupted.sum()))) % NUM_CLASSES
    x_test, labels_test = datasets.test.data[:n_test], datasets.test.target[:n_test]
    return CleaningData(
        x_train=x_all[train_idx].astype(dtype), y_train=_one_hot(noisy, dtype), clean_labels=clean,
        corrupted=corrupted, x_valid=x_all[valid_idx].astype(dtype),
        y_valid=_one_hot(labels_all[valid_idx].astype(np.int64), dtype), x_test=x_test.astype(dtype),
        y_test=_one_hot(labels_test.astype(np.int64), dtype), seed=int(seed))


# ===================================================================================== configuration
@dataclasses.dataclass
class CleaningConfig:
    """Settings shared by every method (defaults: the packaged benchmark).

    Attributes:
        T: inner gradient steps per meta-iteration.
        inner_lr: inner step size.
        inner_optimizer: ``"SGD"``, ``"Momentum"`` or ``"Adam"``.
        inner_momentum: momentum of the ``Momentum`` inner optimizer.
        hyper_iterations: number of meta-iterations.
        meta_lr: step size of the outer Adam optimizer.
        initial_weight: starting value of every ``lambda_i``.
        l1_radius: optional R of the constraint ``sum lambda <= R`` (None: box only).
        truncate_iter: K of TRHG (back-propagation through the last K steps).
        bda_alpha, bda_s, bda_t: BDA aggregation weights.
        cg_max_iter, cg_damping, cg_tolerance: Implicit (HOAG) conjugate gradient
            (``cg_damping`` also damps the Hessian of Neumann).
        neumann_terms, neumann_alpha: Neumann: ``K`` Hessian-vector products and the step
            ``alpha`` of the series (None: the inner step size).
        fixed_point_max_iter, fixed_point_tolerance: FixedPoint: maximum vector-Jacobian
            products of the inner update, and the tolerance on ``||w_new - w||``.
        solver_failure: Implicit and FixedPoint: ``"warn"``, ``"raise"`` or ``"ignore"``
            when a solve stops above its tolerance (``ul_problem(solver_failure=...)``).
        darts_epsilon: DARTS finite-difference scale.
        final_T, final_lr, final_momentum: the final-round training (momentum
            gradient descent on training + validation).
        threshold: a weight below it counts as "removed" for the F1 score.
        dtype: ``"float32"`` (fast) or ``"float64"``.
        intra_threads: TensorFlow intra-op threads (0: default).
    """

    T: int = 100
    inner_lr: float = 0.1
    inner_optimizer: str = "Momentum"
    inner_momentum: float = 0.9
    hyper_iterations: int = 50
    meta_lr: float = 0.03
    initial_weight: float = 0.5
    l1_radius: float = None
    truncate_iter: int = 25
    bda_alpha: float = 0.5
    bda_s: float = 1.0
    bda_t: float = 1.0
    cg_max_iter: int = 30
    cg_damping: float = 0.0
    cg_tolerance: float = 1e-4
    neumann_terms: int = 30
    neumann_alpha: float = 0.25
    fixed_point_max_iter: int = 100
    fixed_point_tolerance: float = 1e-4
    solver_failure: str = "warn"
    darts_epsilon: float = 0.01
    final_T: int = 1000
    final_lr: float = 0.1
    final_momentum: float = 0.9
    threshold: float = 1e-3
    dtype: str = "float32"
    intra_threads: int = 0

    def __post_init__(self):
        for name in ("T", "hyper_iterations", "final_T"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidArgumentError(f"CleaningConfig.{name} must be a positive integer; received {value!r}.")
        if not 0.0 <= self.initial_weight <= 1.0:
            raise InvalidArgumentError(
                f"CleaningConfig.initial_weight must lie in [0, 1] (the constraint set); received "
                f"{self.initial_weight!r}."
            )
        if self.l1_radius is not None and not self.l1_radius > 0:
            raise InvalidArgumentError(f"CleaningConfig.l1_radius must be None or > 0; received {self.l1_radius!r}.")
        # The solver settings are checked by the strategy's own options, one solver at a time.
        ImplicitOptions(solver="cg", cg_max_iter=self.cg_max_iter, cg_damping=self.cg_damping,
                        tolerance=self.cg_tolerance, solver_failure=self.solver_failure).validate("CleaningConfig.cg_*")
        ImplicitOptions(solver="neumann", neumann_terms=self.neumann_terms, neumann_alpha=self.neumann_alpha,
                        cg_damping=self.cg_damping).validate("CleaningConfig.neumann_*")
        ImplicitOptions(solver="fixed_point", fixed_point_max_iter=self.fixed_point_max_iter,
                        tolerance=self.fixed_point_tolerance,
                        solver_failure=self.solver_failure).validate("CleaningConfig.fixed_point_*")
        if self.dtype not in ("float32", "float64"):
            raise InvalidArgumentError(f"CleaningConfig.dtype must be 'float32' or 'float64'; received {self.dtype!r}.")
        for name in ("inner_lr", "meta_lr", "final_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise InvalidArgumentError(f"CleaningConfig.{name} must be a positive number; received {value!r}.")

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


#: method name -> (inner_method, outer_method, description)
METHODS = {
    "RHG": ("Trad", "Reverse", "reverse-mode hypergradient through all T steps"),
    "TRHG": ("Trad", "Reverse", "reverse mode through the last K steps only (truncate_iter=K)"),
    "Implicit": ("Trad", "Implicit", "HOAG: implicit-function hypergradient at w_T, CG solve"),
    "Neumann": ("Trad", "Implicit", "implicit hypergradient at w_T, truncated Neumann series (K terms, step alpha)"),
    "FixedPoint": ("Trad", "Implicit", "implicit hypergradient of the fixed point of the real Momentum update"),
    "BDA": ("Aggr", "Reverse", "BDA dynamics (lower and upper gradients mixed), reverse mode"),
    "Darts": ("Trad", "Darts", "one-step finite-difference approximation"),
}

#: reference runs without hyperparameter optimization: name -> description
REFERENCES = {
    "baseline": "train + validation, no cleaning (all weights 1)",
    "oracle": "train + validation, corrupted examples removed",
}


def _session_config(config):
    if not config.intra_threads:
        return None
    return tf.ConfigProto(intra_op_parallelism_threads=config.intra_threads, inter_op_parallelism_threads=1)


# ===================================================================================== projection
def project_weights(weights, radius=None, bisection_steps=60):
    """Euclidean projection onto ``[0, 1]^n`` (intersected with ``sum <= radius`` if given).

    The box-and-l1 projection is ``clip(v - tau, 0, 1)`` with the smallest
    ``tau >= 0`` that satisfies the budget, found by bisection in the graph.

    Args:
        weights: a 1-D floating tensor.
        radius: None, or the l1 budget ``R > 0``.
        bisection_steps: bisection iterations for ``tau``.

    Returns:
        The projected tensor.
    """
    clipped = tf.clip_by_value(weights, 0.0, 1.0)
    if radius is None:
        return clipped
    dtype = weights.dtype.base_dtype
    radius = tf.constant(radius, dtype)

    def total(tau):
        return tf.reduce_sum(tf.clip_by_value(weights - tau, 0.0, 1.0))

    def body(k, low, high):
        mid = 0.5 * (low + high)
        above = total(mid) > radius
        return k + 1, tf.where(above, mid, low), tf.where(above, high, mid)

    low, high = tf.zeros([], dtype), tf.reduce_max(tf.abs(weights)) + 1.0
    _, _, high = tf.while_loop(lambda k, *_: k < bisection_steps, body, [tf.constant(0), low, high])
    return tf.where(tf.reduce_sum(clipped) <= radius, clipped, tf.clip_by_value(weights - high, 0.0, 1.0))


# ===================================================================================== metrics
def detection_scores(weights, corrupted, threshold=1e-3):
    """Precision, recall and F1 of "weight below ``threshold``" as a detector of corrupted examples.

    Args:
        weights: the learned weights (n,).
        corrupted: boolean mask (n,), True for corrupted examples (the positives).
        threshold: weights strictly below it are flagged.

    Returns:
        dict with ``precision``, ``recall``, ``f1``, ``flagged`` (number of flagged examples).
    """
    weights, corrupted = np.asarray(weights), np.asarray(corrupted, dtype=bool)
    if weights.shape != corrupted.shape:
        raise InvalidArgumentError(f"weights {weights.shape} and corrupted {corrupted.shape} must have one "
                                   f"entry per training example.")
    flagged = weights < threshold
    tp = int(np.sum(flagged & corrupted))
    precision = tp / max(int(flagged.sum()), 1)
    recall = tp / max(int(corrupted.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "flagged": int(flagged.sum())}


def _logits(x, W, b):
    return tf.matmul(x, W) + b


def _accuracy(logits, labels):
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), tf.argmax(labels, 1)), tf.float32))


def train_weighted_softmax(x, y, weights, steps, lr, momentum=0.9, x_eval=None, y_eval=None, dtype="float32",
                           session_config=None):
    """Trains a softmax regression on ``mean_i weights_i * CE_i`` by full-batch (momentum) gradient descent.

    Heavy-ball update from ``W = 0, b = 0``: ``m <- momentum * m + g``, ``w <- w - lr * m``.
    The whole run is one ``tf.while_loop`` in a graph of its own.

    Args:
        x, y: inputs (n, d) and one-hot labels (n, classes).
        weights: per-example weights (n,).
        steps: gradient steps.
        lr: step size.
        momentum: heavy-ball momentum (0: plain gradient descent).
        x_eval, y_eval: optional set whose accuracy is returned.
        dtype: floating type of the computation.
        session_config: optional ``tf.ConfigProto``.

    Returns:
        ``(W, b, accuracy)``: numpy parameters and the accuracy on the eval set (None without one).
    """
    dtype = tf.as_dtype(dtype)
    with tf.Graph().as_default() as graph:
        xs = tf.placeholder(dtype, x.shape)
        ys = tf.placeholder(dtype, y.shape)
        ws = tf.placeholder(dtype, [x.shape[0]])
        zero = [tf.zeros([x.shape[1], y.shape[1]], dtype), tf.zeros([y.shape[1]], dtype)]

        def body(k, W, b, mW, mb):
            loss = tf.reduce_mean(ws * tf.nn.softmax_cross_entropy_with_logits_v2(labels=ys, logits=_logits(xs, W, b)))
            gW, gb = tf.gradients(loss, [W, b])
            mW, mb = momentum * mW + gW, momentum * mb + gb
            return k + 1, W - lr * mW, b - lr * mb, mW, mb

        _, W, b, _, _ = tf.while_loop(lambda k, *_: k < steps, body, [tf.constant(0)] + zero + zero)
        feed = {xs: x, ys: y, ws: np.asarray(weights, dtype.as_numpy_dtype)}
        accuracy = None
        if x_eval is not None:
            xe = tf.placeholder(dtype, x_eval.shape)
            ye = tf.placeholder(dtype, y_eval.shape)
            accuracy = _accuracy(_logits(xe, W, b), ye)
            feed.update({xe: x_eval, ye: y_eval})
        with tf.Session(graph=graph, config=session_config) as sess:
            if accuracy is None:
                W_value, b_value = sess.run([W, b], feed)
                return W_value, b_value, None
            W_value, b_value, acc = sess.run([W, b, accuracy], feed)
    return W_value, b_value, float(acc)


def final_round(data, train_weights, config):
    """Test accuracy of the model trained on training (weighted) + validation (weight 1) examples."""
    x = np.concatenate([data.x_train, data.x_valid])
    y = np.concatenate([data.y_train, data.y_valid])
    weights = np.concatenate([np.asarray(train_weights, np.float64), np.ones(data.x_valid.shape[0])])
    _, _, acc = train_weighted_softmax(x, y, weights, config.final_T, config.final_lr, config.final_momentum,
                                       data.x_test, data.y_test, config.dtype, _session_config(config))
    return acc


# ===================================================================================== the bilevel problem
def upper_options(method, config):
    """The ``ul_problem`` options of ``method`` (each strategy and solver takes only its own).

    Args:
        method: a key of ``METHODS``.
        config: a ``CleaningConfig``.

    Returns:
        dict of keyword arguments for ``BOMLOptimizer.ul_problem``.
    """
    if method == "Darts":
        return {"epsilon": config.darts_epsilon}
    if method == "Implicit":
        tolerance = config.cg_tolerance
        return {"solver": "cg", "tolerance": lambda k: tolerance, "cg_max_iter": config.cg_max_iter,
                "cg_damping": config.cg_damping, "solver_failure": config.solver_failure}
    if method == "Neumann":
        return {"solver": "neumann", "neumann_terms": config.neumann_terms, "neumann_alpha": config.neumann_alpha,
                "cg_damping": config.cg_damping}
    if method == "FixedPoint":
        tolerance = config.fixed_point_tolerance
        return {"solver": "fixed_point", "tolerance": lambda k: tolerance,
                "fixed_point_max_iter": config.fixed_point_max_iter, "solver_failure": config.solver_failure}
    return {}


class HyperCleaner:
    """The hyper-cleaning bilevel problem built with ``BOMLOptimizer`` for one method.

    The graph is built in a new ``tf.Graph`` (``self.graph``) with the data held
    in non-trainable variables; ``step()`` runs one meta-iteration (lower
    dynamics, hypergradient and Adam update of the weights in one
    ``session.run``) followed by the projection of the weights onto the
    constraint set.

    Args:
        data: a ``CleaningData``.
        method: a key of ``METHODS``.
        config: a ``CleaningConfig``.

    Attributes:
        weights: the meta-parameter ``lambda`` (a variable of shape (n,)).
        boml_ho: the ``BOMLOptimizer``.
    """

    def __init__(self, data, method, config=None):
        if method not in METHODS:
            raise UnknownNameError(f"Unknown hyper-cleaning method {method!r}; allowed: {describe_allowed(METHODS)}.")
        self.config = config = config or CleaningConfig()
        self.method = method
        self.data = data
        inner_method, outer_method, _ = METHODS[method]
        dtype = tf.as_dtype(config.dtype)
        np_dtype = dtype.as_numpy_dtype
        self.graph = tf.Graph()
        with self.graph.as_default():
            self._inits = {}
            x_train, y_train, x_valid, y_valid, x_test, y_test = (
                self._constant(name, np.asarray(getattr(data, name), np_dtype))
                for name in ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test"))
            dim, classes = data.x_train.shape[1], data.y_train.shape[1]
            W = tf.get_variable("W", initializer=tf.zeros([dim, classes], dtype), trainable=False)
            b = tf.get_variable("b", initializer=tf.zeros([classes], dtype), trainable=False)
            self.weights = extension.get_outerparameter(
                "example_weights", np.full(data.n_train, config.initial_weight, np_dtype))
            train_ce = tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_train, logits=_logits(x_train, W, b))
            inner = tf.reduce_mean(self.weights * train_ce)
            outer = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_valid,
                                                                              logits=_logits(x_valid, W, b)))
            truncate = config.truncate_iter if method == "TRHG" else -1
            self.boml_ho = boml.BOMLOptimizer("MetaFeat", inner_method, outer_method, truncate_iter=truncate)
            ll = {"inner_objective_optimizer": config.inner_optimizer}
            if config.inner_optimizer == "Momentum":
                ll["momentum"] = config.inner_momentum
            if inner_method == "Aggr":
                ll.update(outer_objective=outer, alpha_init=config.bda_alpha, s=config.bda_s, t=config.bda_t)
            inner_grad = self.boml_ho.ll_problem(inner, config.inner_lr, config.T, var_list=[W, b], **ll)
            self.boml_ho.ul_problem(outer, config.meta_lr, inner_grad, meta_param=[self.weights], mlr_decay=0.0,
                                    outer_objective_optimizer="Adam", **upper_options(method, config))
            self.boml_ho.aggregate_all()
            self.project = tf.assign(self.weights, project_weights(self.weights, config.l1_radius))
            self.test_accuracy = self.boml_ho.adapted(_accuracy(_logits(x_test, W, b), y_test))[0]
            self.session = tf.Session(graph=self.graph, config=_session_config(config))
            self.session.run(tf.global_variables_initializer(), feed_dict=self._inits)
            self.graph.finalize()

    def _constant(self, name, array):
        placeholder = tf.placeholder(array.dtype, array.shape, name=f"{name}_value")
        self._inits[placeholder] = array
        return tf.Variable(placeholder, trainable=False, name=name).read_value()

    def step(self):
        """One meta-iteration then the projection; returns the losses of ``BOMLOptimizer.run``."""
        losses = self.boml_ho.run(session=self.session)
        self.session.run(self.project)
        return losses

    def solver_records(self):
        """The implicit methods' solve of the last meta-iteration (``SolverMonitor.last_records``), else []."""
        monitor = getattr(self.boml_ho.outergradient, "monitor", None)
        return list(monitor.last_records) if monitor is not None else []

    def current_weights(self):
        return self.session.run(self.weights)

    def inner_test_accuracy(self):
        """Test accuracy of the model after T inner steps on the weighted training set."""
        return float(self.session.run(self.test_accuracy))

    def close(self):
        self.session.close()


# ===================================================================================== runs
def run_method(method, data, config=None, log_every=0, log=print):
    """Runs one hyper-cleaning method end to end and measures it.

    Args:
        method: a key of ``METHODS``.
        data: a ``CleaningData``.
        config: a ``CleaningConfig`` (default settings if None).
        log_every: print progress every that many meta-iterations (0: never).
        log: the printing function.

    Returns:
        dict with ``method``, ``test_accuracy`` (final round), ``inner_test_accuracy``
        (model after T steps on the weighted training set), ``f1``, ``precision``,
        ``recall``, ``flagged``, ``valid_loss`` (last outer loss), ``build_seconds``,
        ``seconds`` (wall time of graph building and hyper-optimization),
        ``cpu_seconds`` (its process CPU time, less sensitive to other load),
        ``final_seconds``, ``peak_mb`` (peak resident memory of the process from
        the start of this run, final round excluded), ``base_mb`` (resident memory
        at the start) and ``weights``; the implicit methods add ``solver_iterations`` (mean
        products per solve) and ``solver_failures`` (meta-iterations whose solve stopped above
        its tolerance; always 0 for Neumann, which has none).
    """
    config = config or CleaningConfig()
    reset_peak_memory()
    base = current_memory_mb()
    start = time.perf_counter()
    cpu_start = time.process_time()
    cleaner = HyperCleaner(data, method, config)
    built = time.perf_counter()
    losses = None
    iterations, failures, solves = 0, 0, 0
    try:
        for k in range(config.hyper_iterations):
            losses = cleaner.step()
            records = cleaner.solver_records()
            solves += len(records)
            iterations += sum(r["iterations"] for r in records)
            failures += any(r["breakdown"] or not r["converged"] for r in records)
            if log_every and (k + 1) % log_every == 0:
                scores = detection_scores(cleaner.current_weights(), data.corrupted, config.threshold)
                log(f"  [{method}] it {k + 1:4d}  valid loss {losses['outer_loss']:.4f}  "
                    f"F1 {scores['f1']:.3f}  ({time.perf_counter() - built:.0f}s)")
        optimized = time.perf_counter()
        cpu_seconds = time.process_time() - cpu_start
        weights = cleaner.current_weights()
        inner_acc = cleaner.inner_test_accuracy()
    finally:
        cleaner.close()
    peak = peak_memory_mb()
    final_start = time.perf_counter()
    acc = final_round(data, weights, config)
    result = {"method": method, "test_accuracy": acc, "inner_test_accuracy": inner_acc,
              "valid_loss": losses["outer_loss"] if losses else float("nan"),
              "build_seconds": built - start, "seconds": optimized - start, "cpu_seconds": cpu_seconds,
              "final_seconds": time.perf_counter() - final_start, "peak_mb": peak, "base_mb": base,
              "weights": weights}
    if solves:
        result.update(solver_iterations=iterations / solves, solver_failures=failures)
    result.update(detection_scores(weights, data.corrupted, config.threshold))
    return result


def run_reference(name, data, config=None):
    """The baseline (no cleaning) or the oracle (corrupted examples removed), trained like the final round.

    Returns:
        dict with ``method``, ``test_accuracy``, ``seconds``, ``cpu_seconds`` (of the
        training), ``peak_mb``, ``base_mb`` and the detection scores (1 for the
        oracle by construction, NaN for the baseline).
    """
    config = config or CleaningConfig()
    if name not in REFERENCES:
        raise UnknownNameError(f"Unknown reference run {name!r}; allowed: {describe_allowed(REFERENCES)}.")
    reset_peak_memory()
    base = current_memory_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    weights = np.ones(data.n_train) if name == "baseline" else (~data.corrupted).astype(np.float64)
    acc = final_round(data, weights, config)
    result = {"method": name, "test_accuracy": acc, "seconds": time.perf_counter() - start,
              "cpu_seconds": time.process_time() - cpu_start, "peak_mb": peak_memory_mb(), "base_mb": base,
              "weights": weights}
    result.update(detection_scores(weights, data.corrupted, config.threshold) if name == "oracle"
                  else {"precision": float("nan"), "recall": float("nan"), "f1": float("nan"), "flagged": 0})
    return result


# ===================================================================================== command line
ALL_RUNS = ["baseline", "oracle", "RHG", "TRHG", "Implicit", "Neumann", "FixedPoint", "BDA", "Darts"]

#: Figures of the paper (Franceschi et al., 2017, table 2): test accuracy and F1.
PUBLISHED = {"baseline": (87.74, None), "oracle": (91.64, None), "RHG": (90.09, 0.9034)}


def _run(queue, name, config, data_args, verbose):
    tf.disable_eager_execution()
    try:
        data = prepare_data(**data_args)
        if name in REFERENCES:
            result = run_reference(name, data, config)
        else:
            result = run_method(name, data, config, log_every=10 if verbose else 0,
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
        return f"{r['method']:10s} failed: {r['error']}"
    f1 = "-" if r.get("f1") != r.get("f1") else f"{r['f1']:.3f}"  # NaN for the baseline
    precision = "-" if r.get("precision") != r.get("precision") else f"{r['precision']:.3f}"
    recall = "-" if r.get("recall") != r.get("recall") else f"{r['recall']:.3f}"
    inner = f"{100 * r['inner_test_accuracy']:.2f}" if "inner_test_accuracy" in r else "-"
    cpu = f"{r['cpu_seconds']:.0f}" if "cpu_seconds" in r else "-"
    published = PUBLISHED.get(r["method"])
    paper = "-" if not published else f"{published[0]:.2f}" + (f" / {published[1]:.4f}" if published[1] else "")
    return (f"{r['method']:10s} {100 * r['test_accuracy']:9.2f} {inner:>9s} {f1:>6s} {precision:>6s} {recall:>6s} "
            f"{r['seconds']:8.0f} {cpu:>7s} {r['peak_mb']:8.0f} {r['peak_mb'] - r['base_mb']:7.0f}   {paper}")


def main(argv=None):
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
    parser.add_argument("--cg-max-iter", type=int, default=defaults.cg_max_iter, help="Implicit: CG iterations")
    parser.add_argument("--cg-tolerance", type=float, default=defaults.cg_tolerance,
                        help="Implicit: CG residual tolerance")
    parser.add_argument("--cg-damping", type=float, default=defaults.cg_damping,
                        help="Implicit and Neumann: lambda added to the Hessian")
    parser.add_argument("--neumann-terms", type=int, default=defaults.neumann_terms,
                        help="Neumann: K, Hessian-vector products per solve")
    parser.add_argument("--neumann-alpha", type=float, default=defaults.neumann_alpha,
                        help="Neumann: step alpha of the series, below 2 / lambda_max(H) (about 0.5 here)")
    parser.add_argument("--fixed-point-max-iter", type=int, default=defaults.fixed_point_max_iter,
                        help="FixedPoint: maximum products with the Jacobian of the Momentum update")
    parser.add_argument("--fixed-point-tolerance", type=float, default=defaults.fixed_point_tolerance,
                        help="FixedPoint: tolerance on ||w_new - w||")
    parser.add_argument("--solver-failure", default=defaults.solver_failure, choices=list(FAILURE_MODES),
                        help="Implicit and FixedPoint: what a solve that stops above its tolerance does")
    parser.add_argument("--final-T", type=int, default=defaults.final_T, help="steps of the final round")
    parser.add_argument("--dtype", default=defaults.dtype, choices=["float32", "float64"])
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    try:  # the settings are checked, then the data found (or fetched) once, before the methods' processes start
        config = defaults.replace(T=args.T, inner_lr=args.inner_lr, inner_optimizer=args.inner_optimizer,
                                  hyper_iterations=args.hyper_iterations, meta_lr=args.meta_lr,
                                  truncate_iter=args.truncate_iter, bda_alpha=args.bda_alpha, final_T=args.final_T,
                                  dtype=args.dtype, cg_max_iter=args.cg_max_iter, cg_tolerance=args.cg_tolerance,
                                  cg_damping=args.cg_damping, neumann_terms=args.neumann_terms,
                                  neumann_alpha=args.neumann_alpha, fixed_point_max_iter=args.fixed_point_max_iter,
                                  fixed_point_tolerance=args.fixed_point_tolerance, solver_failure=args.solver_failure)
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
    print(f"Implicit: CG <= {config.cg_max_iter} iterations, tolerance {config.cg_tolerance}, damping "
          f"{config.cg_damping}; Neumann: K={config.neumann_terms}, alpha={config.neumann_alpha}; FixedPoint: <= "
          f"{config.fixed_point_max_iter} products, tolerance {config.fixed_point_tolerance}", flush=True)
    rows = []
    start = time.perf_counter()
    for name in args.methods:
        result = run_isolated(name, config, data_args, not args.quiet)
        rows.append(result)
        if not args.quiet:
            print(format_row(result), flush=True)
    header = (f"{'method':10s} {'test acc':>9s} {'inner acc':>9s} {'F1':>6s} {'prec':>6s} {'recall':>6s} "
              f"{'wall s':>8s} {'cpu s':>7s} {'peak MB':>8s} {'+MB':>7s}   paper acc / F1")
    print()
    print(header)
    print("-" * len(header))
    for result in rows:
        print(format_row(result))
    for result in rows:
        if "solver_iterations" in result and result["method"] == "Neumann":
            print(f"Neumann: {result['solver_iterations']:.0f} products per solve (no tolerance)")
        elif "solver_iterations" in result:
            print(f"{result['method']}: {result['solver_iterations']:.1f} products per solve on average; "
                  f"{result['solver_failures']} of {config.hyper_iterations} meta-iterations stopped above the "
                  f"tolerance")
    print(f"\ntest acc: final round (train + validation, learned weights), %; inner acc: model after the T "
          f"inner steps, %;\nF1/prec/recall: weight < {config.threshold} as detector of corrupted labels;\n"
          f"wall/cpu s: graph building + hyper-optimization (baseline, oracle: their training);\n"
          f"peak MB: peak resident memory of the method's process (data loaded, TensorFlow runtime included), "
          f"+MB: above the memory at the start of the run.")
    print(f"Total {time.perf_counter() - start:.0f}s.")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
