"""Reptile, inner-objective regularization and MT-net's learned update mask."""
import numpy as np
import tensorflow.compat.v1 as tf

import boml
from boml import extension

import bilevel_toys as toys


def _by_name(session, pairs):
    return {v.name.split(":")[0].split("/")[-1]: session.run(g) for g, v in pairs}


def test_reptile_hypergradient_is_initialization_minus_adapted_weights(session):
    d = toys.make_maml_data(seed=4)
    _, pairs = toys.build_maml_toy(d, T=4, lr=0.3, outer_method="Reptile")
    session.run(tf.global_variables_initializer())
    theta_T, _ = toys.maml_unroll(d["x"], d, 4, 0.3)
    np.testing.assert_allclose(_by_name(session, pairs)["x"], d["x"] - theta_T, rtol=1e-10, atol=1e-12)


def _ridge_with_penalty(session, l1, l2, T=4, lr=0.1):
    d = toys.make_data(seed=5)
    X, b = tf.constant(d["X"]), tf.constant(d["b"])
    W = extension.get_outerparameter("W", d["W"])
    y = tf.get_variable("y", initializer=tf.constant(np.linspace(-1, 1, d["k"])), trainable=False)
    inner = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(X, W), y) - b))
    outer = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(tf.constant(d["Xq"]), W), y) - d["bq"]))
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    inner_grad = boml_ho.ll_problem(inner, lr, T, var_list=[y], l1_reg=l1, l2_reg=l2)
    boml_ho.ul_problem(outer, 1e-3, inner_grad, meta_param=[W])
    adapted = boml_ho.adapted(tf.identity(y))
    pairs = boml_ho.outergradient.outer_grads_and_vars()
    session.run(tf.global_variables_initializer())

    def unroll(Wv):
        yv = np.linspace(-1, 1, d["k"])
        for _ in range(T):
            A = d["X"] @ Wv
            yv = yv - lr * (A.T @ (A @ yv - d["b"]) + l2 * yv + l1 * np.sign(yv))
        return yv

    return d, session.run(adapted)[0], session.run(pairs[0][0]), unroll


def test_l2_penalty_applied_at_every_inner_step(session):
    d, adapted, hg, unroll = _ridge_with_penalty(session, 0.0, 0.7)
    np.testing.assert_allclose(adapted, unroll(d["W"]), rtol=1e-12)
    reference = toys.central_difference(lambda W: toys.outer_value(unroll(W), W, d), d["W"])
    assert toys.relative_error(hg, reference) < 1e-6


def test_l1_penalty_applied_at_every_inner_step(session):
    d, adapted, _, unroll = _ridge_with_penalty(session, 0.2, 0.0)
    np.testing.assert_allclose(adapted, unroll(d["W"]), rtol=1e-12)


def test_mt_net_mask_freezes_masked_units_and_learns(session):
    d = toys.make_maml_data(seed=6)
    boml_ho, _ = toys.build_maml_toy(d, T=3, lr=0.3, use_mask=True, mask_init=0.0)
    inner_grad = boml_ho._inner_grads[0]
    theta = inner_grad.var_list[0]
    adapted = boml_ho.adapted(tf.identity(theta))
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    logits = inner_grad.mask_logits[0]
    pattern = np.array([3.0, -3.0, 3.0, -3.0])
    logits.load(pattern, session)
    theta_T = session.run(adapted)[0]
    frozen = pattern < 0
    np.testing.assert_array_equal(theta_T[frozen], d["x"][frozen])
    assert np.all(np.abs(theta_T[~frozen] - d["x"][~frozen]) > 1e-4)
    # The expected adapted weights: masked gradient steps in numpy.
    expected = np.array(d["x"], float)
    for _ in range(3):
        expected = expected - 0.3 * toys.maml_grad(expected, d["X"], d["b"]) * (~frozen)
    np.testing.assert_allclose(theta_T, expected, rtol=1e-10)
    # The mask logits are meta-parameters that receive hypergradients and move.
    logits.load(np.zeros(4), session)
    before = session.run(logits)
    for _ in range(5):
        boml_ho.run(session=session)
    assert not np.allclose(session.run(logits), before)
