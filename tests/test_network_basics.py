"""What every boml network does: argument checks with the fix, layers, variable lookup, re-initialization,
the FeedForward head's flattening and activation, and the old ``batch_norm`` name."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors


def _raises(call, *fragments):
    with pytest.raises(errors.InvalidArgumentError) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


def test_network_arguments_are_checked():
    x = tf.placeholder(tf.float32, [None, 3])
    _raises(lambda: boml.BOMLNetFeedForward(x, dims=2, reuse="sometimes"), "'sometimes'",
            "False, True or tf.AUTO_REUSE")
    _raises(lambda: boml.BOMLNetFeedForward(x, dims=2, name=""), "received ''", "non-empty string or None")
    _raises(lambda: boml.BOMLNetFeedForward(x, dims=2, data_type=tf.int32), "tf.int32", "tf.float32 or tf.float64")
    _raises(lambda: boml.BOMLNetFeedForward(x, dims=2, data_type="not a dtype"), "'not a dtype'", "floating-point")
    _raises(lambda: boml.BOMLNetFeedForward(x, dims=2, activation="relu"), "'relu'", "a callable or None")


def test_feedforward_flattens_its_input_and_applies_the_activation(session):
    features = np.arange(12, dtype=np.float32).reshape(2, 2, 3) - 6.0  # flattened to [2, 6]
    x = tf.constant(features)
    weights = np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2)
    head = boml.BOMLNetFeedForward(x, dims=2, activation=tf.nn.relu,
                                   output_weight_initializer=tf.constant_initializer(weights))
    assert len(head) == 2 and head[0] is x and head.out is head.layers[-1]
    session.run(tf.global_variables_initializer())
    np.testing.assert_allclose(session.run(head.out), np.maximum(features.reshape(2, 6) @ weights, 0), rtol=1e-6)
    fc_weight, fc_bias = head.var_list
    assert head.filter_vars("fc_weight") == [fc_weight] and head.filter_vars("fc_bias") == [fc_bias]
    assert head.filter_vars("conv0") == []


def test_re_forward_checks_the_replacement_parameters(session):
    x = tf.placeholder(tf.float32, [None, 6])
    head = boml.BOMLNetFeedForward(x, dims=2, output_weight_initializer=tf.zeros_initializer())
    _raises(lambda: head.re_forward(x, task_parameter=[1, 2]), "dict name -> tensor", "received list")
    _raises(lambda: head.re_forward(x, task_parameter={"w9": tf.zeros([6, 2])}), "['w9']", "does not use",
            "['fc_weight', 'fc_bias']")
    shifted = head.re_forward(x, task_parameter={"fc_bias": tf.constant([1.0, -1.0])})
    session.run(tf.global_variables_initializer())
    np.testing.assert_allclose(session.run(shifted.out, {x: np.ones((1, 6))}), [[1.0, -1.0]])


def test_appending_a_layer_makes_it_the_output():
    x = tf.placeholder(tf.float32, [None, 3])
    head = boml.BOMLNetFeedForward(x, dims=2)
    extra = tf.nn.softmax(head.out)
    assert (head + extra) is head and head.out is extra and len(head) == 3


def test_initialize_without_a_session_says_how_to_pass_one():
    head = boml.BOMLNetFeedForward(tf.placeholder(tf.float32, [None, 3]), dims=2)
    assert tf.get_default_session() is None
    _raises(head.initialize, "needs a session", "session=...")


def test_initialize_resets_the_task_variables(session):
    x = tf.placeholder(tf.float32, [None, 3])
    head = boml.BOMLNetFeedForward(x, dims=2, output_weight_initializer=tf.zeros_initializer())
    session.run(tf.global_variables_initializer())
    fc_weight, fc_bias = head.var_list
    fc_weight.load(np.ones((3, 2), np.float32), session)
    fc_bias.load(np.array([2.0, 3.0], np.float32), session)
    head.initialize(session)
    np.testing.assert_array_equal(session.run(fc_weight), np.zeros((3, 2)))
    np.testing.assert_array_equal(session.run(fc_bias), np.zeros(2))
    fc_bias.load(np.array([2.0, 3.0], np.float32), session)
    head.initialize()  # the default session (the fixture's)
    np.testing.assert_array_equal(session.run(fc_bias), np.zeros(2))


def test_meta_init_factory_accepts_the_old_batch_norm_name():
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    plain = boml.BOMLNetOmniglotMetaInitV1(x, dim_output=2, dim_hidden=(4,), batch_norm=None)
    assert plain.model_param_dict == {} and "bias0" in plain.outer_param_dict  # no normalization parameters
    normalized = boml.BOMLNetOmniglotMetaInitV1(x, dim_output=2, dim_hidden=(4,))
    assert any(k.startswith("bn0") for k in normalized.model_param_dict)
    _raises(lambda: boml.BOMLNetOmniglotMetaInitV1(x, dim_output=2, dim_hidden=(4,), batch_norm=None, norm=None),
            "either norm=... or its old name batch_norm=...", "not both")


@pytest.mark.parametrize("build", [
    lambda x, **kw: boml.BOMLNetOmniglotMetaInitV1(x, 2, dim_hidden=(2, 2), **kw),
    lambda x, **kw: boml.BOMLNetOmniglotMetaFeatV1(x, dim_hidden=(2, 2), **kw),
    lambda x, **kw: boml.BOMLNetMetaInitV2(x, 2, dim_resnet=(2,), head_dims=(2, 2), **kw),
    lambda x, **kw: boml.BOMLNetMetaFeatV2(x, dim_resnet=(2,), head_dims=(2, 2), **kw),
    lambda x, **kw: boml.BOMLNetFeedForward(tf.reshape(x, [-1, 64]), 2, **kw),
], ids=["MetaInitV1", "MetaFeatV1", "MetaInitV2", "MetaFeatV2", "FeedForward"])
def test_datatype_is_a_deprecated_spelling_of_data_type(build):
    x = tf.placeholder(tf.float64, [None, 8, 8, 1])
    with pytest.warns(DeprecationWarning, match="'datatype' is deprecated; use 'data_type'"):
        net = build(x, datatype=tf.float64)
    variables = tf.global_variables() + tf.get_collection(tf.GraphKeys.MODEL_VARIABLES)
    assert net.out.dtype == tf.float64 and variables and all(v.dtype.base_dtype == tf.float64 for v in variables)
    _raises(lambda: build(x, data_type=tf.float64, datatype=tf.float32), "data_type=tf.float64",
            "deprecated spelling datatype=tf.float32", "pass data_type only")


@pytest.mark.parametrize("build, reason", [
    (lambda x: boml.BOMLNetMiniMetaInitV1(x, 2, dim_hidden=(2, 2, 2, 2)), "with max_pool=True flattens the last block"),
    (lambda x: boml.BOMLNetMiniMetaFeatV1(x, dim_hidden=(2, 2, 2, 2)), "flattens its last block"),
], ids=["MetaInitV1", "MetaFeatV1"])
def test_flattening_conv4_needs_a_static_and_large_enough_input(build, reason):
    with pytest.raises(errors.ShapeError, match=f"{reason}, so it needs a static input height and width; "
                                                r"received an input of shape \(None, None, None, 3\)"):
        build(tf.placeholder(tf.float32, [None, None, None, 3]))
    with pytest.raises(errors.ShapeError, match=r"too small for 4 max-pooled blocks \(it shrinks to 0x0\)"):
        build(tf.placeholder(tf.float32, [None, 8, 8, 3]))
    assert build(tf.placeholder(tf.float32, [None, 16, 16, 3])).out.shape.as_list()[1:] == [2]
