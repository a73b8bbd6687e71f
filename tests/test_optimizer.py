"""Tests of boml.optimizer: parity with tf.compat.v1.train, purity, gradient safety, errors."""
import collections

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError, UnknownNameError
from boml.optimizer import BOMLOpt, BOMLOptAdam, BOMLOptMomentum, BOMLOptSGD, make_optimizer, safe_sqrt

STEPS = 5
W0 = np.array([[0.7, -1.3, 2.1], [0.4, 1.9, -0.6]])
B0 = np.array([0.3, -0.8, 1.1])
X = np.array([[1.0, -0.5], [0.2, 0.9], [-1.2, 0.4], [0.6, 0.6]])
Y = np.array([[0.5, -1.0, 0.3], [1.1, 0.2, -0.7], [-0.4, 0.8, 0.9], [0.0, -0.3, 0.6]])

# (label, boml factory, TF reference factory given float64 hyperparameter tensors).
# TF's optimizers convert python floats to float32 before casting to the variable dtype,
# so the reference receives float64 tensors to compare at full precision.
CASES = [
    ("sgd", lambda: BOMLOptSGD(0.1),
     lambda c: tf.train.GradientDescentOptimizer(c(0.1))),
    ("momentum", lambda: BOMLOptMomentum(0.1, momentum=0.7),
     lambda c: tf.train.MomentumOptimizer(c(0.1), c(0.7))),
    ("nesterov", lambda: BOMLOptMomentum(0.1, momentum=0.7, use_nesterov=True),
     lambda c: tf.train.MomentumOptimizer(c(0.1), c(0.7), use_nesterov=True)),
    ("adam", lambda: BOMLOptAdam(0.05, beta1=0.8, beta2=0.95, epsilon=1e-6),
     lambda c: tf.train.AdamOptimizer(c(0.05), c(0.8), c(0.95), c(1e-6))),
]
IDS = [case[0] for case in CASES]


def _f64(value):
    return tf.constant(value, dtype=tf.float64)


def _loss(w, b):
    """Non-quadratic: sum(sin(w) * w^2) plus a data term through tanh."""
    prediction = tf.tanh(tf.matmul(tf.constant(X), w) + b)
    return tf.reduce_sum(tf.sin(w) * w ** 2) + tf.reduce_sum(tf.cos(b) * b) + \
        tf.reduce_mean((prediction - tf.constant(Y)) ** 2)


def _variables(prefix):
    w = tf.Variable(W0, dtype=tf.float64, name=prefix + "_w")
    b = tf.Variable(B0, dtype=tf.float64, name=prefix + "_b")
    return w, b


def _run_trajectory(session, update_op, variables):
    values = []
    for _ in range(STEPS):
        session.run(update_op)
        values.append(session.run(variables))
    return values


def _pure_trajectory(optimizer):
    """Unrolls the pure ``step`` in a Python loop from (W0, B0)."""
    params = [tf.constant(W0), tf.constant(B0)]
    slots = optimizer.init_slots(params)
    states = []
    for t in range(1, STEPS + 1):
        grads = tf.gradients(_loss(*params), params)
        params, slots = optimizer.step(params, grads, slots, tf.constant(t))
        states.append(params)
    return states


def _assert_same(actual, expected):
    for a_step, e_step in zip(actual, expected):
        for a, e in zip(a_step, e_step):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------- parity
@pytest.mark.parametrize("label, make_boml, make_tf", CASES, ids=IDS)
def test_minimize_matches_tf_train_optimizers(session, label, make_boml, make_tf):
    ours = _variables("ours")
    theirs = _variables("theirs")
    update_op, _ = make_boml().minimize(_loss(*ours), var_list=list(ours))
    reference_op = make_tf(_f64).minimize(_loss(*theirs), var_list=list(theirs))
    session.run(tf.global_variables_initializer())
    expected = _run_trajectory(session, reference_op, list(theirs))
    actual = _run_trajectory(session, update_op, list(ours))
    # The trajectory must actually move (otherwise parity would be vacuous).
    assert not np.allclose(actual[-1][0], W0)
    _assert_same(actual, expected)


def test_adam_default_hyperparameters_match_tf(session):
    ours, theirs = _variables("ours"), _variables("theirs")
    update_op, _ = BOMLOptAdam(_f64(0.01)).minimize(_loss(*ours), var_list=list(ours))
    reference_op = tf.train.AdamOptimizer(_f64(0.01), _f64(0.9), _f64(0.999), _f64(1e-8)).minimize(
        _loss(*theirs), var_list=list(theirs))
    session.run(tf.global_variables_initializer())
    _assert_same(_run_trajectory(session, update_op, list(ours)),
                 _run_trajectory(session, reference_op, list(theirs)))


# ------------------------------------------------------------------- dynamics
@pytest.mark.parametrize("label, make_boml, make_tf", CASES, ids=IDS)
def test_dynamics_are_the_values_assigned(session, label, make_boml, make_tf):
    w, b = _variables("v")
    optimizer = make_boml()
    global_step = tf.train.get_or_create_global_step()
    update_op, dynamics = optimizer.minimize(_loss(w, b), var_list=[w, b], global_step=global_step)
    assert isinstance(dynamics, collections.OrderedDict)
    state_vars = list(dynamics)
    n_slots = len(optimizer.slot_names) * 2
    assert state_vars[:2] == [w, b]
    assert len(state_vars) == 2 + n_slots + 1
    assert state_vars[-1].dtype.base_dtype == tf.int32
    for var in state_vars[2:]:
        assert not var.trainable
        assert var in tf.global_variables()
        assert var not in tf.trainable_variables()
    session.run(tf.global_variables_initializer())
    for step in range(1, 4):
        predicted = session.run(list(dynamics.values()))
        session.run(update_op)
        after = session.run(state_vars)
        for p, a in zip(predicted, after):
            np.testing.assert_array_equal(p, a)
        assert after[-1] == step
        assert session.run(global_step) == step


def test_update_reads_old_values_before_assigning(session):
    # With momentum the new parameter depends on the new slot; if the slot were assigned
    # first and re-read, w would move by lr*(mu*m_new + g) instead of lr*m_new.
    w = tf.Variable(np.array([1.0, -2.0]), name="w")
    update_op, dynamics = BOMLOptMomentum(0.5, momentum=0.9).minimize(tf.reduce_sum(w * w), var_list=[w])
    session.run(tf.global_variables_initializer())
    m = np.zeros(2)
    w_val = np.array([1.0, -2.0])
    for _ in range(4):
        session.run(update_op)
        m = 0.9 * m + 2 * w_val
        w_val = w_val - 0.5 * m
        np.testing.assert_allclose(session.run(w), w_val, rtol=1e-13)


# --------------------------------------------------------------- pure step
@pytest.mark.parametrize("label, make_boml, make_tf", CASES, ids=IDS)
def test_pure_step_equals_minimize_trajectory(session, label, make_boml, make_tf):
    optimizer = make_boml()
    pure = _pure_trajectory(optimizer)
    ops_before = len(tf.get_default_graph().get_operations())
    assert not tf.global_variables(), "step() must not create variables"
    assert ops_before > 0
    variables = _variables("v")
    update_op, _ = optimizer.minimize(_loss(*variables), var_list=list(variables))
    session.run(tf.global_variables_initializer())
    expected = _run_trajectory(session, update_op, list(variables))
    actual = [session.run(state) for state in pure]
    _assert_same(actual, expected)


@pytest.mark.parametrize("label, make_boml, make_tf", CASES, ids=IDS)
def test_pure_step_creates_no_stateful_ops(label, make_boml, make_tf):
    params = [tf.constant(W0), tf.constant(B0)]
    optimizer = make_boml()
    slots = optimizer.init_slots(params)
    assert len(slots) == len(optimizer.slot_names) * 2
    grads = tf.gradients(_loss(*params), params)
    optimizer.step(params, grads, slots, 1)
    types = {op.type for op in tf.get_default_graph().get_operations()}
    assert not types & {"VarHandleOp", "VariableV2", "AssignVariableOp", "Assign", "AssignAddVariableOp"}


def test_sgd_per_element_learning_rates(session):
    w = tf.constant(W0)
    b = tf.constant(B0)
    g_w = tf.constant(np.arange(6.0).reshape(2, 3) - 2.0)
    g_b = tf.constant(np.array([1.0, -1.0, 0.5]))
    lr_w = tf.constant(np.array([[0.1, 0.2, 0.3], [0.0, 0.5, 1.0]]))
    lr_b = tf.constant(0.25, dtype=tf.float64)
    (new_w, new_b), slots = BOMLOptSGD(100.0).step([w, b], [g_w, g_b], [], 1, learning_rates=[lr_w, lr_b])
    assert slots == []
    got_w, got_b = session.run([new_w, new_b])
    np.testing.assert_allclose(got_w, W0 - session.run(lr_w) * session.run(g_w), rtol=1e-15)
    np.testing.assert_allclose(got_b, B0 - 0.25 * session.run(g_b), rtol=1e-15)


def test_per_element_learning_rates_in_momentum_and_adam(session):
    w = tf.constant(np.array([1.0, 2.0]))
    g = tf.constant(np.array([0.5, -4.0]))
    lr = tf.constant(np.array([0.1, 0.3]))
    momentum = BOMLOptMomentum(7.0, momentum=0.5)
    (new_w,), (m,) = momentum.step([w], [g], momentum.init_slots([w]), 1, learning_rates=[lr])
    np.testing.assert_allclose(session.run(new_w), [1.0 - 0.1 * 0.5, 2.0 + 0.3 * 4.0], rtol=1e-15)
    np.testing.assert_allclose(session.run(m), [0.5, -4.0])
    adam = BOMLOptAdam(7.0, beta1=0.9, beta2=0.999, epsilon=1e-8)
    (new_w,), _ = adam.step([w], [g], adam.init_slots([w]), 1, learning_rates=[lr])
    # At t=1 the bias-corrected step is lr * g / (|g| + eps / sqrt(1-beta2)) ~ lr * sign(g).
    expected = np.array([1.0, 2.0]) - np.array([0.1, 0.3]) * np.array([0.5, -4.0]) / (
        np.abs([0.5, -4.0]) + 1e-8 / np.sqrt(1 - 0.999))
    np.testing.assert_allclose(session.run(new_w), expected, rtol=1e-12)


def test_adam_bias_correction_uses_the_step_argument(session):
    w, g = tf.constant([1.0], tf.float64), tf.constant([0.5], tf.float64)
    adam = BOMLOptAdam(0.1, beta1=0.9, beta2=0.999)
    slots = [tf.constant([0.2], tf.float64), tf.constant([0.04], tf.float64)]
    (at_3,), _ = adam.step([w], [g], slots, tf.constant(3))
    (at_7,), _ = adam.step([w], [g], slots, 7.0)
    m, v = 0.9 * 0.2 + 0.1 * 0.5, 0.999 * 0.04 + 0.001 * 0.25
    for t, tensor in ((3, at_3), (7, at_7)):
        lr_t = 0.1 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        np.testing.assert_allclose(session.run(tensor), [1.0 - lr_t * m / (np.sqrt(v) + 1e-8)], rtol=1e-12)


# ---------------------------------------------------------- gradient safety
def test_safe_sqrt_value_and_gradient(session):
    x = tf.constant(np.array([0.0, 1e-300, 4.0, 2.25]))
    y = safe_sqrt(x)
    (grad,) = tf.gradients(tf.reduce_sum(y), [x])
    value, g = session.run([y, grad])
    np.testing.assert_array_equal(value, session.run(tf.sqrt(x)))
    assert np.all(np.isfinite(g))
    assert g[0] == 0.0
    np.testing.assert_allclose(g[2:], [0.25, 1 / 3.0], rtol=1e-15)
    # The plain square root is exactly the problem being avoided.
    (plain,) = tf.gradients(tf.reduce_sum(tf.sqrt(x)), [x])
    assert not np.all(np.isfinite(session.run(plain)))


def test_adam_hypergradient_finite_at_zero_gradient_entries(session):
    # d/dw of sum((w * mask)^2) is exactly zero on the masked entry, so v' == 0 there.
    w0 = tf.constant(np.array([0.5, -1.5, 2.0]))
    mask = tf.constant(np.array([1.0, 0.0, 1.0]))
    adam = BOMLOptAdam(0.1)
    params, slots = [w0], adam.init_slots([w0])
    for t in range(1, 4):
        grads = tf.gradients(tf.reduce_sum((params[0] * mask) ** 2), params)
        params, slots = adam.step(params, grads, slots, t)
    outer = tf.reduce_sum(params[0] ** 2) + tf.add_n([tf.reduce_sum(s) for s in slots])
    (hypergrad,) = tf.gradients(outer, [w0])
    values, grads_at_zero = session.run([hypergrad, grads])
    assert grads_at_zero[0][1] == 0.0
    assert np.all(np.isfinite(values)), values
    # The untouched entry keeps w = w0, so its derivative is that of w^2.
    np.testing.assert_allclose(values[1], 2 * -1.5, rtol=1e-12)


@pytest.mark.parametrize("case", ["zero_gradient_warm_slots", "underflowing_gradient"])
def test_adam_new_params_have_finite_gradient_wrt_old_params_when_v_is_zero(session, case):
    # The sqrt derivative is actually exercised when v' == 0 while m' != 0: an exactly zero
    # gradient entry with a carried-over first moment, or a gradient so small that g^2
    # underflows to 0 in float64 (m' stays non-zero). tf.sqrt gives inf/NaN here.
    w = tf.constant(np.array([0.5, -1.5, 2.0]))
    if case == "zero_gradient_warm_slots":
        scale = tf.constant(np.array([1.0, 0.0, 1.0]))
        slots = [tf.constant(np.array([0.1, 0.3, -0.2])), tf.constant(np.array([0.04, 0.0, 0.01]))]
    else:
        scale = tf.constant(np.array([1.0, 1e-200, 1.0]))
        slots = BOMLOptAdam(0.1).init_slots([w])
    loss = tf.reduce_sum(tf.sin(w) * scale)
    grads = tf.gradients(loss, [w])
    (new_w,), new_slots = BOMLOptAdam(0.1).step([w], grads, slots, 2)
    (jacobian_sum,) = tf.gradients(tf.reduce_sum(new_w), [w])
    v_next, m_next, values = session.run([new_slots[1], new_slots[0], jacobian_sum])
    assert v_next[1] == 0.0 and m_next[1] != 0.0
    assert np.all(np.isfinite(values)), values
    np.testing.assert_allclose(values[1], 1.0, rtol=1e-12)


# -------------------------------------------------------------- validation
@pytest.mark.parametrize("build, fragment", [
    (lambda: BOMLOptSGD(-0.1), "-0.1"),
    (lambda: BOMLOptSGD(float("nan")), "nan"),
    (lambda: BOMLOptSGD("0.1"), "'0.1'"),
    (lambda: BOMLOptSGD(None), "None"),
    (lambda: BOMLOptSGD(0.1, name=""), "name"),
    (lambda: BOMLOptMomentum(0.1, momentum=1.0), "1.0"),
    (lambda: BOMLOptMomentum(0.1, momentum=-0.2), "-0.2"),
    (lambda: BOMLOptMomentum(0.1, use_nesterov="yes"), "'yes'"),
    (lambda: BOMLOptAdam(-1.0), "-1.0"),
    (lambda: BOMLOptAdam(0.1, beta1=1.0), "beta1"),
    (lambda: BOMLOptAdam(0.1, beta2=1.5), "1.5"),
    (lambda: BOMLOptAdam(0.1, beta2=-0.1), "beta2"),
    (lambda: BOMLOptAdam(0.1, epsilon=0.0), "epsilon"),
    (lambda: BOMLOptAdam(0.1, epsilon=-1e-8), "-1e-08"),
])
def test_bad_constructor_arguments_raise(build, fragment):
    with pytest.raises(InvalidArgumentError) as info:
        build()
    assert fragment in str(info.value)


def test_tensor_hyperparameters_are_accepted():
    lr = tf.Variable(0.1, dtype=tf.float64, name="lr")
    optimizer = BOMLOptAdam(lr, beta1=tf.constant(0.9))
    assert optimizer.learning_rate is lr
    assert "lr=<variable" in str(optimizer)


def test_str_and_registry():
    assert str(BOMLOptSGD(0.1)) == "SGD(lr=0.1)"
    assert str(BOMLOptMomentum(0.1, 0.9)) == "Momentum(lr=0.1, momentum=0.9, nesterov=False)"
    assert str(BOMLOptAdam()) == "Adam(lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-08)"
    assert extension.OPTIMIZERS.get("SGD") is BOMLOptSGD
    assert extension.OPTIMIZERS.get("Momentum") is BOMLOptMomentum
    assert extension.OPTIMIZERS.get("Adam") is BOMLOptAdam
    assert all(issubclass(extension.OPTIMIZERS.get(n), BOMLOpt) for n in ("SGD", "Momentum", "Adam"))


def test_make_optimizer_filters_keyword_arguments():
    settings = dict(momentum=0.3, beta1=0.5, beta2=0.75, epsilon=1e-4, use_nesterov=True, unrelated=1)
    sgd = make_optimizer("SGD", 0.2, **settings)
    momentum = make_optimizer("Momentum", 0.2, **settings)
    adam = make_optimizer("Adam", 0.2, **settings)
    assert type(sgd) is BOMLOptSGD and sgd.learning_rate == 0.2
    assert type(momentum) is BOMLOptMomentum and momentum.momentum == 0.3 and momentum.use_nesterov
    assert type(adam) is BOMLOptAdam and (adam.beta1, adam.beta2, adam.epsilon) == (0.5, 0.75, 1e-4)


def test_make_optimizer_unknown_name_lists_registered_names():
    with pytest.raises(UnknownNameError) as info:
        make_optimizer("Adagrad", 0.1)
    message = str(info.value)
    assert "Adagrad" in message
    for name in ("SGD", "Momentum", "Adam"):
        assert repr(name) in message


def test_minimize_rejects_variable_without_gradient():
    w = tf.Variable(np.ones(2), name="used")
    unused = tf.Variable(np.ones(2), name="unused_variable")
    with pytest.raises(InvalidArgumentError) as info:
        BOMLOptSGD(0.1).minimize(tf.reduce_sum(w * w), var_list=[w, unused])
    assert "unused_variable" in str(info.value)


def test_minimize_defaults_to_trainable_variables(session):
    w = tf.Variable(np.array([1.0, 2.0]), name="w")
    frozen = tf.Variable(np.array([3.0]), name="frozen", trainable=False)
    update_op, dynamics = BOMLOptSGD(0.25).minimize(tf.reduce_sum(w * w) + tf.reduce_sum(frozen * w))
    assert w in dynamics and frozen not in dynamics
    session.run(tf.global_variables_initializer())
    session.run(update_op)
    np.testing.assert_allclose(session.run(w), [1.0 - 0.25 * 5.0, 2.0 - 0.25 * 7.0])


def test_step_argument_errors():
    w = tf.constant([1.0])
    adam = BOMLOptAdam(0.1)
    with pytest.raises(InvalidArgumentError, match="slots"):
        adam.step([w], [w], [], 1)
    with pytest.raises(InvalidArgumentError, match="learning_rates"):
        adam.step([w], [w], adam.init_slots([w]), 1, learning_rates=[0.1, 0.2])
    with pytest.raises(InvalidArgumentError, match="None"):
        BOMLOptSGD(0.1).step([w], [None], [], 1)
