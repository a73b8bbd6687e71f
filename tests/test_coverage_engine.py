"""Argument checks and small paths of the engine: optimizers, substitution, task view, strategies."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors, extension
from boml.optimizer import BOMLOpt, BOMLOptSGD, make_optimizer
from boml.optimizer.opt import validate_learning_rate
from boml.substitute import Substitution, substitute
from boml.task import TaskProgram
from boml.upper_iter import BOMLOuterGrad, BOMLOuterGradImplicit
from boml.upper_iter.outer_grad import gradients_or_none


# ------------------------------------------------------------------------------------------ inner optimizers
def test_learning_rate_validation():
    rates = np.array([0.1, 0.2])
    assert validate_learning_rate(rates, "SGD") is rates
    with pytest.raises(errors.InvalidArgumentError, match="must be numeric"):
        validate_learning_rate(np.array(["a", "b"]), "SGD")
    with pytest.raises(errors.InvalidArgumentError, match="element-wise"):
        validate_learning_rate(np.array([0.1, -1.0]), "SGD")
    with pytest.raises(errors.InvalidArgumentError, match="non-negative number"):
        BOMLOptSGD("fast")
    with pytest.raises(errors.InvalidArgumentError, match="finite number >= 0"):
        BOMLOptSGD(float("inf"))
    optimizer = BOMLOptSGD(np.array([0.1, 0.2]), name="my_sgd")
    assert optimizer.name == "my_sgd" and "array shape=(2,)" in str(optimizer)


def test_unit_interval_and_positive_checks():
    with pytest.raises(errors.InvalidArgumentError, match="momentum must be a number in"):
        make_optimizer("Momentum", 0.1, momentum="high")
    with pytest.raises(errors.InvalidArgumentError, match=r"must lie in \[0, 1\)"):
        make_optimizer("Momentum", 0.1, momentum=1.0)
    with pytest.raises(errors.InvalidArgumentError, match="epsilon must be a positive number"):
        make_optimizer("Adam", 0.1, epsilon="tiny")
    with pytest.raises(errors.InvalidArgumentError, match="finite number > 0"):
        make_optimizer("Adam", 0.1, epsilon=0.0)
    adam = make_optimizer("Adam", 0.1, beta1=tf.constant(0.5), epsilon=tf.constant(1e-3), momentum=0.9)
    assert isinstance(adam, boml.BOMLOptAdam)  # tensors pass unchecked; 'momentum' is not Adam's: ignored


def test_make_optimizer_passes_everything_to_kwargs_factories():
    received = {}

    def factory(learning_rate, **kwargs):
        received.update(kwargs, learning_rate=learning_rate)
        return BOMLOptSGD(learning_rate)

    extension.register_optimizer("KwargsSGD")(factory)
    try:
        assert isinstance(make_optimizer("KwargsSGD", 0.3, momentum=0.9, anything=1), BOMLOptSGD)
        assert received == {"learning_rate": 0.3, "momentum": 0.9, "anything": 1}

        class NoSignature:  # like some builtins: inspect.signature fails, so every argument is passed on
            @property
            def __signature__(self):
                raise ValueError("no signature")

            def __call__(self, learning_rate, **kwargs):
                return learning_rate, kwargs

        extension.register_optimizer("Builtin", overwrite=True)(NoSignature())
        assert make_optimizer("Builtin", 0.3, momentum=0.9) == (0.3, {"momentum": 0.9})
    finally:
        extension.OPTIMIZERS.unregister("KwargsSGD")
        extension.OPTIMIZERS.unregister("Builtin")


def test_step_argument_checks_and_abstract_base(session):
    sgd = BOMLOptSGD(0.5)
    x = tf.constant([1.0, 2.0])
    with pytest.raises(errors.InvalidArgumentError, match="1 params but 2 grads"):
        sgd.step([x], [x, x], [], 1)
    with pytest.raises(NotImplementedError, match="must implement step"):
        BOMLOpt(0.1, "base").step([x], [x], [], 1)


def test_apply_gradients_checks_its_pairs(session):
    sgd = BOMLOptSGD(0.5)
    v = tf.get_variable("v", initializer=tf.constant([1.0, 2.0]))
    with pytest.raises(errors.InvalidArgumentError, match="no \\(gradient, variable\\) pairs"):
        sgd.apply_gradients([])
    with pytest.raises(errors.InvalidArgumentError, match="pair"):
        sgd.apply_gradients([(v,)])
    with pytest.raises(errors.InvalidArgumentError, match="not a tf.Variable"):
        sgd.apply_gradients([(tf.constant([1.0, 1.0]), tf.constant([0.0, 0.0]))])
    with pytest.raises(errors.InvalidArgumentError, match="is None"):
        sgd.apply_gradients([(None, v)])
    with pytest.raises(errors.InvalidArgumentError, match="var_list is empty"):
        sgd.minimize(tf.reduce_sum(tf.constant([1.0])), var_list=[])
    update, dynamics = sgd.apply_gradients([(tf.constant([1.0, 4.0]), v)])
    session.run(tf.global_variables_initializer())
    session.run(update)
    np.testing.assert_allclose(session.run(v), [0.5, 0.0])


def test_state_of_a_variable_with_unknown_shape(session):
    w = tf.Variable(tf.placeholder_with_default(tf.constant([1.0, 2.0, 3.0]), [None]), shape=tf.TensorShape([None]))
    momentum = make_optimizer("Momentum", 0.1, momentum=0.5)
    update, _ = momentum.apply_gradients([(tf.ones_like(w), w)])
    session.run(tf.global_variables_initializer())
    session.run(update)
    np.testing.assert_allclose(session.run(w), [0.9, 1.9, 2.9])


# ------------------------------------------------------------------------------------------ substitution and tasks
def test_substitution_checks_keys_and_dtypes(session):
    x = tf.placeholder(tf.float64, [])
    y = 2.0 * x
    with pytest.raises(errors.UnsupportedGraphError, match="Only tensors and variables"):
        Substitution([("x", 1.0)])
    assert len(Substitution({x: tf.constant(1.0, tf.float64)})) == 1
    assert session.run(substitute(y, [(x, tf.constant(3.0, tf.float32))])) == 6.0  # floats are cast
    i = tf.placeholder(tf.int32, [])
    with pytest.raises(errors.ShapeError, match="data types must match"):
        substitute(i + 1, [(i, tf.constant(1.0))])


def test_task_view_of_none_and_variables(session):
    meta = extension.get_outerparameter("m", np.float64(2.0))
    other = tf.get_variable("other", initializer=tf.constant(3.0, tf.float64), trainable=False)
    state = tf.get_variable("s", initializer=tf.constant(1.0, tf.float64), trainable=False)
    task = TaskProgram([], [meta], [state])
    local_none, local_meta, local_other = task.local([None, meta, other])
    assert local_none is None and local_meta is task.meta_locals[0]
    session.run(tf.global_variables_initializer())
    assert session.run(local_other) == 3.0
    value = task.at_state(task.local(meta * state), [tf.constant(5.0, tf.float64)])
    assert session.run(value) == 10.0


# ------------------------------------------------------------------------------------------ upper strategies
def test_outer_strategy_argument_checks():
    with pytest.raises(errors.InvalidArgumentError, match="truncate_iter must be -1"):
        BOMLOuterGrad(truncate_iter=-2)
    with pytest.raises(errors.InvalidArgumentError, match="only used by outer_method='Reverse'"):
        BOMLOuterGrad(truncate_iter=2)
    with pytest.raises(NotImplementedError):
        BOMLOuterGrad().task_hypergradients(None)
    assert BOMLOuterGrad().apply_gradients() is None
    assert gradients_or_none(tf.constant(1.0), []) == []
    with pytest.raises(errors.InvalidArgumentError, match="cg_max_iter"):
        BOMLOuterGradImplicit(cg_max_iter=0)
    with pytest.raises(errors.InvalidArgumentError, match="cg_damping"):
        BOMLOuterGradImplicit(cg_damping=-1.0)
    implicit = BOMLOuterGradImplicit(tolerance=None)
    assert implicit.tolerance(2) == pytest.approx(0.1 * 0.9 ** 2)
    implicit.set_tolerance(1e-4)
    assert implicit.feed_dict(7) == {implicit.tolerance_placeholder: 1e-4}


def test_empty_meta_param_and_restricted_pairs(session):
    x = extension.get_outerparameter("x", np.float64(1.0))
    z = extension.get_outerparameter("z", np.float64(2.0))
    y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    inner = boml_ho.ll_problem(0.5 * tf.square(y - x), 0.5, 2, var_list=[y])
    with pytest.raises(errors.InvalidArgumentError, match="meta_param is empty"):
        boml_ho.outergradient or BOMLOuterGrad().compute_gradients(tf.square(y), inner, meta_param=[])
    boml_ho.ul_problem(tf.square(y - 1.0) + z * x, 0.1, inner, meta_param=[x, z])
    pairs = boml_ho.outergradient.outer_grads_and_vars(meta_param=[z])
    assert [v for _, v in pairs] == [z]
    session.run(tf.global_variables_initializer())
    assert session.run(pairs[0][0]) == pytest.approx(1.0)  # dF/dz = x
