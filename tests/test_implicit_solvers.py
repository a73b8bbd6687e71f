"""Implicit's linear solvers (CG, Neumann series, fixed point) against exact math in float64, and the
report of unsolved systems (SolverWarning / SolverError)."""
import warnings

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import bilevel_toys as toys
import boml
from boml import extension
from boml.errors import InvalidArgumentError, SolverError, SolverWarning
from boml.upper_iter import BOMLOuterGradImplicit


def _ridge(d):
    """The exact inner solution y*, the Hessian H and the closed-form dF/dW at y* (central differences of
    F(W, y*(W)) with y* solved exactly)."""
    A = d["X"] @ d["W"]
    H = A.T @ A + toys.RHO * np.eye(d["k"])

    def solve(W):
        Av = d["X"] @ W
        return np.linalg.solve(Av.T @ Av + toys.RHO * np.eye(d["k"]), Av.T @ d["b"])

    reference = toys.central_difference(lambda W: toys.outer_value(solve(W), W, d), d["W"], h=1e-6)
    return solve(d["W"]), H, reference


def _implicit_formula(d, y, q):
    """grad_W F - d/dW <q, grad_y f(y, W)> for the hyper-representation toy, in numpy."""
    X, Xq, W = d["X"], d["Xq"], d["W"]
    direct = np.outer(Xq.T @ (Xq @ W @ y - d["bq"]), y)
    mixed = np.outer(X.T @ (X @ W @ y - d["b"]), q) + np.outer(X.T @ X @ W @ q, y)
    return direct - mixed


def _w_hypergradient(d, T, lr, optimizer="SGD", **ul_kwargs):
    with tf.Graph().as_default(), tf.Session() as sess:
        boml_ho, _, pairs = toys.build_toy(d, outer_method="Implicit", T=T, lr=lr, optimizer=optimizer, **ul_kwargs)
        sess.run(tf.global_variables_initializer())
        grad = [g for g, v in pairs if v.name.startswith("W")][0]
        return sess.run(grad, boml_ho.outergradient.feed_dict(0))


@pytest.fixture(scope="module")
def ridge():
    d = toys.make_data(seed=3)
    return (d,) + _ridge(d)


@pytest.mark.parametrize("optimizer,lr,options", [
    ("SGD", 0.5, dict(solver="cg", tolerance=1e-13, cg_max_iter=100)),
    ("SGD", 0.5, dict(solver="neumann", neumann_terms=300)),
    ("Momentum", 0.3, dict(solver="fixed_point", tolerance=1e-13, fixed_point_max_iter=400)),
])
def test_every_solver_gives_the_closed_form_ridge_hypergradient(ridge, optimizer, lr, options):
    d, _, _, reference = ridge
    hg = _w_hypergradient(d, T=300, lr=lr, optimizer=optimizer, **options)
    assert toys.relative_error(hg, reference) < 1e-7


def test_neumann_is_the_truncated_series_and_its_error_falls_with_k(ridge):
    d, y, H, reference = ridge
    alpha = 0.4
    g = toys.grad_outer(y, d["W"], d)
    errors = []
    for K in (0, 4, 32):
        q_k = sum(np.linalg.matrix_power(np.eye(d["k"]) - alpha * H, j) @ (alpha * g) for j in range(K + 1))
        hg = _w_hypergradient(d, T=300, lr=0.5, solver="neumann", neumann_terms=K, neumann_alpha=alpha)
        assert toys.relative_error(hg, _implicit_formula(d, y, q_k)) < 1e-9
        errors.append(toys.relative_error(hg, reference))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[0] > 0.1 and errors[-1] < 1e-3


def test_fixed_point_follows_momentum_beyond_the_gradient_descent_step_limit(ridge):
    # lr * lambda_max(H) = 2.4 > 2: gradient descent (and the Neumann series with alpha = lr) diverges, the
    # heavy ball with momentum 0.5 (stable up to 2 (1 + 0.5) = 3) converges, and so does its fixed-point solve.
    d, _, H, reference = ridge
    lr = 2.4 / np.linalg.eigvalsh(H).max()
    hg = _w_hypergradient(d, T=200, lr=lr, optimizer="Momentum", solver="fixed_point", tolerance=1e-13,
                          fixed_point_max_iter=300)
    assert toys.relative_error(hg, reference) < 1e-7
    diverged = _w_hypergradient(d, T=200, lr=lr, optimizer="Momentum", solver="neumann", neumann_terms=60)
    assert not np.all(np.isfinite(diverged)) or toys.relative_error(diverged, reference) > 1e3


# ----------------------------------------------------------------------------------- unsolved systems
def _diagonal_problem(diagonal, x, a, T, lr, **ul_kwargs):
    """f(y, x) = 1/2 y^T D y - x^T y, F(y) = 1/2 ||y - a||^2; returns the optimizer and dF/dx."""
    xv = extension.get_outerparameter("x", np.asarray(x, np.float64))
    y = tf.get_variable("y", initializer=tf.zeros([len(x)], tf.float64), trainable=False)
    inner = 0.5 * tf.reduce_sum(tf.constant(np.asarray(diagonal, np.float64)) * y * y) - tf.reduce_sum(xv * y)
    outer = 0.5 * tf.reduce_sum(tf.square(y - tf.constant(np.asarray(a, np.float64))))
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Implicit")
    inner_grad = boml_ho.ll_problem(inner, lr, T, var_list=[y])
    boml_ho.ul_problem(outer, 1e-3, inner_grad, meta_param=[xv], outer_objective_optimizer="SGD", **ul_kwargs)
    boml_ho.aggregate_all()
    return boml_ho, boml_ho.hypergradients[0][0]


def _numpy_cg(H, b, iterations):
    q, r = np.zeros_like(b), b.copy()
    p = r.copy()
    for _ in range(iterations):
        step = (r @ r) / (p @ H @ p)
        q, r_new = q + step * p, r - step * (H @ p)
        p, r = r_new + (r_new @ r_new) / (r @ r) * p, r_new
    return q


def test_cg_warns_with_the_residual_on_an_ill_conditioned_problem(session):
    D = np.logspace(-5, 0, 8)
    x, a = np.linspace(0.5, 1.0, 8), np.linspace(-1.0, 1.0, 8)
    boml_ho, _ = _diagonal_problem(D, x, a, T=20, lr=1.0, tolerance=1e-10, cg_max_iter=3)
    session.run(tf.global_variables_initializer())
    with pytest.warns(SolverWarning) as caught:
        boml_ho.run(session=session)
    message = str(caught[0].message)
    assert caught[0].filename == __file__  # the warning names the caller of run(), not the library
    record = boml_ho.outergradient.monitor.last_records[0]
    # y_T of 20 gradient steps from 0 with step 1: y_i = (1 - (1 - D_i)^20) x_i / D_i.
    y = (1 - (1 - D) ** 20) * x / D
    expected = np.linalg.norm(D * _numpy_cg(np.diag(D), y - a, 3) - (y - a))
    assert record["residual"] == pytest.approx(expected, rel=1e-6)
    assert record["iterations"] == 3 and not record["converged"]
    assert f"{record['residual']:.3g}" in message and "cg_max_iter (now 3)" in message
    assert "cg_damping" in message and "1 of 1 task" in message
    # A run that keeps failing warns at its 1st, 2nd, 4th, 8th ... failing meta-iteration only.
    with pytest.warns(SolverWarning) as caught:
        for _ in range(6):  # failing meta-iterations 2 to 7
            boml_ho.run(session=session)
    assert len(caught) == 2 and "4 meta-iterations failed so far; next warning at 8" in str(caught[1].message)


def test_cg_stays_silent_once_the_tolerance_is_reached(session):
    D = np.logspace(-1, 0, 8)
    boml_ho, grad = _diagonal_problem(D, np.ones(8), np.zeros(8), T=400, lr=1.0, tolerance=1e-10)
    session.run(tf.global_variables_initializer())
    with warnings.catch_warnings():
        warnings.simplefilter("error", SolverWarning)
        boml_ho.run(session=session)
    assert boml_ho.outergradient.monitor.last_records[0]["converged"]


@pytest.mark.parametrize("mode", ["raise", "ignore"])
def test_non_positive_curvature_raises_or_is_ignored_as_asked(session, mode):
    # A saddle: D = diag(-1, 2) with grad F along the negative direction makes p^T H p < 0 at CG's first step.
    boml_ho, grad = _diagonal_problem([-1.0, 2.0], [0.1, 0.1], [5.0, 0.0], T=1, lr=0.1, tolerance=1e-10,
                                      solver_failure=mode)
    session.run(tf.global_variables_initializer())
    if mode == "raise":
        with pytest.raises(SolverError, match="non-positive curvature"):
            boml_ho.run(session=session)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SolverWarning)
            boml_ho.run(session=session)


# ----------------------------------------------------------------------------------- options
@pytest.mark.parametrize("options,expected", [
    (dict(solver="lu"), ("solver", "'lu'", "'cg'", "'neumann'", "'fixed_point'")),
    (dict(solver="neumann", neumann_terms=-1), ("neumann_terms", "-1", ">= 0")),
    (dict(solver="neumann", neumann_alpha=0.0), ("neumann_alpha", "0.0", "positive")),
    (dict(solver="fixed_point", fixed_point_max_iter=0), ("fixed_point_max_iter", "0", "positive integer")),
    (dict(solver_failure="loud"), ("solver_failure", "'loud'", "'warn'", "'raise'", "'ignore'")),
    (dict(tolerance=-1.0), ("tolerance", "-1.0", ">= 0")),
    (dict(neumann_terms=5), ("neumann_terms=5", "solver='neumann'", "received solver='cg'")),
    (dict(solver="neumann", cg_max_iter=10), ("cg_max_iter=10", "solver='cg'", "received solver='neumann'")),
    (dict(solver="fixed_point", cg_damping=0.1), ("cg_damping=0.1", "'cg' or 'neumann'", "'fixed_point'")),
    (dict(solver="neumann", tolerance=1e-3), ("tolerance=0.001", "received solver='neumann'")),
])
def test_bad_solver_options_are_refused_with_what_is_allowed(options, expected):
    with pytest.raises(InvalidArgumentError) as info:
        BOMLOuterGradImplicit(**options)
    for text in expected:
        assert text in str(info.value)


def test_conjugate_gradient_keeps_its_three_outputs_and_solves_a_spd_system(session):
    from boml.upper_iter import conjugate_gradient

    A = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    b = np.array([1.0, -2.0, 0.5])
    q, iterations, residual = conjugate_gradient(lambda p: [tf.linalg.matvec(tf.constant(A), p[0])],
                                                 [tf.constant(b)], 1e-12, 10)
    q, iterations, residual = session.run([q[0], iterations, residual])
    np.testing.assert_allclose(q, np.linalg.solve(A, b), rtol=1e-10)
    assert iterations <= 3 and residual <= 1e-12
