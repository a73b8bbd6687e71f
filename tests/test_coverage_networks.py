"""Networks: argument checks, layer access, activation/flattening of the FeedForward head, and the old names."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors
from boml.lower_iter import BOMLInnerGrad, BOMLInnerGradSimple, BOMLInnerGradTrad
from boml.optimizer import BOMLOptSGD


def test_bomlnet_argument_checks_and_abstract_forward():
    x = tf.placeholder(tf.float32, [None, 3])
    with pytest.raises(errors.InvalidArgumentError, match="reuse must be"):
        boml.BOMLNet(x, reuse="sometimes")
    with pytest.raises(errors.InvalidArgumentError, match="non-empty string"):
        boml.BOMLNet(x, name="")
    with pytest.raises(NotImplementedError, match="must implement _forward"):
        boml.BOMLNet(x)


def test_feedforward_head_layers_and_checks(session):
    x = tf.constant(np.arange(12, dtype=np.float32).reshape(2, 2, 3))  # flattened to [2, 6]
    head = boml.BOMLNetFeedForward(x, dims=2, activation=tf.nn.relu, output_weight_initializer=tf.ones_initializer)
    assert len(head) == 2 and head[0] is x and head.out is head.layers[-1]
    assert head.filter_vars("fc_weight") == [v for v in head.var_list if "fc_weight" in v.name]
    assert "BOMLNetFeedForward" in repr(head)
    session.run(tf.global_variables_initializer())
    np.testing.assert_allclose(session.run(head.out), [[15, 15], [51, 51]])
    with pytest.raises(errors.InvalidArgumentError, match="floating-point"):
        boml.BOMLNetFeedForward(x, dims=2, data_type=tf.int32)
    with pytest.raises(errors.InvalidArgumentError, match="floating-point"):
        boml.BOMLNetFeedForward(x, dims=2, data_type="not a dtype")
    with pytest.raises(errors.InvalidArgumentError, match="activation must be a callable"):
        boml.BOMLNetFeedForward(x, dims=2, activation="relu")
    with pytest.raises(errors.InvalidArgumentError, match="dict name -> tensor"):
        head.re_forward(x, task_parameter=[1, 2])
    with pytest.raises(errors.InvalidArgumentError, match="does not use"):
        head.re_forward(x, task_parameter={"w9": tf.zeros([6, 2])})


def test_layers_can_be_appended_and_initialize_needs_a_session():
    x = tf.placeholder(tf.float32, [None, 3])
    head = boml.BOMLNetFeedForward(x, dims=2)
    extra = tf.identity(head.out)
    assert (head + extra) is head and head.out is extra
    with pytest.raises(errors.InvalidArgumentError, match="needs a session"):
        head.initialize()


def test_meta_init_network_old_batch_norm_name():
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    net = boml.BOMLNetOmniglotMetaInitV1(x, dim_output=2, dim_hidden=(4,), batch_norm=None)
    assert net.model_param_dict == {} and "bias0" in net.outer_param_dict  # no batch norm: no offset/scale
    with_norm = boml.BOMLNetOmniglotMetaInitV1(x, dim_output=2, dim_hidden=(4,))
    assert any(k.startswith("bn0") for k in with_norm.model_param_dict)
    with pytest.raises(errors.InvalidArgumentError, match="not both"):
        boml.BOMLNetOmniglotMetaInitV1(x, dim_output=2, dim_hidden=(4,), batch_norm=None, norm=None)


# ------------------------------------------------------------------------------------------ lower strategies
def test_inner_strategy_compatibility_constructor_and_checks(session):
    y = tf.get_variable("y", initializer=tf.constant([1.0, -1.0], tf.float64), trainable=False)
    loss = tf.reduce_sum(tf.square(y))
    with pytest.raises(errors.InvalidArgumentError, match="positive integer"):
        BOMLInnerGradTrad(loss, [y], BOMLOptSGD(0.1), T=0)
    strategy = BOMLInnerGradTrad.compute_gradients(BOMLOptSGD(0.25), loss, var_list=[y], param_dict={"T": 3})
    assert strategy.T == 3 and strategy.state == [y] and strategy.first_order is False
    base = BOMLInnerGrad(loss, [y], BOMLOptSGD(0.1), T=1)
    with pytest.raises(NotImplementedError):
        base.direction(None, 1, None, None)
    with pytest.raises(NotImplementedError):
        base.potential(None, 1, None, None)


def test_truncated_python_unroll_keeps_the_last_steps_only(session):
    # theta_t = theta_{t-1} - lr * 2 (theta_{t-1} - x): d theta_T / dx = 1 - (1 - 2 lr)^K with K kept steps.
    x = boml.get_outerparameter("x", np.float64(1.0))
    theta = tf.get_variable("theta", initializer=tf.constant(0.0, tf.float64), trainable=False)
    loss = tf.square(theta - x)
    values = {}
    for K in (-1, 2):
        strategy = BOMLInnerGradSimple(loss, [theta], BOMLOptSGD(0.25), T=4)
        from boml.task import TaskProgram

        task = TaskProgram([], [x], [theta])
        final = strategy.task_dynamics(task).unroll(truncate=K).final[0]
        values[K] = session.run(tf.gradients(final, task.meta_locals)[0])
    assert values[-1] == pytest.approx(1 - 0.5 ** 4) and values[2] == pytest.approx(1 - 0.5 ** 2)
