"""The facade's accessors and argument checks, on a scalar bilevel problem with a known answer."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors


def _scalar_problem(outer_method="Reverse", **ll):
    # f = (y - x)^2 / 2, F = (y - 1)^2 / 2; SGD with lr 0.5 from y0 = 0: y_T = x (1 - 0.5^T).
    x = boml.get_outerparameter("x", np.float64(3.0))
    y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
    inner_objective = 0.5 * tf.square(y - x)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", outer_method)
    inner = boml_ho.ll_problem(inner_objective, 0.5, 3, var_list=[y], **ll)
    return boml_ho, inner, x, y, inner_objective


def test_accessors_describe_the_built_problem(session):
    boml_ho, inner, x, y, inner_objective = _scalar_problem()
    assert boml_ho.method == "MetaFeat" and boml_ho.meta_model is None and boml_ho.truncate_iter == -1
    assert boml_ho.innergradient is boml.BOMLInnerGradTrad and boml_ho.outergradient is None
    assert boml_ho.inner_objectives == [inner_objective] and boml_ho.param_dict["T"] == 3
    with pytest.raises(errors.NotFinalizedError):
        boml_ho.hypergradients
    with pytest.raises(errors.NotFinalizedError):
        boml_ho.run(session=session)
    with pytest.raises(errors.PhaseError, match="at least one ul_problem"):
        boml_ho.aggregate_all()
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, meta_param=[x], outer_objective_optimizer="SGD")
    boml_ho.aggregate_all()
    assert isinstance(boml_ho.outergradient, boml.BOMLOuterGradReverse)
    assert boml_ho.meta_update_op is not None
    session.run(tf.global_variables_initializer())
    assert session.run(boml_ho.learning_rate) == 0.5
    assert session.run(boml_ho.meta_learning_rate) == pytest.approx(0.1)
    with pytest.raises(errors.PhaseError, match="after aggregate_all"):
        boml_ho.ll_problem(inner_objective, 0.5, 3, var_list=[y])
    losses = boml_ho.run(session=session)
    y_T = 3.0 * (1 - 0.5 ** 3)
    assert losses["outer_loss"] == pytest.approx(0.5 * (y_T - 1.0) ** 2)
    boml_ho.sync_step(session)
    assert boml_ho._python_step(session) == 1


def test_adapted_needs_a_lower_problem_and_evaluates_lists(session):
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    with pytest.raises(errors.PhaseError, match="needs an ll_problem"):
        boml_ho.adapted(tf.constant(1.0))
    boml_ho, inner, x, y, _ = _scalar_problem()
    value, doubled = boml_ho.adapted([y, 2.0 * y], T=2)
    session.run(tf.global_variables_initializer())
    assert session.run(value).tolist() == [pytest.approx(3.0 * 0.75)]  # one task, two steps
    assert session.run(doubled).tolist() == [pytest.approx(4.5)]


def test_lower_problem_argument_checks():
    y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    with pytest.raises(errors.InvalidArgumentError, match="needs the task variables"):
        boml_ho.ll_problem(tf.square(y), 0.5, 3)
    for kwargs, message in (({"learning_rate": "fast"}, "positive number"),
                            ({"learning_rate": -1.0}, "positive finite"),
                            ({"lr_granularity": "row"}, "lr_granularity"),
                            ({"l2_reg": -0.1}, "l2_reg must be")):
        arguments = {"learning_rate": 0.5, **kwargs}
        with pytest.raises(errors.InvalidArgumentError, match=message):
            boml_ho.ll_problem(tf.square(y), T=3, var_list=[y], **arguments)
    with pytest.raises(errors.InvalidArgumentError, match="truncate_iter must be -1"):
        boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse", truncate_iter=-3)
    with pytest.raises(errors.InvalidArgumentError, match="only applies to outer_method='Reverse'"):
        boml.BOMLOptimizer("MetaFeat", "Trad", "Implicit", truncate_iter=2)


def test_tensor_learning_rate_and_upper_problem_checks(session):
    lr = tf.placeholder_with_default(tf.constant(0.5, tf.float32), [])
    x = boml.get_outerparameter("x", np.float64(3.0))
    y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    inner = boml_ho.ll_problem(0.5 * tf.square(y - x), lr, 1, var_list=[y])
    assert boml_ho.learning_rate.dtype == tf.float64  # a tensor step size is cast to the variables' type
    other = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    foreign = other.ll_problem(0.5 * tf.square(y - x), 0.5, 1, var_list=[y])
    with pytest.raises(errors.InvalidArgumentError, match="returned by this optimizer"):
        boml_ho.ul_problem(tf.square(y), 0.1, foreign)
    with pytest.raises(errors.UnknownNameError, match="outer_objective_optimizer"):
        boml_ho.ul_problem(tf.square(y), 0.1, inner, meta_param=[x], outer_objective_optimizer="RMSProp")
    session.run(tf.global_variables_initializer())
    assert session.run(boml_ho.learning_rate, {lr: 0.25}) == 0.25


def test_meta_learner_checks():
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    with pytest.raises(errors.UnknownNameError, match="No network registered"):
        boml_ho.meta_learner(x, meta_model="V42")
    with pytest.raises(errors.InvalidArgumentError, match="number of classes"):
        boml_ho.meta_learner(x, meta_model="V1")
    with pytest.raises(errors.PhaseError, match="before base_learner"):
        boml_ho.base_learner(x, None)
    net = boml_ho.meta_learner(x, meta_model="v1", dim_output=3, dim_hidden=(4,))
    assert boml_ho.meta_model == "V1" and net.out.shape.as_list() == [None, 3]
    feat = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    features = feat.meta_learner(x, meta_model="V1", dim_hidden=(4,))
    with pytest.raises(errors.InvalidArgumentError, match="set_output_dim"):
        feat.base_learner(features.out, features)
    feat.set_output_dim(5)
    assert feat.base_learner(features.out, features).out.shape.as_list() == [None, 5]


def test_run_needs_a_session():
    boml_ho, inner, x, y, _ = _scalar_problem()
    boml_ho.ul_problem(tf.square(y - 1.0), 0.1, inner, meta_param=[x])
    boml_ho.aggregate_all()
    assert tf.get_default_session() is None
    with pytest.raises(errors.InvalidArgumentError, match="needs a session"):
        boml_ho.run()
