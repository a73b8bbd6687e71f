"""The inner optimizers' arguments: refused values (typed error, the value received, the fix), array and
tensor hyperparameters used as given, user-registered optimizers reached through ll_problem."""
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors, extension


def _raises(call, *fragments):
    with pytest.raises(errors.InvalidArgumentError) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


@pytest.mark.parametrize("learning_rate, fragments", [
    (np.array(["a", "b"]), ("must be numeric", "dtype <U1", "non-negative float")),
    (np.array([0.1, -1.0]), ("element-wise", "-1.", "non-negative finite step sizes")),
    ("fast", ("'fast'", "of type str", "learning_rate=0.1")),
    (float("inf"), ("inf", "finite number >= 0", "such as 0.1")),
])
def test_learning_rate_refusals_name_the_value_and_the_fix(learning_rate, fragments):
    _raises(lambda: boml.BOMLOptSGD(learning_rate), "BOMLOptSGD", *fragments)


def test_array_learning_rate_is_a_step_size_per_entry(session):
    v = tf.get_variable("v", initializer=tf.constant([1.0, 2.0], tf.float64))
    sgd = boml.BOMLOptSGD(np.array([0.5, 0.25]))
    update, _ = sgd.apply_gradients([(tf.constant([1.0, 4.0], tf.float64), v)])
    session.run(tf.global_variables_initializer())
    session.run(update)
    np.testing.assert_allclose(session.run(v), [1.0 - 0.5 * 1.0, 2.0 - 0.25 * 4.0], rtol=1e-15)


def test_tensor_hyperparameters_are_used_as_given(session):
    """Adam with beta1 and epsilon given as tensors: one step equals the numpy update with those values."""
    w0, g = np.array([1.0, -2.0]), np.array([0.3, 2.0])
    beta1 = tf.placeholder_with_default(tf.constant(0.5, tf.float64), [])
    w = tf.get_variable("w", initializer=tf.constant(w0))
    adam = boml.BOMLOptAdam(0.1, beta1=beta1, beta2=0.99, epsilon=tf.constant(1e-3, tf.float64))
    update, _ = adam.apply_gradients([(tf.constant(g), w)])
    for b1 in (0.5, 0.2):
        session.run(tf.global_variables_initializer())
        session.run(update, {beta1: b1})
        m, v = (1 - b1) * g, (1 - 0.99) * g * g
        lr_t = 0.1 * np.sqrt(1 - 0.99) / (1 - b1)
        np.testing.assert_allclose(session.run(w), w0 - lr_t * m / (np.sqrt(v) + 1e-3), rtol=1e-13)


def test_a_registered_optimizer_receives_every_setting_of_ll_problem(session):
    """A factory taking **kwargs gets all of ll_problem's optimizer settings, and its optimizer drives the
    lower dynamics."""
    received = {}

    def recording_sgd(learning_rate, **kwargs):
        received.update(kwargs)
        return boml.BOMLOptSGD(learning_rate)

    extension.register_optimizer("RecordingSGD")(recording_sgd)
    try:
        x = boml.get_outerparameter("x", np.float64(3.0))
        y = tf.get_variable("y", initializer=tf.constant(0.0, tf.float64), trainable=False)
        boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
        boml_ho.ll_problem(0.5 * tf.square(y - x), 0.5, 2, var_list=[y], inner_objective_optimizer="RecordingSGD",
                           momentum=0.7, beta1=0.3)
        adapted = boml_ho.adapted(y)
    finally:
        extension.OPTIMIZERS.unregister("RecordingSGD")
    assert received == {"momentum": 0.7, "beta1": 0.3}
    session.run(tf.global_variables_initializer())
    assert session.run(adapted)[0] == pytest.approx(3.0 * (1 - 0.5 ** 2))


def test_the_optimizer_name_scopes_its_update_ops():
    v = tf.get_variable("v", initializer=tf.constant([1.0, 2.0]))
    sgd = boml.BOMLOptSGD(0.1, name="inner_sgd")
    update, _ = sgd.minimize(tf.reduce_sum(v * v), var_list=[v])
    assert sgd.name == "inner_sgd" and re.match(r"inner_sgd(_\d+)?/", update.name)
    update, _ = sgd.minimize(tf.reduce_sum(v * v), var_list=[v], name="second")
    assert re.match(r"second(_\d+)?/", update.name)


def test_step_refuses_a_gradient_list_of_another_length():
    x = tf.constant([1.0, 2.0])
    _raises(lambda: boml.BOMLOptSGD(0.5).step([x], [x, x], [], 1), "BOMLOptSGD.step", "1 params but 2 grads",
            "exactly one gradient per parameter")


def test_apply_gradients_refusals_name_the_entry_and_the_fix():
    sgd = boml.BOMLOptSGD(0.5)
    v = tf.get_variable("v", initializer=tf.constant([1.0, 2.0]))
    _raises(lambda: sgd.apply_gradients([]), "received no (gradient, variable) pairs", "at least one pair")
    _raises(lambda: sgd.apply_gradients([(v,)]), "(gradient, variable) pair", "received (<tf.Variable 'v:0'")
    constant = tf.constant([0.0, 0.0], name="not_a_variable")
    _raises(lambda: sgd.apply_gradients([(tf.constant([1.0, 1.0]), constant)]), "not_a_variable",
            "is not a tf.Variable", "Use step() for plain tensors")
    _raises(lambda: sgd.apply_gradients([(None, v)]), "the gradient of the variable v:0 is None",
            "Drop the variable or provide a gradient")
    _raises(lambda: sgd.minimize(tf.reduce_sum(tf.constant([1.0])), var_list=[]), "var_list is empty",
            "Pass the variables to update")


def test_momentum_state_of_a_variable_with_unknown_shape(session):
    w = tf.Variable(tf.placeholder_with_default(tf.constant([1.0, 2.0, 3.0]), [None]), shape=tf.TensorShape([None]))
    update, _ = boml.BOMLOptMomentum(0.1, momentum=0.5).apply_gradients([(tf.ones_like(w), w)])
    session.run(tf.global_variables_initializer())
    session.run(update)
    np.testing.assert_allclose(session.run(w), [0.9, 1.9, 2.9], rtol=1e-6)
    session.run(update)  # velocity 0.5 * 1 + 1 = 1.5
    np.testing.assert_allclose(session.run(w), [0.75, 1.75, 2.75], rtol=1e-6)
