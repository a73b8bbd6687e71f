"""Hypergradients against exact math (float64): finite differences of the unrolled
objective computed in numpy, closed forms, and methods against each other."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError

import bilevel_toys as toys


def _hypergradient(session, pairs, var):
    session.run(tf.global_variables_initializer())
    for grad, param in pairs:
        if param is var:
            return session.run(grad)
    raise AssertionError(f"no hypergradient for {var.name}")


def _meta(name):
    return [v for v in tf.global_variables() if v.name.startswith(name)][0]


@pytest.mark.parametrize("optimizer,lr", [("SGD", 0.1), ("Momentum", 0.08), ("Adam", 0.05)])
def test_reverse_equals_finite_differences_of_unrolled_objective(session, optimizer, lr):
    d = toys.make_data()
    T = 6
    boml_ho, _, pairs = toys.build_toy(d, T=T, lr=lr, optimizer=optimizer)
    hg = _hypergradient(session, pairs, _meta("W"))

    def objective(W):
        y, _ = toys.unroll(W, d, T, lr, optimizer)
        return toys.outer_value(y, W, d)

    reference = toys.central_difference(objective, d["W"])
    assert toys.relative_error(hg, reference) < 1e-6
    # The library's own forward value is the numpy unrolled objective.
    value = session.run(boml_ho.outergradient.outer_losses)[0]
    assert abs(value - objective(d["W"])) < 1e-10


@pytest.mark.parametrize("K", [0, 1, 3])
def test_truncated_reverse_equals_gradient_through_last_k_steps(session, K):
    d = toys.make_data(seed=1)
    T, lr = 6, 0.1
    _, _, pairs = toys.build_toy(d, T=T, lr=lr, truncate_iter=K)
    hg = _hypergradient(session, pairs, _meta("W"))
    frozen = toys.unroll(d["W"], d, T - K, lr)

    def objective(W):
        y, _ = toys.unroll(W, d, T, lr, start=frozen, start_step=T - K + 1)
        return toys.outer_value(y, W, d)

    assert toys.relative_error(hg, toys.central_difference(objective, d["W"])) < 1e-6


def test_truncation_k_equal_t_is_full_reverse():
    d = toys.make_data(seed=2)
    values = []
    for K in (-1, 5):
        with tf.Graph().as_default(), tf.Session() as sess:
            _, _, pairs = toys.build_toy(d, T=5, lr=0.1, truncate_iter=K)
            values.append(_hypergradient(sess, pairs, _meta("W")))
    np.testing.assert_allclose(values[1], values[0], rtol=1e-13, atol=1e-15)
    with tf.Graph().as_default(), pytest.raises(InvalidArgumentError, match="truncate_iter=9"):
        toys.build_toy(d, T=5, lr=0.1, truncate_iter=9)  # K > T was silently full Reverse (issue 13)


def _ridge_closed_form(d):
    """Exact implicit hypergradient dF/dW at the exact inner solution."""
    W = d["W"]
    A = d["X"] @ W
    H = A.T @ A + toys.RHO * np.eye(d["k"])
    y = np.linalg.solve(H, A.T @ d["b"])

    def objective(Wv):
        Av = d["X"] @ Wv
        yv = np.linalg.solve(Av.T @ Av + toys.RHO * np.eye(d["k"]), Av.T @ d["b"])
        return toys.outer_value(yv, Wv, d)

    return y, toys.central_difference(objective, W, h=1e-6)


def test_implicit_equals_closed_form_once_inner_problem_is_solved(session):
    d = toys.make_data(seed=3)
    _, reference = _ridge_closed_form(d)
    boml_ho, _, pairs = toys.build_toy(d, outer_method="Implicit", T=3000, lr=0.5, tolerance=lambda k: 1e-13,
                                       cg_max_iter=100)
    session.run(tf.global_variables_initializer())
    hg = session.run(_w_gradient(pairs), boml_ho.outergradient.feed_dict(0))
    assert toys.relative_error(hg, reference) < 1e-4


def _w_gradient(pairs):
    return [g for g, v in pairs if v.name.startswith("W")][0]


def test_implicit_approaches_reverse_as_t_grows():
    d = toys.make_data(seed=4)
    gaps = []
    for T in (20, 100, 800):
        results = {}
        for method in ("Implicit", "Reverse"):
            with tf.Graph().as_default(), tf.Session() as sess:
                kwargs = {"tolerance": lambda k: 1e-12, "cg_max_iter": 100} if method == "Implicit" else {}
                boml_ho, _, pairs = toys.build_toy(d, outer_method=method, T=T, lr=0.1, **kwargs)
                sess.run(tf.global_variables_initializer())
                feed = boml_ho.outergradient.feed_dict(0) if method == "Implicit" else {}
                results[method] = sess.run(_w_gradient(pairs), feed)
        gaps.append(toys.relative_error(results["Implicit"], results["Reverse"]))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-6


def test_darts_matches_its_formula_and_one_step_reverse(session):
    d = toys.make_data(seed=5)
    T, lr, eps = 4, 0.1, 1e-3
    _, _, pairs = toys.build_toy(d, outer_method="Darts", T=T, lr=lr, epsilon=eps)
    hg = _hypergradient(session, pairs, _meta("W"))
    # Its own formula, evaluated in numpy.
    w_prev, _ = toys.unroll(d["W"], d, T - 1, lr)
    w_T, _ = toys.unroll(d["W"], d, T, lr)
    v = toys.grad_outer(w_T, d["W"], d)
    u = lr * v
    r = eps / np.linalg.norm(u)

    def inner_value(y, W):
        return 0.5 * np.sum((d["X"] @ W @ y - d["b"]) ** 2) + 0.5 * toys.RHO * np.sum(y * y)

    grad_w = lambda y: toys.central_difference(lambda W: inner_value(y, W), d["W"], h=1e-6)  # noqa: E731
    direct = toys.central_difference(lambda W: toys.outer_value(w_T, W, d), d["W"], h=1e-6)
    formula = direct - (grad_w(w_prev + r * u) - grad_w(w_prev - r * u)) / (2 * r)
    assert toys.relative_error(hg, formula) < 1e-6

    # One-step Reverse (TRHG with K=1) agrees up to O(eps^2) for SGD dynamics.
    frozen = toys.unroll(d["W"], d, T - 1, lr)

    def one_step(W):
        y, _ = toys.unroll(W, d, T, lr, start=frozen, start_step=T)
        return toys.outer_value(y, W, d)

    one_step_reverse = toys.central_difference(one_step, d["W"])
    assert toys.relative_error(hg, one_step_reverse) < 1e-5


def _logcosh_one_step_reverse_and_third_derivative(d, T, lr):
    """Exact one-step Reverse hypergradient of the log-cosh toy and the third derivative of the
    finite-differenced function, both in closed form (numpy).

    With w = y_{T-1}, u = lr grad_y F(y_T) and h(t) = grad_W f(w + t u, W) = X^T tanh(a + t c) (w + t u)^T
    (a = X W w - b, c = X W u), one-step Reverse is grad_W F(y_T) - h'(0), and the central difference
    [h(r) - h(-r)] / (2 r) equals h'(0) + r^2 / 6 h'''(0) + O(r^4).

    Returns:
        (exact hypergradient, h'''(0), ||u||, w).
    """
    W, X = d["W"], d["X"]
    w = toys.logcosh_unroll(W, d, T - 1, lr)
    y_T = w - lr * toys.logcosh_grad_inner(w, W, d)
    u = lr * toys.grad_outer(y_T, W, d)
    s, c = np.tanh(X @ W @ w - d["b"]), X @ W @ u
    direct = np.outer(d["Xq"].T @ (d["Xq"] @ W @ y_T - d["bq"]), y_T)
    h1 = np.outer(X.T @ ((1 - s ** 2) * c), w) + np.outer(X.T @ s, u)
    phi2, phi3 = -2 * c ** 2 * s * (1 - s ** 2), c ** 3 * (1 - s ** 2) * (6 * s ** 2 - 2)
    h3 = np.outer(X.T @ phi3, w) + 3 * np.outer(X.T @ phi2, u)
    return direct - h1, h3, np.linalg.norm(u), w


def test_darts_error_is_second_order_in_epsilon():
    """On a non-quadratic inner objective the Darts central difference has a nonzero O(epsilon^2) error
    against the exact one-step Reverse: -(epsilon / ||u||)^2 / 6 h'''(0) to leading order, so it falls
    100-fold per decade of epsilon (a one-sided difference would fall 10-fold; a perturbation and a
    denominator on different scales would not fall at all)."""
    d = toys.make_data(seed=6)
    T, lr = 3, 0.1
    exact, h3, norm_u, w = _logcosh_one_step_reverse_and_third_derivative(d, T, lr)
    # The closed form is the gradient of the one-step objective.
    one_step = toys.central_difference(lambda W: toys.logcosh_one_step(W, d, w, lr), d["W"])
    assert toys.relative_error(exact, one_step) < 1e-8
    errors = []
    for eps in (1e-1, 1e-2, 1e-3):
        with tf.Graph().as_default(), tf.Session() as sess:
            pairs = toys.build_logcosh_toy(d, outer_method="Darts", T=T, lr=lr, epsilon=eps)
            error = _hypergradient(sess, pairs, _meta("W")) - exact
        leading = -(eps / norm_u) ** 2 / 6 * h3
        # The next order is O(epsilon^4): 1-2% of the leading term at epsilon = 0.1, far less below.
        assert toys.relative_error(error, leading) < 0.03, eps
        errors.append(np.max(np.abs(error)))
    assert errors[2] > 1e-10 * np.max(np.abs(exact))  # nonzero (8e-8 relative), far above float64 rounding
    for coarse, fine in zip(errors, errors[1:]):
        assert 90 < coarse / fine < 110


@pytest.mark.parametrize("outer_method", ["Reverse", "Darts"])
def test_bda_with_alpha_zero_has_trad_dynamics(session, outer_method):
    d = toys.make_data(seed=7)
    boml_ho, inner_grad, _ = toys.build_toy(d, inner_method="Aggr", outer_method=outer_method, T=5, lr=0.1,
                                            alpha=0.0)
    y = inner_grad.var_list[0]
    adapted = boml_ho.adapted(tf.identity(y))
    session.run(tf.global_variables_initializer())
    expected, _ = toys.unroll(d["W"], d, 5, 0.1)
    np.testing.assert_allclose(session.run(adapted)[0], expected, rtol=1e-12)


@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("optimizer", ["SGD", "Momentum"])
def test_bda_reverse_equals_finite_differences(session, per_step, optimizer):
    d = toys.make_data(seed=8)
    T, lr, alpha0, s0, t0 = 5, 0.1, 0.4, 0.8, 1.2
    _, _, pairs = toys.build_toy(d, inner_method="Aggr", T=T, lr=lr, optimizer=optimizer, alpha=alpha0,
                                 learn_alpha=not per_step, learn_alpha_itr=per_step, learn_st=True, s=s0, t=t0)
    session.run(tf.global_variables_initializer())
    grads = {v.name.split("/")[-1].split(":")[0]: session.run(g) for g, v in pairs}
    alpha_init = np.full(T, alpha0) if per_step else alpha0

    def objective(W, alpha=alpha_init, s=s0, t=t0):
        y, _ = toys.unroll(W, d, T, lr, optimizer, alpha=alpha, s=s, t=t)
        return toys.outer_value(y, W, d)

    assert toys.relative_error(grads["W"], toys.central_difference(objective, d["W"])) < 1e-6
    fd_alpha = toys.central_difference(lambda a: objective(d["W"], alpha=a), np.asarray(alpha_init))
    assert toys.relative_error(grads["alpha"], fd_alpha) < 1e-6
    fd_s = toys.central_difference(lambda s: objective(d["W"], s=float(s)), np.asarray(s0))
    fd_t = toys.central_difference(lambda t: objective(d["W"], t=float(t)), np.asarray(t0))
    assert toys.relative_error(grads["s"], fd_s) < 1e-6
    assert toys.relative_error(grads["t"], fd_t) < 1e-6


def test_darts_learned_step_size_matches_one_step_reverse(session):
    d = toys.make_data(seed=9)
    T, lr = 3, 0.1
    _, _, pairs = toys.build_toy(d, outer_method="Darts", T=T, lr=lr, epsilon=1e-4, learn_lr=True)
    session.run(tf.global_variables_initializer())
    grads = {v.name.split(":")[0].split("/")[-1]: session.run(g) for g, v in pairs}
    frozen = toys.unroll(d["W"], d, T - 1, lr)

    def one_step(W, rate):
        y, _ = toys.unroll(W, d, T, rate, start=frozen, start_step=T)
        return toys.outer_value(y, W, d)

    fd_lr = toys.central_difference(lambda r: one_step(d["W"], float(r)), np.asarray(lr))
    fd_w = toys.central_difference(lambda W: one_step(W, lr), d["W"])
    assert toys.relative_error(grads["lr"], fd_lr) < 1e-6
    assert toys.relative_error(grads["W"], fd_w) < 1e-6


def _forward_and_reverse_loops():
    loops = [op.name for op in tf.get_default_graph().get_operations() if op.type in ("While", "StatelessWhile")]
    reverse = [name for name in loops if "_grad" in name]
    return [name for name in loops if name not in reverse], reverse


def test_truncated_reverse_stores_nothing_for_the_frozen_steps():
    """TRHG runs steps 1..T-K in a loop of their own that the reverse pass never enters
    (no accumulators, no backward loop for it); only the last K steps are back-propagated."""
    d = toys.make_data(seed=3)
    with tf.Graph().as_default():
        toys.build_toy(d, T=6, lr=0.1, truncate_iter=2)
        forward, reverse = _forward_and_reverse_loops()
    assert len(forward) == 2 and len(reverse) == 1
    frozen = [name for name in forward if not any(name.split("/")[-1] + "_grad" in r for r in reverse)]
    assert len(frozen) == 1
    with tf.Graph().as_default():
        toys.build_toy(d, T=6, lr=0.1)
        forward, reverse = _forward_and_reverse_loops()
    assert len(forward) == 1 and len(reverse) == 1
