"""BOMLOptimizer's documented behaviour on a scalar bilevel problem with a closed-form answer.

    f(y, x) = (y - x)^2 / 2,   F(y) = (y - 1)^2 / 2,   SGD with step 0.5 from y_0 = 0:
    y_T = x (1 - 0.5^T)   and   dF/dx = (y_T - 1)(1 - 0.5^T)   (Reverse).
"""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml

X0, LR, T = 3.0, 0.5, 3


def _scalar_problem(outer_method="Reverse", lr=LR, steps=T, scale=None, **ll):
    """The lower problem; ``scale`` (a plain variable, not a meta-parameter) multiplies x in f."""
    x = boml.get_outerparameter("x", np.float64(X0))
    y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
    target = x if scale is None else scale * x
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", outer_method)
    inner = boml_ho.ll_problem(0.5 * tf.square(y - target), lr, steps, var_list=[y], **ll)
    return boml_ho, inner, x, y


def _y_T(x, steps=T, lr=LR):
    return x * (1 - (1 - lr) ** steps)


def test_run_returns_the_losses_and_takes_one_meta_step(session):
    boml_ho, inner, x, y = _scalar_problem()
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, meta_param=[x], outer_objective_optimizer="SGD")
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    y_T = _y_T(X0)
    hypergradient = (y_T - 1.0) * (1 - 0.5 ** T)
    [(grad, var)] = boml_ho.hypergradients
    assert var is x and session.run(grad) == pytest.approx(hypergradient, rel=1e-12)
    losses = boml_ho.run(session=session)
    assert losses["outer_loss"] == pytest.approx(0.5 * (y_T - 1.0) ** 2, rel=1e-12)
    assert losses["inner_loss"] == pytest.approx(0.5 * (y_T - X0) ** 2, rel=1e-12)
    # The meta learning-rate schedule is a float32 tensor: 0.1 is 0.1 to about 1e-8.
    assert session.run(x) == pytest.approx(X0 - 0.1 * hypergradient, rel=1e-8)
    assert session.run(boml_ho.global_step) == 1


def test_meta_learning_rate_follows_the_inverse_time_schedule(session):
    boml_ho, inner, x, y = _scalar_problem()
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, mlr_decay=0.5, meta_param=[x])
    session.run(tf.global_variables_initializer())
    assert session.run(boml_ho.learning_rate) == LR
    for k in (0, 1, 4):
        session.run(boml_ho.global_step.assign(k))
        assert session.run(boml_ho.meta_learning_rate) == pytest.approx(0.1 / (1 + 0.5 * k))


def test_a_plain_variable_in_the_objective_is_read_not_learned(session):
    c = tf.get_variable("c", initializer=tf.constant(2.0, tf.float64), trainable=False)
    boml_ho, inner, x, y = _scalar_problem(scale=c)
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, meta_param=[x])
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    y_T = _y_T(2.0 * X0)
    assert [v for _, v in boml_ho.hypergradients] == [x]
    assert session.run(boml_ho.hypergradients[0][0]) == pytest.approx((y_T - 1.0) * 2.0 * (1 - 0.5 ** T))
    session.run(c.assign(-1.0))  # the dynamics read the variable's current value
    y_T = _y_T(-X0)
    assert session.run(boml_ho.hypergradients[0][0]) == pytest.approx((y_T - 1.0) * -1.0 * (1 - 0.5 ** T))


def test_hypergradients_can_be_restricted_to_some_meta_parameters(session):
    z = boml.get_outerparameter("z", np.float64(2.0))
    boml_ho, inner, x, y = _scalar_problem()
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0) + z * x, 0.1, inner, meta_param=[x, z])
    pairs = boml_ho.outergradient.outer_grads_and_vars(meta_param=[z])
    assert [v for _, v in pairs] == [z]
    session.run(tf.global_variables_initializer())
    assert session.run(pairs[0][0]) == pytest.approx(X0)  # dF/dz = x


def test_adapted_evaluates_tensors_after_the_training_dynamics(session):
    boml_ho, inner, x, y = _scalar_problem()
    value, doubled = boml_ho.adapted([y, 2.0 * y], T=2)
    single = boml_ho.adapted(y)
    session.run(tf.global_variables_initializer())
    assert session.run(value).tolist() == [pytest.approx(_y_T(X0, 2))]  # one task, two steps
    assert session.run(doubled).tolist() == [pytest.approx(2 * _y_T(X0, 2))]
    assert session.run(single).tolist() == [pytest.approx(_y_T(X0))]  # the training T


def test_a_tensor_learning_rate_is_fed_and_cast_to_the_variables_type(session):
    lr = tf.placeholder_with_default(tf.constant(0.5, tf.float32), [])
    boml_ho, inner, x, y = _scalar_problem(lr=lr, steps=1)
    adapted = boml_ho.adapted(y)
    session.run(tf.global_variables_initializer())
    assert session.run(adapted)[0] == pytest.approx(0.5 * X0)
    assert session.run(adapted, {lr: 0.25})[0] == pytest.approx(0.25 * X0)
    assert session.run(boml_ho.learning_rate, {lr: 0.25}) == 0.25


def test_run_feeds_the_schedule_of_the_current_meta_iteration_and_sync_step_resumes_it(session):
    """Implicit's tolerance is fed by run() at meta-iteration k: with tolerance(0) huge, CG stops at q = 0 and
    the hypergradient is 0 (F has no direct dependence on x); afterwards it is the implicit y_T - 1."""
    boml_ho, inner, x, y = _scalar_problem(outer_method="Implicit", steps=40)
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, meta_param=[x], outer_objective_optimizer="SGD",
                       mlr_decay=0.0, tolerance=lambda k: 1e3 if k == 0 else 1e-12)
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    boml_ho.run(session=session)
    assert session.run(x) == X0
    boml_ho.run(session=session)
    after_two = X0 - 0.1 * (_y_T(X0, 40) - 1.0)
    assert session.run(x) == pytest.approx(after_two, rel=1e-8)  # float32 meta learning rate
    x_two = session.run(x)
    session.run(boml_ho.global_step.assign(0))  # e.g. a checkpoint of meta-iteration 0 restored
    boml_ho.sync_step(session)
    boml_ho.run(session=session)  # meta-iteration 0 again: tolerance(0), no move
    assert session.run(x) == x_two


def test_feed_dicts_may_be_callables_of_the_meta_iteration(session):
    target = tf.placeholder(tf.float64, [])
    boml_ho, inner, x, y = _scalar_problem()
    boml_ho.ul_problem(0.5 * tf.square(y - target), 0.1, inner, meta_param=[x], outer_objective_optimizer="SGD")
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    seen = []
    for _ in range(2):
        boml_ho.run(outer_objective_feed_dicts=lambda k: seen.append(k) or {target: float(k)}, session=session)
    assert seen == [0, 1]
    y0 = _y_T(X0)
    x1 = X0 - 0.1 * (y0 - 0.0) * (1 - 0.5 ** T)
    x2 = x1 - 0.1 / (1 + 1e-5) * (_y_T(x1) - 1.0) * (1 - 0.5 ** T)
    assert session.run(x) == pytest.approx(x2, rel=1e-8)  # float32 meta learning rate


def test_a_number_as_tolerance_is_a_constant_schedule():
    """tolerance=1e3 at every meta-iteration: CG stops at q = 0, the hypergradient stays 0 and x never moves;
    tolerance=1e-12 gives the implicit hypergradient y_T - 1."""
    for tolerance, expected in ((1e3, X0), (1e-12, X0 - 0.1 * (_y_T(X0, 40) - 1.0))):
        with tf.Graph().as_default(), tf.Session() as sess:
            boml_ho, inner, x, y = _scalar_problem(outer_method="Implicit", steps=40)
            boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, meta_param=[x], outer_objective_optimizer="SGD",
                               tolerance=tolerance)
            boml_ho.aggregate_all()
            sess.run(tf.global_variables_initializer())
            boml_ho.run(session=sess)
            first = sess.run(x)
            boml_ho.run(session=sess)
            assert first == pytest.approx(expected, rel=1e-8)
            if tolerance > 1:
                assert sess.run(x) == X0


def test_meta_update_op_is_one_meta_iteration(session):
    boml_ho, inner, x, y = _scalar_problem()
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, meta_param=[x], outer_objective_optimizer="SGD")
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    session.run(boml_ho.meta_update_op)
    assert session.run(x) == pytest.approx(X0 - 0.1 * (_y_T(X0) - 1.0) * (1 - 0.5 ** T), rel=1e-8)
    assert session.run(boml_ho.global_step) == 1


def test_inner_objectives_include_the_penalties(session):
    """ll_problem adds l2 * y^2 / 2 + l1 * |y| to f; inner_objectives lists the objective the dynamics use."""
    boml_ho, inner, x, y = _scalar_problem(l2_reg=0.7, l1_reg=0.2)
    [objective] = boml_ho.inner_objectives
    session.run(tf.global_variables_initializer())
    session.run(y.assign(-2.0))
    assert session.run(objective) == pytest.approx(0.5 * (-2.0 - X0) ** 2 + 0.7 * 4.0 / 2 + 0.2 * 2.0)


@pytest.mark.parametrize("tolerance, expected", [(None, lambda k: 0.1 * 0.9 ** k), (1e-4, lambda k: 1e-4)])
def test_implicit_tolerance_default_and_constant_schedules(tolerance, expected):
    """tolerance=None is the documented default 0.1 * 0.9^k; a number is the same at every meta-iteration."""
    boml_ho, inner, x, y = _scalar_problem(outer_method="Implicit")
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, meta_param=[x], tolerance=tolerance)
    for k in (0, 3, 10):
        assert list(boml_ho.outergradient.feed_dict(k).values()) == [pytest.approx(expected(k))]


def test_the_facade_only_wires():
    # Issue 11: the facade holds no maths and no strategy-name special cases, and stays under 300 lines.
    import inspect
    import re

    from boml.boml_optimizer import optimizer

    source = inspect.getsource(optimizer)
    assert len(source.splitlines()) < 300
    code = re.sub(r'""".*?"""', "", source, flags=re.S)
    for forbidden in ("tf.gradients", "apply_gradients", '"Aggr"', '"MetaInit"', '"MetaFeat"', '"Simple"',
                      "inspect.signature"):
        assert forbidden not in code, forbidden
