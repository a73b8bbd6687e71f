"""The per-task dynamics contract (TaskDynamics) and the original's engine-object names, in float64."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml

from boml import errors, extension
from boml.lower_iter import BOMLInnerGradTrad
from boml.optimizer import BOMLOptAdam
from boml.task import TaskProgram
from boml.upper_iter import BOMLOuterGradDarts

import bilevel_toys as toys


def _ridge(optimizer="Adam", **options):
    d = toys.make_data(seed=9)
    W = extension.get_outerparameter("W", d["W"])
    y = tf.get_variable("y", initializer=tf.constant(np.linspace(-0.5, 0.5, d["k"])), trainable=False)
    f = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(tf.constant(d["X"]), W), y) - d["b"])) + \
        0.5 * toys.RHO * tf.reduce_sum(tf.square(y))
    strategy = BOMLInnerGradTrad(f, [y], optimizer, T=3, learning_rate=0.05, **options)
    return d, W, y, strategy


def test_step_applies_mask_then_the_inner_optimizer(session):
    d, W, y, strategy = _ridge(use_mask=True, mask_init=0.0, mask_noise=False, l2_reg=0.2)
    task = TaskProgram((), [W], [y])
    dynamics = strategy.task_dynamics(task)
    state = dynamics.initial_state()
    (new_state,), slots = dynamics.step(1, state, dynamics.initial_slots(state))
    session.run(tf.global_variables_initializer())
    strategy.mask_logits[0].load(np.array([1.0, -1.0, 2.0]), session)  # hard mask [1, 0, 1]
    y0 = np.linspace(-0.5, 0.5, d["k"])
    g = toys.grad_inner(y0, d["W"], d) + 0.2 * y0          # the l2 penalty is part of every direction
    mask = np.array([1.0, 0.0, 1.0])
    expected, _ = toys.optimizer_step("Adam", y0, mask * g, [np.zeros_like(y0)] * 2, 1, 0.05)
    np.testing.assert_allclose(session.run(new_state), expected, rtol=1e-12)
    assert len(slots) == 2


def test_step_equals_the_optimizer_rule_and_residual_is_the_inner_gradient(session):
    d, W, y, strategy = _ridge()
    task = TaskProgram((), [W], [y])
    dynamics = strategy.task_dynamics(task)
    trajectory = dynamics.unroll(keep_previous=True)
    residual = dynamics.residual(trajectory.final)[0]
    session.run(tf.global_variables_initializer())
    y_T, _ = toys.unroll(d["W"], d, 3, 0.05, "Adam", y0=np.linspace(-0.5, 0.5, d["k"]))
    y_prev, _ = toys.unroll(d["W"], d, 2, 0.05, "Adam", y0=np.linspace(-0.5, 0.5, d["k"]))
    final, previous, r = session.run([trajectory.final[0], trajectory.previous[0], residual])
    np.testing.assert_allclose(final, y_T, rtol=1e-12)
    np.testing.assert_allclose(previous, y_prev, rtol=1e-12)
    np.testing.assert_allclose(r, toys.grad_inner(y_T, d["W"], d), rtol=1e-12)
    assert isinstance(strategy.optimizer, BOMLOptAdam)


def test_original_engine_object_names(session):
    d, W, y, strategy = _ridge(optimizer="SGD")
    one_step = strategy.dynamics[y]
    session.run(tf.global_variables_initializer())
    y0 = np.linspace(-0.5, 0.5, d["k"])
    np.testing.assert_allclose(session.run(one_step), y0 - 0.05 * toys.grad_inner(y0, d["W"], d), rtol=1e-12)
    assert strategy.dynamics is strategy.dynamics
    feed = strategy.state_feed_dict([np.ones(d["k"])])
    np.testing.assert_allclose(session.run(one_step, feed), 1 - 0.05 * toys.grad_inner(np.ones(3), d["W"], d),
                               rtol=1e-12)
    with pytest.raises(errors.InvalidArgumentError, match="one value per task variable"):
        strategy.state_feed_dict([])
    session.run(tf.assign(y, np.full(d["k"], 4.0)))
    session.run(strategy.initialization)
    np.testing.assert_allclose(session.run(y), y0)


def test_outer_strategy_iteration_is_the_inner_step_and_initialization_resets_it(session):
    # The original's protocol: run ``initialization``, then ``iteration`` (one stateful inner step + read) T times.
    d = toys.make_data(seed=2)
    boml_ho, _, _ = toys.build_toy(d, T=3, lr=0.1, optimizer="Momentum")
    outer = boml_ho.outergradient
    session.run(tf.global_variables_initializer())
    (y,) = outer.state
    session.run(tf.assign(y, np.full(d["k"], 2.0)))
    session.run(outer.initialization)
    np.testing.assert_allclose(session.run(y), np.zeros(d["k"]))
    for _ in range(2):  # the momentum slot persists between steps and is reset by initialization
        for n in (1, 2, 3):
            ((values,),) = session.run(outer.iteration)
            np.testing.assert_allclose(values, toys.unroll(d["W"], d, n, 0.1, "Momentum")[0], rtol=1e-12)
        session.run(outer.initialization)
    np.testing.assert_allclose(session.run(y), np.zeros(d["k"]))


def test_optimizer_settings_must_belong_to_the_chosen_optimizer():
    for options, error, match in (({"optimizer": "SGD", "beta1": 0.5}, errors.InvalidArgumentError, "take beta1"),
                                  ({"lr_granularity": "row"}, errors.InvalidArgumentError, "lr_granularity"),
                                  ({"use_msk": True}, errors.UnknownOptionError, "use_msk")):
        with tf.Graph().as_default(), pytest.raises(error, match=match):
            _ridge(**options)


def test_truncated_loop_keeps_the_previous_state(session):
    d, W, y, strategy = _ridge(optimizer="Momentum")
    dynamics = strategy.task_dynamics(TaskProgram((), [W], [y]))
    trajectory = dynamics.unroll(truncate=1, keep_previous=True)
    session.run(tf.global_variables_initializer())
    y0 = np.linspace(-0.5, 0.5, d["k"])
    (y_prev, (m_prev,)), (y_T, _) = (toys.unroll(d["W"], d, n, 0.05, "Momentum", y0=y0) for n in (2, 3))
    previous, slots, final = session.run([trajectory.previous[0], trajectory.previous_slots[0], trajectory.final[0]])
    np.testing.assert_allclose(previous, y_prev, rtol=1e-12)
    np.testing.assert_allclose(slots, m_prev, rtol=1e-12)
    np.testing.assert_allclose(final, y_T, rtol=1e-12)


def test_strategy_options_outside_their_strategy_are_refused():
    y = tf.get_variable("y", initializer=tf.zeros([2], tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    with pytest.raises(errors.UnknownOptionError, match="learn_st"):
        boml_ho.ll_problem(tf.reduce_sum(tf.square(y)), 0.1, 2, var_list=[y], learn_st=True)  # Aggr only
    boml_ho.ll_problem(tf.reduce_sum(tf.square(y)), 0.1, 2, var_list=[y], s=1, t=1)  # defaults mean "not set"
    with pytest.raises(errors.InvalidArgumentError, match="epsilon must be a positive number"):
        BOMLOuterGradDarts(epsilon=0)


def test_adam_epsilon_inside_sqrt_through_ll_problem(session):
    # The original's Adam placed epsilon inside the root: w - lr_t * m / sqrt(v + eps^2).
    d = toys.make_data(seed=4)
    W = extension.get_outerparameter("W", d["W"])
    y = tf.get_variable("y", initializer=tf.zeros([d["k"]], tf.float64), trainable=False)
    f = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(tf.constant(d["X"]), W), y) - d["b"])) + \
        0.5 * toys.RHO * tf.reduce_sum(tf.square(y))
    adapted = {}
    for inside in (True, False):
        boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
        boml_ho.ll_problem(f, 0.05, 3, var_list=[y], inner_objective_optimizer="Adam", epsilon=0.3, beta1=0.8,
                           beta2=0.9, epsilon_inside_sqrt=inside)
        adapted[inside] = boml_ho.adapted(y)[0]
    session.run(tf.global_variables_initializer())
    w, m, v = np.zeros(d["k"]), np.zeros(d["k"]), np.zeros(d["k"])
    for t in (1, 2, 3):
        g = toys.grad_inner(w, d["W"], d)
        m, v = 0.8 * m + 0.2 * g, 0.9 * v + 0.1 * g * g
        w = w - 0.05 * np.sqrt(1 - 0.9 ** t) / (1 - 0.8 ** t) * m / np.sqrt(v + 0.3 ** 2)
    inside, outside = session.run([adapted[True], adapted[False]])
    np.testing.assert_allclose(inside, w, rtol=1e-12)
    assert np.max(np.abs(outside - w)) > 1e-3  # the default (published) placement is a different update
    with pytest.raises(errors.InvalidArgumentError, match="epsilon_inside_sqrt"):
        boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse").ll_problem(f, 0.05, 3, var_list=[y],
                                                                      epsilon_inside_sqrt=True)  # SGD
