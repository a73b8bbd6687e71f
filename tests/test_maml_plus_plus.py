"""MAML++'s multi-step loss and derivative-order annealing against their definitions, in float64 (numpy unrolls
and central differences on the tanh-regression toy of bilevel_toys)."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import bilevel_toys as toys
import boml
from boml import extension
from boml.errors import InvalidArgumentError
from boml.upper_iter import BOMLOuterGradMAMLPlusPlus
from boml.upper_iter.maml_plus_plus import multi_step_loss_weights

T, LR = 3, 0.2


def _build(d, **ul_options):
    x = extension.get_outerparameter("x", d["x"])
    theta = tf.get_variable("theta", initializer=tf.zeros([len(d["x"])], tf.float64), trainable=False)

    def loss(X, b):
        return 0.5 * tf.reduce_sum(tf.square(tf.tanh(tf.linalg.matvec(tf.constant(X), theta)) - tf.constant(b)))

    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "MAML++")
    inner_grad = boml_ho.ll_problem(loss(d["X"], d["b"]), LR, T, var_list=[theta], initial_state=[x])
    boml_ho.ul_problem(loss(d["Xq"], d["bq"]), 1e-3, inner_grad, meta_param=[x], **ul_options)
    return boml_ho, boml_ho.outergradient.outer_grads_and_vars()[0][0]


def _thetas(x, d):
    thetas, theta = [], np.array(x, dtype=float)
    for _ in range(T):
        theta = theta - LR * toys.maml_grad(theta, d["X"], d["b"])
        thetas.append(theta)
    return thetas


def test_weights_follow_the_annealing_schedule():
    N = 10
    for k in (0, 3, 9, 10, 50):
        w = multi_step_loss_weights(k, T, N)
        expected_early = max(1 / T - k / (T * N), 0.03 / T)
        np.testing.assert_allclose(w[:-1], expected_early, rtol=1e-12)
        assert w.sum() == pytest.approx(1.0) and w[-1] == pytest.approx(1 - (T - 1) * expected_early)
    np.testing.assert_array_equal(multi_step_loss_weights(5, T, N, final_only=True), [0, 0, 1])


@pytest.mark.parametrize("k", [0, 4])
def test_multi_step_loss_hypergradient_is_the_gradient_of_the_weighted_query_losses(session, k):
    d = toys.make_maml_data(seed=7)
    boml_ho, grad = _build(d, multi_step_loss=True, msl_anneal_iterations=5)
    session.run(tf.global_variables_initializer())
    hg = session.run(grad, boml_ho.outergradient.feed_dict(k))
    w = multi_step_loss_weights(k, T, 5)

    def objective(x):
        return sum(wt * toys.maml_loss(theta, d["Xq"], d["bq"]) for wt, theta in zip(w, _thetas(x, d)))

    assert toys.relative_error(hg, toys.central_difference(objective, d["x"])) < 1e-7


def test_derivative_order_annealing_is_first_order_then_second_order(session):
    d = toys.make_maml_data(seed=8)
    boml_ho, grad = _build(d, first_order_iterations=3)
    session.run(tf.global_variables_initializer())
    early = session.run(grad, boml_ho.outergradient.feed_dict(2))
    late = session.run(grad, boml_ho.outergradient.feed_dict(3))
    theta_T = _thetas(d["x"], d)[-1]
    # First order: the inner gradients are constants, d theta_T / dx = I.
    first = toys.maml_grad(theta_T, d["Xq"], d["bq"])
    second = toys.central_difference(lambda x: toys.maml_loss(_thetas(x, d)[-1], d["Xq"], d["bq"]), d["x"])
    assert toys.relative_error(early, first) < 1e-12
    assert toys.relative_error(late, second) < 1e-7
    assert toys.relative_error(first, second) > 1e-3


@pytest.mark.parametrize("options,match", [
    ({"multi_step_loss": 1}, "multi_step_loss must be True or False"),
    ({"msl_anneal_iterations": 0}, "msl_anneal_iterations must be a positive integer; received 0"),
    ({"first_order_iterations": -2}, "first_order_iterations must be an integer >= 0; received -2"),
    ({"learn_step_sizes": "yes"}, "learn_step_sizes must be True or False; received 'yes'"),
])
def test_bad_maml_plus_plus_options_are_refused(options, match):
    with pytest.raises(InvalidArgumentError, match=match):
        BOMLOuterGradMAMLPlusPlus(**options)


def test_lslr_learns_one_step_size_per_layer_and_step(session):
    # Two task variables (a "layer" each): theta = (a, c), model tanh(X a) + c; step t uses lslr[t-1, i].
    d = toys.make_maml_data(seed=9)
    xa = extension.get_outerparameter("xa", d["x"])
    xc = extension.get_outerparameter("xc", np.array(0.1))
    a = tf.get_variable("a", initializer=tf.zeros([len(d["x"])], tf.float64), trainable=False)
    c = tf.get_variable("c", initializer=tf.constant(0.0, tf.float64), trainable=False)

    def loss(X, b):
        return 0.5 * tf.reduce_sum(tf.square(tf.tanh(tf.linalg.matvec(tf.constant(X), a)) + c - tf.constant(b)))

    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "MAML++")
    inner_grad = boml_ho.ll_problem(loss(d["X"], d["b"]), LR, T, var_list=[a, c], initial_state=[xa, xc])
    boml_ho.ul_problem(loss(d["Xq"], d["bq"]), 1e-3, inner_grad, meta_param=[xa, xc], learn_step_sizes=True)
    lslr = boml_ho.outergradient.step_sizes
    rates = np.array([[0.2, 0.1], [0.3, 0.05], [0.15, 0.25]])
    grads = {v.name.split(":")[0]: g for g, v in boml_ho.outergradient.outer_grads_and_vars()}
    session.run(tf.global_variables_initializer())
    lslr.load(rates, session)
    hg = session.run(grads, boml_ho.outergradient.feed_dict(0))

    def objective(r, x_a=d["x"], x_c=0.1):
        av, cv = np.array(x_a, dtype=float), float(x_c)
        for t in range(T):
            h = np.tanh(d["X"] @ av)
            res = h + cv - d["b"]
            av, cv = av - r[t, 0] * (d["X"].T @ (res * (1 - h * h))), cv - r[t, 1] * res.sum()
        return 0.5 * np.sum((np.tanh(d["Xq"] @ av) + cv - d["bq"]) ** 2)

    assert toys.relative_error(hg["lslr"], toys.central_difference(objective, rates)) < 1e-7
    assert toys.relative_error(hg["xa"], toys.central_difference(lambda v: objective(rates, x_a=v), d["x"])) < 1e-7
    with pytest.raises(boml.errors.InvalidCombinationError, match="learn_lr=True"):
        with tf.Graph().as_default():
            _build_learned_lr(d)


def _build_learned_lr(d):
    x = extension.get_outerparameter("x", d["x"])
    theta = tf.get_variable("theta", initializer=tf.zeros([len(d["x"])], tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "MAML++")
    inner_grad = boml_ho.ll_problem(tf.reduce_sum(theta ** 2), LR, T, var_list=[theta], initial_state=[x],
                                    learn_lr=True)
    boml_ho.ul_problem(tf.reduce_sum(theta ** 2), 1e-3, inner_grad, meta_param=[x], learn_step_sizes=True)


def test_lslr_needs_a_number_to_start_from():
    theta = tf.get_variable("theta", initializer=tf.zeros([2], tf.float64), trainable=False)
    lr = tf.placeholder_with_default(tf.constant(0.1, tf.float64), [])
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "MAML++")
    inner_grad = boml_ho.ll_problem(tf.reduce_sum(theta ** 2), lr, T, var_list=[theta])
    with pytest.raises(InvalidArgumentError, match="must be a number"):
        boml_ho.ul_problem(tf.reduce_sum(theta ** 2), 1e-3, inner_grad, learn_step_sizes=True)


def test_cli_algorithm_maml_plus_plus_and_its_settings():
    from boml import workflow

    config = workflow.preset("maml++-omniglot-5w1s").validate()
    assert (config.outer_method, config.multi_step_loss, config.first_order_iterations) == ("MAML++", True, 1000)
    with pytest.raises(InvalidArgumentError, match="multi_step_loss are settings of outer_method='MAML\\+\\+'"):
        workflow.Config(algorithm="maml", multi_step_loss=True).validate()
