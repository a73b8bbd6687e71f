"""BOMLOptimizer's refusals: a typed exception whose message names the value received (or the call made out
of order) and what to do instead."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors


def _raises(error_type, call, *fragments):
    """Runs ``call`` and checks that it raises ``error_type`` with every fragment in its message."""
    with pytest.raises(error_type) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def _lower_problem(outer_method="Reverse"):
    x = boml.get_outerparameter("x", np.float64(3.0))
    y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", outer_method)
    inner = boml_ho.ll_problem(0.5 * tf.square(y - x), 0.5, 3, var_list=[y])
    return boml_ho, inner, x, y


def test_building_out_of_order_names_the_missing_step(session):
    boml_ho, inner, x, y = _lower_problem()
    _raises(errors.NotFinalizedError, lambda: boml_ho.hypergradients, "aggregate_all()", "call it first")
    _raises(errors.NotFinalizedError, lambda: boml_ho.run(session=session), "before aggregate_all()",
            "Call boml_ho.aggregate_all()")
    _raises(errors.PhaseError, boml_ho.aggregate_all, "at least one ul_problem(...)")
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, meta_param=[x])
    boml_ho.aggregate_all()
    for late_call, name in ((lambda: boml_ho.ll_problem(tf.square(y), 0.5, 3, var_list=[y]), "ll_problem"),
                            (lambda: boml_ho.ul_problem(tf.square(y), 0.1, inner), "ul_problem"),
                            (boml_ho.aggregate_all, "aggregate_all")):
        _raises(errors.PhaseError, late_call, f"{name}() was called after aggregate_all()",
                "create a new BOMLOptimizer")
    _raises(errors.PhaseError, lambda: boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse").adapted(y),
            "needs an ll_problem(...) first")


def test_run_without_a_session_says_how_to_pass_one():
    boml_ho, inner, x, y = _lower_problem()
    boml_ho.ul_problem(tf.square(y - 1.0), 0.1, inner, meta_param=[x])
    boml_ho.aggregate_all()
    assert tf.get_default_session() is None
    _raises(errors.InvalidArgumentError, boml_ho.run, "needs a session", "session=sess")


@pytest.mark.parametrize("kwargs, fragments", [
    ({"learning_rate": "fast"}, ("learning_rate", "'fast'", "positive number")),
    ({"learning_rate": -1.0}, ("learning_rate", "-1.0", "Try 0.1")),
    ({"learning_rate": float("inf")}, ("learning_rate", "inf", "Try 0.1")),
    ({"T": 0}, ("T (the number of inner steps)", "received 0", "T=5")),
    ({"lr_granularity": "row"}, ("'row'", "'element'", "'tensor'", "'scalar'")),
    ({"l2_reg": -0.1}, ("l2_reg", "-0.1", ">= 0")),
    ({"l1_reg": "some"}, ("l1_reg", "'some'", ">= 0")),
    ({"inner_objective_optimizer": "Adagrad"}, ("'Adagrad'", "'Adam'", "'Momentum'", "'SGD'")),
    ({"inner_objective_optimizer": "Momentum", "momentum": 1.0}, ("momentum", "1.0", "[0, 1)", "0.9")),
    ({"inner_objective_optimizer": "Momentum", "momentum": "high"}, ("momentum", "'high'", "0.9")),
    ({"inner_objective_optimizer": "Adam", "epsilon": "tiny"}, ("epsilon", "'tiny'", "1e-8")),
    ({"inner_objective_optimizer": "Adam", "epsilon": 0.0}, ("epsilon", "0.0", "> 0", "1e-8")),
])
def test_lower_problem_settings_are_checked(kwargs, fragments):
    y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    arguments = {"learning_rate": 0.5, "T": 3, **kwargs}
    error = errors.UnknownNameError if "Adagrad" in fragments[0] else errors.InvalidArgumentError
    _raises(error, lambda: boml_ho.ll_problem(tf.square(y), var_list=[y], **arguments), *fragments)


def test_lower_problem_without_task_variables_says_where_they_come_from():
    y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    _raises(errors.InvalidArgumentError, lambda: boml_ho.ll_problem(tf.square(y), 0.5, 3), "needs the task variables",
            "var_list=ex.model.var_list")
    _raises(errors.InvalidArgumentError, lambda: boml_ho.ll_problem(tf.square(y), 0.5, 3, var_list=[]),
            "var_list is empty", "base_learner")


def test_every_task_must_adapt_as_many_variables_as_the_first():
    y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
    z = tf.get_variable("z", initializer=tf.constant(0.0, tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    boml_ho.ll_problem(tf.square(y), 0.5, 3, var_list=[y])
    _raises(errors.InvalidArgumentError, lambda: boml_ho.ll_problem(tf.square(y + z), 0.5, 3, var_list=[y, z]),
            "same number of variables", "the first task had 1, this one has 2")


def test_truncation_settings_are_checked():
    _raises(errors.InvalidArgumentError, lambda: boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse", truncate_iter=-3),
            "received -3", "-1", "K >= 0")
    _raises(errors.InvalidArgumentError, lambda: boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse", truncate_iter=1.5),
            "received 1.5")
    _raises(errors.InvalidArgumentError, lambda: boml.BOMLOptimizer("MetaFeat", "Trad", "Implicit", truncate_iter=2),
            "truncate_iter=2", "outer_method='Implicit'", "Leave truncate_iter=-1")


def test_upper_problem_settings_are_checked():
    boml_ho, inner, x, y = _lower_problem()
    other = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    foreign = other.ll_problem(0.5 * tf.square(y - x), 0.5, 1, var_list=[y])
    _raises(errors.InvalidArgumentError, lambda: boml_ho.ul_problem(tf.square(y), 0.1, foreign),
            "inner_grad must be the object returned by this optimizer's ll_problem")
    _raises(errors.UnknownNameError,
            lambda: boml_ho.ul_problem(tf.square(y), 0.1, inner, meta_param=[x], outer_objective_optimizer="RMSProp"),
            "'RMSProp'", "'Adam'", "'Momentum'", "'SGD'")
    _raises(errors.InvalidArgumentError, lambda: boml_ho.ul_problem(tf.square(y), -0.1, inner, meta_param=[x]),
            "-0.1", "positive finite")
    _raises(errors.InvalidArgumentError, lambda: boml_ho.ul_problem(tf.square(y), 0.1, inner, meta_param=[]),
            "meta_param is empty", "GraphKeys.METAPARAMETERS")


def test_a_refused_upper_problem_leaves_the_optimizer_usable(session):
    """After a typo in outer_objective_optimizer, the corrected call builds and runs the meta-update."""
    boml_ho, inner, x, y = _lower_problem()
    _raises(errors.UnknownNameError,
            lambda: boml_ho.ul_problem(tf.square(y - 1.0), 0.1, inner, meta_param=[x], outer_objective_optimizer="SDG"),
            "'SDG'")
    boml_ho.ul_problem(0.5 * tf.square(y - 1.0), 0.1, inner, meta_param=[x], outer_objective_optimizer="SGD")
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    boml_ho.run(session=session)
    y_T = 3.0 * (1 - 0.5 ** 3)
    assert session.run(x) == pytest.approx(3.0 - 0.1 * (y_T - 1.0) * (1 - 0.5 ** 3), rel=1e-7)


@pytest.mark.parametrize("outer_method, kwargs, fragments", [
    ("Implicit", {"cg_max_iter": 0}, ("cg_max_iter", "received 0", "positive integer")),
    ("Implicit", {"cg_damping": -1.0}, ("cg_damping", "received -1.0", ">= 0")),
    ("Darts", {"epsilon": 0.0}, ("epsilon", "received 0.0", "Try 0.01")),
])
def test_upper_strategy_settings_are_checked(outer_method, kwargs, fragments):
    boml_ho, inner, x, y = _lower_problem(outer_method)
    _raises(errors.InvalidArgumentError,
            lambda: boml_ho.ul_problem(tf.square(y - 1.0), 0.1, inner, meta_param=[x], **kwargs), *fragments)


def test_network_building_errors_name_the_fix():
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    _raises(errors.UnknownNameError, lambda: boml_ho.meta_learner(x, meta_model="V42"), "meta_model='V42'",
            "'MetaInitV1'", "register_network")
    _raises(errors.InvalidArgumentError, lambda: boml_ho.meta_learner(x, meta_model="V1"), "number of classes",
            "dim_output=<int>")
    _raises(errors.PhaseError, lambda: boml_ho.base_learner(x, None), "Call meta_learner(...) before base_learner")
    feat = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    features = feat.meta_learner(x, meta_model="V1", dim_hidden=(4,))
    _raises(errors.InvalidArgumentError, lambda: feat.base_learner(features.out, features), "set_output_dim(N)")


def test_meta_learner_versions_and_output_sizes():
    """"v1" (the original's spelling) selects V1; set_output_dim gives the MetaFeat head its classes."""
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    net = boml_ho.meta_learner(x, meta_model="v1", dim_output=3, dim_hidden=(4,))
    assert boml_ho.meta_model == "V1" and net.out.shape.as_list() == [None, 3]
    assert boml_ho.base_learner(x, net).out.shape.as_list() == [None, 3]
    feat = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    features = feat.meta_learner(x, meta_model="V1", dim_hidden=(4,))
    feat.set_output_dim(5)
    assert feat.base_learner(features.out, features).out.shape.as_list() == [None, 5]
