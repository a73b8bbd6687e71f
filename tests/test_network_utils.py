"""boml.setup_model.network_utils: initializers, statistics and the helpers kept from the original BOML,
against hand-computed values."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from boml import errors
from boml.setup_model import network_utils


def test_mean_std_ci_of_four_measures():
    # sample std of 1..4 is sqrt(5/3); the 95% half-width 1.96 sqrt(5/3) / sqrt(4) = 1.96 sqrt(1.25) / sqrt(3) = 1.2652
    # (the original's population-std formula gives the same half-width).
    mean, std, ci = network_utils.mean_std_ci([1.0, 2.0, 3.0, 4.0], mul=100)
    assert (mean, std, ci) == (pytest.approx(250.0), pytest.approx(129.09944), pytest.approx(126.5175, abs=1e-4))
    assert network_utils.mean_std_ci([1.0, 2.0, 3.0, 4.0], tex=True) == "$2.50 \\pm 1.27$"
    assert np.isnan(network_utils.half_int([1.0]))  # no interval from one measure


def test_leaky_relu_and_variable_lookup(session):
    np.testing.assert_allclose(session.run(network_utils.leaky_relu(tf.constant([-1.0, 2.0]), 0.1)), [-0.1, 2.0])
    with tf.variable_scope("block"):
        kernel = tf.get_variable("kernel", initializer=tf.zeros([2]))
    with tf.variable_scope("other"):
        tf.get_variable("kernel", initializer=tf.zeros([2]))
    assert network_utils.filter_vars("kernel", scope="block") == [kernel]
    assert len(network_utils.filter_vars("kernel")) == 2


def test_glorot_uniform_fans_and_limits(session):
    assert network_utils.GlorotUniform.fans([]) == (1, 1) and network_utils.GlorotUniform.fans([5]) == (5, 5)
    assert network_utils.GlorotUniform.fans([3, 3, 4, 8]) == (36, 72)  # 3x3 receptive field, 4 in, 8 out
    sample = session.run(network_utils.glorot_uniform(seed=1, dtype=tf.float64)([10, 20]))
    limit = np.sqrt(6.0 / 30)
    assert sample.dtype == np.float64 and np.abs(sample).max() <= limit
    assert np.abs(sample).max() > 0.9 * limit and abs(sample.mean()) < 0.1 * limit  # spread over [-limit, limit]
    rebuilt = network_utils.GlorotUniform(**network_utils.glorot_uniform(seed=1, dtype=tf.float64).get_config())
    np.testing.assert_array_equal(session.run(rebuilt([10, 20])), sample)  # the config rebuilds the initializer
    with pytest.raises(errors.InvalidArgumentError) as info:
        network_utils.glorot_uniform()([2], dtype=tf.int32)
    assert "received dtype int32" in str(info.value) and "tf.float32 or tf.float64" in str(info.value)


def test_as_initializer_accepts_classes_instances_and_constants(session):
    assert session.run(network_utils.as_initializer(0.5)([2], dtype=tf.float32)).tolist() == [0.5, 0.5]
    assert session.run(network_utils.as_initializer([1.0, 2.0])([2], dtype=tf.float32)).tolist() == [1.0, 2.0]
    zeros = network_utils.as_initializer(None, default=tf.zeros_initializer)  # a class is instantiated
    assert session.run(zeros([3], dtype=tf.float32)).tolist() == [0.0, 0.0, 0.0]
    assert network_utils.as_initializer(None) is None
    with pytest.raises(errors.InvalidArgumentError) as info:
        network_utils.as_initializer("zeros", what="conv_initializer")
    assert "conv_initializer must be None, an initializer class" in str(info.value)
    assert "received 'zeros' of type str" in str(info.value)


def test_original_helpers():
    assert network_utils.as_list(None) == [] and network_utils.as_list((1,)) == [1]
    assert network_utils.as_list("ab") == ["ab"]  # a string is one item, not characters
    assert network_utils.as_tuple_or_list(2) == [2] and network_utils.maybe_call(lambda: 4) == 4
    assert network_utils.maybe_get([5, 6], 1) == 6 and network_utils.maybe_get("ab", 1) == "ab"
    assert network_utils.maybe_get(7, 3) == 7
    assert network_utils.flatten_list([[1], [2, 3]]) == [1, 2, 3]
    assert network_utils.name_from_vars({"a": 1, "b": 2}, "b", "c") == "b_2"
    assert network_utils.name_from_dict({"b": 2, "a": 1, "c": 3}, "c") == "a_1_b_2"
    # get_rand_state is boml.helpers.get_rand_state (tests/test_helpers.py, tests/test_utils_helpers.py)
    assert network_utils.get_rand_state(3).randint(100) == np.random.RandomState(3).randint(100)
