"""Every upper strategy x inner optimizer x {plain, learned step size, MT-net mask} the table allows, in float64.

References: central finite differences of the unrolled objective (the forward value of the
same graph, so they hold for any inner optimizer), Reverse for the finite-difference-free
comparisons (Forward, Darts against one-step Reverse, mask logits), and numpy re-implementations
for WarpGrad. Every combination the strategies' declarations refuse raises InvalidCombinationError.
"""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors, extension
from boml.boml_optimizer import allowed_triples, feature_table
from boml.upper_iter import BOMLOuterGradSimple

import bilevel_toys as toys
import sessions

OPTIMIZERS = ("SGD", "Momentum", "Adam")
VARIANTS = ("plain", "lr", "mask")
VARIANT_OPTIONS = {"plain": {}, "lr": {"learn_lr": True},
                   "mask": {"use_mask": True, "mask_init": 0.7, "mask_noise": False}}


def _supported(outer, optimizer, variant):
    features = feature_table()[outer]
    if features["inner_optimizers"] != "any" and optimizer not in features["inner_optimizers"]:
        return False
    return {"plain": True, "lr": features["learned_lr"], "mask": features["mask"]}[variant]


def _build(method, inner, outer, optimizer, variant, T, seed=3, truncate_iter=-1, **ul_options):
    """A float64 toy through BOMLOptimizer; returns (boml_ho, {param name: hypergradient tensor})."""
    if method == "MetaFeat":
        d = toys.make_data(seed=seed)
        X, b, Xq, bq = (tf.constant(d[k]) for k in ("X", "b", "Xq", "bq"))
        W = extension.get_outerparameter("W", d["W"])
        y = tf.get_variable("y", initializer=tf.zeros([d["k"]], tf.float64), trainable=False)
        f = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(X, W), y) - b)) + \
            0.5 * toys.RHO * tf.reduce_sum(tf.square(y))
        F = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(Xq, W), y) - bq))
        variables, starts = [y], None
        extra = {"outer_objective": F, "alpha_init": 0.4, "learn_alpha": True} if inner == "Aggr" else {}
    else:
        d = toys.make_maml_data(seed=seed)
        x = extension.get_outerparameter("x", d["x"])
        theta = tf.get_variable("theta", initializer=tf.zeros([len(d["x"])], tf.float64), trainable=False)

        def loss(Xs, bs):
            return 0.5 * tf.reduce_sum(tf.square(tf.tanh(tf.linalg.matvec(tf.constant(Xs), theta)) - tf.constant(bs)))

        f, F = loss(d["X"], d["b"]), loss(d["Xq"], d["bq"])
        variables, starts, extra = [theta], [x], {}
    boml_ho = boml.BOMLOptimizer(method, inner, outer, truncate_iter=truncate_iter)
    lr = 0.05 if optimizer == "Adam" else 0.1
    inner_grad = boml_ho.ll_problem(f, lr, T, var_list=variables, initial_state=starts,
                                    inner_objective_optimizer=optimizer, **extra, **VARIANT_OPTIONS[variant])
    scope = tf.get_variable_scope().name or None  # the configuration's own meta-parameters in a shared graph
    boml_ho.ul_problem(F, 1e-3, inner_grad, meta_param=tf.get_collection(extension.GraphKeys.METAPARAMETERS, scope),
                       **ul_options)
    pairs = boml_ho.outergradient.outer_grads_and_vars()
    return boml_ho, {v.name.split(":")[0].split("/")[-1]: (g, v) for g, v in pairs}


def _finite_differences(session, loss, variable, feed, h=1e-5):
    base = np.array(session.run(variable), dtype=np.float64)
    grad = np.zeros_like(base)
    for index in np.ndindex(*base.shape):
        values = []
        for sign in (1, -1):
            moved = base.copy()
            moved[index] += sign * h
            variable.load(moved, session)
            values.append(session.run(loss, feed))
        grad[index] = (values[0] - values[1]) / (2 * h)
    variable.load(base, session)
    return grad


_RESULTS = {}  # one graph per configuration: a configuration checked by two tests is built once
# The toys are tiny: one thread avoids the thread pools' start-up and spinning on the shared cores.
_ONE_THREAD = tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)


def _evaluate(method, inner, outer, optimizer, variant, T, finite_differences=True, **kwargs):
    """``(hypergradients, finite differences or None)`` of one configuration (cached per configuration)."""
    key = (method, inner, outer, optimizer, variant, T, tuple(sorted(kwargs.items())))
    cached = _RESULTS.get(key)
    if cached is not None and (cached[1] is not None or not finite_differences):
        return cached
    graph = tf.Graph()
    with graph.as_default():
        boml_ho, pairs = _build(method, inner, outer, optimizer, variant, T, **kwargs)
        feed = boml_ho.outergradient.feed_dict(0) if hasattr(boml_ho.outergradient, "feed_dict") else {}
        loss = boml_ho.outergradient.outer_losses[0]
        with sessions.numeric_session(graph=graph, config=_ONE_THREAD) as session:
            session.run(tf.global_variables_initializer())
            values = session.run({k: g for k, (g, _) in pairs.items()}, feed)
            fd = {k: _finite_differences(session, loss, v, feed) for k, (_, v) in pairs.items()
                  if not k.startswith("mask_logit")} if finite_differences else None
    _RESULTS[key] = (values, fd)
    return values, fd


def _hypergradients_side_by_side(*configurations):
    """The hypergradients of several configurations, each in its own variable scope of one graph and session."""
    graph = tf.Graph()
    with graph.as_default():
        fetches = []
        for index, (args, kwargs) in enumerate(configurations):
            with tf.variable_scope(f"configuration{index}/"):
                fetches.append({k: g for k, (g, _) in _build(*args, **kwargs)[1].items()})
        with sessions.numeric_session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            return session.run(fetches)


MATRIX = [(m, i, o, opt, var) for m, i, o in allowed_triples() if (i, o) != ("Simple", "Reptile")
          for opt in OPTIMIZERS for var in VARIANTS if _supported(o, opt, var) and o not in ("Darts", "Implicit")]


@pytest.mark.parametrize("method,inner,outer,optimizer,variant", MATRIX)
def test_exact_hypergradients_match_finite_differences(method, inner, outer, optimizer, variant):
    values, fd = _evaluate(method, inner, outer, optimizer, variant, T=4)
    for name, reference in fd.items():
        assert toys.relative_error(values[name], reference) < 1e-6, name


@pytest.mark.parametrize("optimizer", ["SGD", "Momentum"])
def test_implicit_matches_finite_differences_at_convergence(optimizer):
    values, fd = _evaluate("MetaFeat", "Trad", "Implicit", optimizer, "plain", T=400, tolerance=1e-13,
                           cg_max_iter=200)
    assert toys.relative_error(values["W"], fd["W"]) < 1e-5


@pytest.mark.parametrize("inner", ["Trad", "Aggr"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_darts_equals_one_step_reverse_with_the_real_inner_step(inner, optimizer, variant):
    # The toy's potential is quadratic in y, so the central difference is exact: Darts is TRHG with K=1
    # to rounding, for every inner optimizer (the old code used the SGD step whatever the optimizer).
    darts = _evaluate("MetaFeat", inner, "Darts", optimizer, variant, T=4, finite_differences=False, epsilon=1e-3)[0]
    reverse = _evaluate("MetaFeat", inner, "Reverse", optimizer, variant, T=4, finite_differences=False,
                        truncate_iter=1)[0]
    assert set(darts) == set(reverse)
    for name in darts:
        assert toys.relative_error(darts[name], reverse[name]) < 1e-7, name


@pytest.mark.parametrize("inner", ["Trad", "Aggr"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_forward_with_mask_equals_reverse_with_mask(inner, optimizer):
    forward = _evaluate("MetaFeat", inner, "Forward", optimizer, "mask", T=4, finite_differences=False)[0]
    reverse = _evaluate("MetaFeat", inner, "Reverse", optimizer, "mask", T=4, finite_differences=False)[0]
    assert any(name.startswith("mask_logit") for name in forward)
    for name in reverse:
        assert toys.relative_error(forward[name], reverse[name]) < 1e-7, name


def test_mask_logit_gradient_is_the_straight_through_chain_rule(session):
    # With a hard mask of ones, the straight-through gradient of the logit c_u is dF/dM_u * sigmoid'(c_u),
    # where dF/dM_u is the derivative w.r.t. a continuous mask multiplying the direction.
    graph_values = _evaluate("MetaFeat", "Trad", "Reverse", "SGD", "mask", T=3, finite_differences=False)[0]
    d = toys.make_data(seed=3)

    def outer_of_mask(mask):
        y = np.zeros(d["k"])
        for _ in range(3):
            y = y - 0.1 * mask * toys.grad_inner(y, d["W"], d)
        return toys.outer_value(y, d["W"], d)

    dF_dM = toys.central_difference(outer_of_mask, np.ones(d["k"]))
    sig = 1 / (1 + np.exp(-0.7))
    assert toys.relative_error(graph_values["mask_logit_0"], dF_dM * sig * (1 - sig)) < 1e-6


# ------------------------------------------------------------------------------------------- WarpGrad
def _warp_toy(d, omega):
    def grad(theta, X, b):
        z = X @ (omega * theta)
        return omega * (X.T @ ((np.tanh(z) - b) * (1 - np.tanh(z) ** 2)))

    def loss(theta, X, b):
        return 0.5 * np.sum((np.tanh(X @ (omega * theta)) - b) ** 2)

    return grad, loss


def _warp_graph(d, objective, optimizer, T, lr, warp_lambda):
    x = extension.get_outerparameter("x", d["x"])
    omega = extension.get_outerparameter("omega", d["omega"])
    theta = tf.get_variable("theta", initializer=tf.zeros([len(d["x"])], tf.float64), trainable=False)

    def loss(Xs, bs):
        z = tf.linalg.matvec(tf.constant(Xs), omega * theta)
        return 0.5 * tf.reduce_sum(tf.square(tf.tanh(z) - tf.constant(bs)))

    inner_grad = boml.lower_iter.BOMLInnerGradSimple(loss(d["X"], d["b"]), [theta], optimizer, T,
                                                     learning_rate=lr, initial_state=[x])
    strategy = BOMLOuterGradSimple(use_warp=True, warp_objective=objective, warp_lambda=warp_lambda)
    strategy.compute_gradients(loss(d["Xq"], d["bq"]), inner_grad, meta_param=[x, omega])
    return {v.name.split(":")[0]: g for g, v in strategy.outer_grads_and_vars()}


def test_warpgrad_unrolled_objective_matches_finite_differences(session):
    d = toys.make_maml_data(seed=5)
    d["omega"] = np.linspace(0.8, 1.2, len(d["x"]))
    T, lr, warp_lambda = 3, 0.2, 0.5
    graph = _warp_graph(d, "unrolled", "SGD", T, lr, warp_lambda)
    session.run(tf.global_variables_initializer())
    grads = session.run(graph)

    def objective(x, omega):
        grad, loss = _warp_toy(d, omega)
        theta, total = np.array(x), 0.0
        for _ in range(T):
            total += loss(theta, d["Xq"], d["bq"])
            theta = theta - lr * grad(theta, d["X"], d["b"])
        return total + loss(theta, d["Xq"], d["bq"])

    fd_x = toys.central_difference(lambda x: objective(x, d["omega"]), d["x"])
    fd_omega = toys.central_difference(lambda w: objective(d["x"], w), d["omega"])
    assert toys.relative_error(grads["x"], warp_lambda * fd_x) < 1e-6
    assert toys.relative_error(grads["omega"], fd_omega) < 1e-6


def test_warpgrad_trajectory_look_ahead_uses_the_momentum_step(session):
    d = toys.make_maml_data(seed=6)
    d["omega"] = np.linspace(0.9, 1.1, len(d["x"]))
    T, lr, mu = 3, 0.2, 0.5
    graph = _warp_graph(d, "trajectory", "Momentum", T, lr, 1.0)
    session.run(tf.global_variables_initializer())
    grads = session.run(graph)
    grad0, _ = _warp_toy(d, d["omega"])
    points, theta, m = [], np.array(d["x"]), np.zeros(len(d["x"]))
    for _ in range(T):
        points.append((theta.copy(), m.copy()))
        m = mu * m + grad0(theta, d["X"], d["b"])
        theta = theta - lr * m

    def look_ahead(omega):
        grad, loss = _warp_toy(d, omega)
        return sum(loss(p - lr * (mu * s + grad(p, d["X"], d["b"])), d["Xq"], d["bq"]) for p, s in points)

    assert toys.relative_error(grads["omega"], toys.central_difference(look_ahead, d["omega"])) < 1e-6


# ------------------------------------------------------------------------------------------- refusals
REFUSED = [(m, i, o, opt, var) for m, i, o in allowed_triples()
           for opt in OPTIMIZERS for var in VARIANTS if not _supported(o, opt, var)]


def test_the_table_refuses_something():
    assert ("MetaFeat", "Trad", "Implicit", "Adam", "plain") in REFUSED
    assert ("MetaInit", "Simple", "Reptile", "SGD", "lr") in REFUSED


@pytest.mark.parametrize("method,inner,outer,optimizer,variant", REFUSED)
def test_refused_combinations_raise_the_typed_error(method, inner, outer, optimizer, variant):
    with tf.Graph().as_default():
        with pytest.raises(errors.InvalidCombinationError, match="outer_method"):
            _build(method, inner, outer, optimizer, variant, T=2)


@pytest.mark.parametrize("triple", [("MetaInit", "Trad", "Reverse"), ("MetaFeat", "Simple", "Simple"),
                                    ("MetaFeat", "Aggr", "Implicit"), ("MetaInit", "Simple", "Darts")])
def test_refused_triples_raise_the_typed_error(triple):
    with pytest.raises(errors.InvalidCombinationError, match="not allowed"):
        boml.BOMLOptimizer(*triple)
