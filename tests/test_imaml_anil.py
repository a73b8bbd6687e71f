"""iMAML (Proximal + Implicit) and ANIL against exact math in float64: closed forms, central differences of
the converged proximal objective, and a hand-written head-only unroll."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import bilevel_toys as toys
import boml
from boml import extension
from boml.errors import InvalidArgumentError, UnknownNameError

LAMBDA = 0.7


def _meta_gradients(session, boml_ho, names):
    session.run(tf.global_variables_initializer())
    grads = {v.name.split(":")[0]: g for g, v in boml_ho.outergradient.outer_grads_and_vars()}
    feed = boml_ho.outergradient.feed_dict(0) if hasattr(boml_ho.outergradient, "feed_dict") else {}
    return session.run([grads[n] for n in names], feed)


# ------------------------------------------------------------------------------------------- iMAML
def _build_imaml(starts, inner_fn, outer_fn, T, lr, proximal_lambda=LAMBDA, **ul_kwargs):
    """MetaInit / Proximal / Implicit on task variables that start from the meta-parameters ``starts``."""
    meta = [extension.get_outerparameter(name, value) for name, value in starts.items()]
    theta = [tf.get_variable(f"theta_{name}", initializer=tf.zeros(value.shape, tf.float64), trainable=False)
             for name, value in starts.items()]
    boml_ho = boml.BOMLOptimizer("MetaInit", "Proximal", "Implicit")
    inner_grad = boml_ho.ll_problem(inner_fn(*theta), lr, T, var_list=theta, initial_state=meta,
                                    proximal_lambda=proximal_lambda)
    boml_ho.ul_problem(outer_fn(*theta), 1e-3, inner_grad, meta_param=meta, **ul_kwargs)
    return boml_ho


def test_imaml_equals_the_closed_form_on_a_quadratic_inner_problem(session):
    d = toys.make_maml_data(seed=1)
    X, b, Xq, bq = d["X"], d["b"], d["Xq"], d["bq"]

    def sq(A, c):
        return lambda th: 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.constant(A), th) - tf.constant(c)))

    boml_ho = _build_imaml({"x": d["x"]}, sq(X, b), sq(Xq, bq), T=400, lr=0.2, tolerance=1e-13)
    (hg,) = _meta_gradients(session, boml_ho, ["x"])
    # theta* = (X^T X + lambda I)^{-1} (X^T b + lambda x);  dF/dx = lambda (X^T X + lambda I)^{-1} grad F(theta*).
    M = X.T @ X + LAMBDA * np.eye(len(d["x"]))
    theta = np.linalg.solve(M, X.T @ b + LAMBDA * d["x"])
    expected = LAMBDA * np.linalg.solve(M, Xq.T @ (Xq @ theta - bq))
    assert toys.relative_error(hg, expected) < 1e-9
    # The reported inner loss is the proximal objective at theta_T.
    inner = session.run(boml_ho.outergradient.inner_losses)[0]
    proximal = 0.5 * np.sum((X @ theta - b) ** 2) + 0.5 * LAMBDA * np.sum((theta - d["x"]) ** 2)
    assert inner == pytest.approx(proximal, rel=1e-10)


def _net_data(seed=2, n=6, m=5, p=3, h=3):
    rng = np.random.RandomState(seed)
    return {"X": rng.randn(n, p), "b": rng.randn(n), "Xq": rng.randn(m, p), "bq": rng.randn(m),
            "W1": 0.5 * rng.randn(p, h), "w2": 0.5 * rng.randn(h)}


def _net_loss_np(W1, w2, X, b):
    return 0.5 * np.sum((np.tanh(X @ W1) @ w2 - b) ** 2)


def _net_grads_np(W1, w2, X, b):
    H = np.tanh(X @ W1)
    r = H @ w2 - b
    return X.T @ (np.outer(r, w2) * (1 - H ** 2)), H.T @ r


def _net_loss_tf(X, b):
    return lambda W1, w2: 0.5 * tf.reduce_sum(tf.square(
        tf.linalg.matvec(tf.tanh(tf.matmul(tf.constant(X), W1)), w2) - tf.constant(b)))


def test_imaml_on_a_tiny_network_equals_finite_differences_of_the_converged_objective(session):
    d = _net_data()
    lam, lr = 2.0, 0.1

    def converged_query_loss(x1, x2, steps=400):
        W1, w2 = x1.copy(), x2.copy()
        for _ in range(steps):
            g1, g2 = _net_grads_np(W1, w2, d["X"], d["b"])
            W1, w2 = W1 - lr * (g1 + lam * (W1 - x1)), w2 - lr * (g2 + lam * (w2 - x2))
        return _net_loss_np(W1, w2, d["Xq"], d["bq"])

    boml_ho = _build_imaml({"W1": d["W1"], "w2": d["w2"]}, _net_loss_tf(d["X"], d["b"]),
                           _net_loss_tf(d["Xq"], d["bq"]), T=400, lr=lr, proximal_lambda=lam,
                           tolerance=1e-12, cg_max_iter=100)
    hg1, hg2 = _meta_gradients(session, boml_ho, ["W1", "w2"])
    fd1 = toys.central_difference(lambda x1: converged_query_loss(x1, d["w2"]), d["W1"], h=1e-5)
    fd2 = toys.central_difference(lambda x2: converged_query_loss(d["W1"], x2), d["w2"], h=1e-5)
    assert toys.relative_error(hg1, fd1) < 1e-5
    assert toys.relative_error(hg2, fd2) < 1e-5
    # The proximal term matters: without it (lambda -> 0) the meta-gradient of the init would vanish.
    assert np.max(np.abs(hg1)) > 1e-3


def test_imaml_graph_does_not_grow_with_the_number_of_inner_steps():
    d = _net_data()
    sizes = []
    for T in (2, 40):
        with tf.Graph().as_default() as graph:
            _build_imaml({"W1": d["W1"], "w2": d["w2"]}, _net_loss_tf(d["X"], d["b"]),
                         _net_loss_tf(d["Xq"], d["bq"]), T=T, lr=0.1)
            sizes.append(len(graph.get_operations()))
    assert sizes[0] == sizes[1]


@pytest.mark.parametrize("value", [0.0, -1.0, "2", True, float("inf")])
def test_bad_proximal_lambda_is_refused(value):
    theta = tf.get_variable("theta", initializer=tf.zeros([2], tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Proximal", "Implicit")
    with pytest.raises(InvalidArgumentError, match=r"proximal_lambda must be a positive finite number; received"):
        boml_ho.ll_problem(tf.reduce_sum(theta ** 2), 0.1, 2, var_list=[theta], proximal_lambda=value)


# ------------------------------------------------------------------------------------------- ANIL
def _anil_objective(d, x1, x2, T, lr):
    """F(body, head_T) with the head adapted for T steps and the body frozen at its initialization."""
    w2 = x2.copy()
    for _ in range(T):
        w2 = w2 - lr * _net_grads_np(x1, w2, d["X"], d["b"])[1]
    return _net_loss_np(x1, w2, d["Xq"], d["bq"])


@pytest.mark.parametrize("head", ["count", "list"])
def test_anil_hypergradient_equals_maml_with_the_body_frozen(session, head):
    d = _net_data(seed=4)
    T, lr = 3, 0.3
    x1 = extension.get_outerparameter("W1", d["W1"])
    x2 = extension.get_outerparameter("w2", d["w2"])
    W1 = tf.get_variable("theta_W1", initializer=tf.zeros(d["W1"].shape, tf.float64), trainable=False)
    w2 = tf.get_variable("theta_w2", initializer=tf.zeros(d["w2"].shape, tf.float64), trainable=False)
    options = {"count": {"head": 1}, "list": {"head": [w2]}}[head]
    boml_ho = boml.BOMLOptimizer("MetaInit", "ANIL", "Simple")
    inner_grad = boml_ho.ll_problem(_net_loss_tf(d["X"], d["b"])(W1, w2), lr, T, var_list=[W1, w2],
                                    initial_state=[x1, x2], **options)
    boml_ho.ul_problem(_net_loss_tf(d["Xq"], d["bq"])(W1, w2), 1e-3, inner_grad, meta_param=[x1, x2])
    assert inner_grad.head_variables == [w2]
    hg1, hg2 = _meta_gradients(session, boml_ho, ["W1", "w2"])
    fd1 = toys.central_difference(lambda v: _anil_objective(d, v, d["w2"], T, lr), d["W1"])
    fd2 = toys.central_difference(lambda v: _anil_objective(d, d["W1"], v, T, lr), d["w2"])
    assert toys.relative_error(hg1, fd1) < 1e-7
    assert toys.relative_error(hg2, fd2) < 1e-7
    # The body keeps its initialization: the adapted state of the task holds x1 for W1.
    final = session.run(boml_ho.outergradient.outer_losses)[0]
    assert final == pytest.approx(_anil_objective(d, d["W1"], d["w2"], T, lr), rel=1e-12)


@pytest.mark.parametrize("head,match", [
    (0, "head must be a positive number"),
    ("w2", "received 'w2'"),
    (3, "head=3 counts more task variables than var_list has \\(2\\)"),
    ("foreign", "are not task variables"),
])
def test_bad_anil_heads_are_refused(head, match):
    W1 = tf.get_variable("W1", initializer=tf.zeros([2, 2], tf.float64), trainable=False)
    w2 = tf.get_variable("w2", initializer=tf.zeros([2], tf.float64), trainable=False)
    if head == "foreign":
        head = [tf.get_variable("other", initializer=tf.zeros([2], tf.float64), trainable=False)]
    boml_ho = boml.BOMLOptimizer("MetaInit", "ANIL", "Simple")
    loss = tf.reduce_sum(tf.linalg.matvec(W1, w2) ** 2)
    with pytest.raises(InvalidArgumentError, match=match):
        boml_ho.ll_problem(loss, 0.1, 2, var_list=[W1, w2], head=head)


# ------------------------------------------------------------------------------------------- workflow
def test_cli_algorithms_build_the_strategies_with_their_settings():
    from boml import workflow

    config = workflow.preset("imaml-synthetic", classes=2, image_size=8, num_filters=4, meta_batch_size=2,
                             proximal_lambda=3.0, cg_max_iter=7)
    resolved = config.validate()
    assert (resolved.method, resolved.inner_method, resolved.outer_method) == ("MetaInit", "Proximal", "Implicit")
    model = workflow.build_model(resolved, workflow.load_dataset(resolved))
    assert model.inner_grad.proximal_lambda == 3.0 and model.boml_ho.outergradient.cg_max_iter == 7
    assert model.boml_ho.outergradient.config.solver == "cg" and model.boml_ho.outergradient.cg_damping == 0.0
    anil = workflow.Config(algorithm="anil").validate()
    assert (anil.inner_method, anil.outer_method) == ("ANIL", "Simple")


@pytest.mark.parametrize("changes,match", [
    ({"algorithm": "maml", "proximal_lambda": 2.0}, "proximal_lambda is iMAML's setting"),
    ({"algorithm": "maml", "cg_max_iter": 5}, "cg_max_iter is a setting of outer_method='Implicit'"),
    ({"algorithm": "rhg", "solver": "neumann", "cg_damping": 0.5},
     "solver, cg_damping are settings of outer_method='Implicit'"),
])
def test_cli_settings_of_other_algorithms_are_refused(changes, match):
    from boml import workflow

    with pytest.raises(InvalidArgumentError, match=match):
        workflow.Config(**changes).validate()


def test_cli_implicit_solver_settings_reach_the_strategy_and_a_foreign_one_is_refused():
    import boml.upper_iter.implicit as implicit
    import boml.upper_iter.solvers as solvers
    from boml import workflow

    assert workflow.config.IMPLICIT_SOLVERS == implicit.SOLVERS
    assert workflow.config.SOLVER_FAILURE_MODES == solvers.FAILURE_MODES
    small = dict(classes=2, image_size=8, num_filters=4, meta_batch_size=2)
    config = workflow.preset("imaml-synthetic", cg_max_iter=50, solver="neumann", neumann_terms=4, cg_damping=0.25,
                             **small).validate()
    options = workflow.build_model(config, workflow.load_dataset(config)).boml_ho.outergradient.config
    assert (options.solver, options.neumann_terms, options.cg_damping) == ("neumann", 4, 0.25)
    # the preset sets cg_max_iter=5, which the Neumann solver does not read
    mismatched = workflow.preset("imaml-synthetic", solver="neumann", **small).validate()
    with tf.Graph().as_default(), pytest.raises(InvalidArgumentError, match="cg_max_iter=5 is used by solver='cg'"):
        workflow.build_model(mismatched, workflow.load_dataset(mismatched))
    for name, value in (("solver", "newton"), ("solver_failure", "stop")):
        with pytest.raises(UnknownNameError, match=f"Unknown {name} '{value}'; allowed: "):
            workflow.Config(algorithm="hoag", **{name: value}).validate()
