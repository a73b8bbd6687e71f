"""Small helpers of boml (utils, dl_utils, network_utils, extension, graph_mode) against their documented behaviour."""
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors, extension, utils
from boml.load_data.datasets import dl_utils
from boml.setup_model import network_utils


# ------------------------------------------------------------------------------------------ dl_utils (numpy only)
def test_dl_utils_list_and_dict_helpers():
    assert dl_utils.as_list(None) == [] and dl_utils.as_list((1, 2)) == [1, 2] and dl_utils.as_list(3) == [3]
    same = [1]
    assert dl_utils.as_list(same) is same
    assert dl_utils.as_tuple_or_list(5) == (5,) and dl_utils.as_tuple_or_list([5]) == [5]
    assert dl_utils.merge_dicts({"a": 1}, None, {"a": 2, "b": 3}) == {"a": 2, "b": 3}
    assert dl_utils.maybe_call(lambda k: k + 1, 1) == 2 and dl_utils.maybe_call(7, 1) == 7


def test_one_hot_accepts_integral_floats_and_matrices():
    np.testing.assert_array_equal(dl_utils.to_one_hot_enc(np.array([[0.0], [2.0]])),
                                  [[1, 0, 0], [0, 0, 1]])
    with pytest.raises(errors.InvalidArgumentError, match="integer labels"):
        dl_utils.to_one_hot_enc([0.5, 1.0])


def test_balance_check_and_balanced_indices():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    indices = dl_utils.get_indices_balanced_classes(7, labels, rand=0)
    counts = np.bincount(labels[indices], minlength=3)
    assert sorted(counts) == [2, 2, 3] and len(set(indices)) == 7 and list(indices) == sorted(indices)
    with pytest.raises(errors.DataError, match="has 3 examples"):
        dl_utils.get_indices_balanced_classes(12, labels[:9], rand=0)
    with pytest.raises(errors.DataError, match="no labels"):
        dl_utils.get_indices_balanced_classes(1, np.zeros(0, np.int64))

    class Data:
        def __init__(self, target):
            self.target = target

    assert dl_utils.test_if_balanced(Data(np.eye(3)[[0, 1, 2, 0, 1, 2]]))
    assert not dl_utils.test_if_balanced(Data(np.array([0, 0, 1])))
    assert dl_utils.test_if_balanced(Data(np.zeros(0, np.int64)))


# ------------------------------------------------------------------------------------------ utils (graph helpers)
def test_regularizers_and_vector_helpers(session):
    a = tf.constant([1.0, -2.0])
    b = tf.constant([[3.0], [4.0]])
    assert session.run(utils.get_L2Reg([a, b], 0.5)) == pytest.approx(0.5 * (1 + 4 + 9 + 16) / 2)
    assert session.run(utils.get_L1Reg([a, b], 0.5)) == pytest.approx(0.5 * (1 + 2 + 3 + 4))
    assert session.run(utils.get_L2Reg([], 0.5)) == 0.0 and session.run(utils.get_L1Reg([], 0.5)) == 0.0
    np.testing.assert_allclose(session.run(utils.vectorize_all([a, b])), [1, -2, 3, 4])
    assert session.run(utils.dot(a, a)) == pytest.approx(5.0)
    assert utils.flatten_list([[1, 2], 3, (4,)]) == [1, 2, 3, 4]
    assert utils.as_tuple_or_list(1) == [1] and utils.as_tuple_or_list((1,)) == (1,)
    assert utils.maybe_eval(a, session).tolist() == [1.0, -2.0] and utils.maybe_eval(3) == 3
    with session.as_default():
        assert utils.maybe_eval(tf.constant(2.0)) == 2.0
    rand = np.random.RandomState(1)
    assert utils.get_rand_state(rand) is rand
    assert utils.isinteger(3) and utils.isinteger(np.int64(3)) and not utils.isinteger(True)
    assert not utils.isinteger(3.0)
    config = utils.set_gpu()
    assert config.gpu_options.allow_growth and config.allow_soft_placement


def test_feed_dict_helpers_check_their_arguments():
    dataset = boml.meta_synthetic(num_classes=2, examples_train=1, examples_test=1, image_shape=(4, 4, 1),
                                  n_classes=(4, 2, 2), examples_per_class=3)
    ex = boml.BOMLExperiment(dataset)
    episode = dataset.train.generate_batch(1, rand=0)
    inner, outer = utils.feed_dict(episode[0], ex)
    assert inner[ex.x].shape == (2, 4, 4, 1) and outer[ex.y_].shape == (2, 2)
    with pytest.raises(errors.InvalidArgumentError):
        utils.feed_dicts(episode, [ex, boml.BOMLExperiment(dataset)])


# ------------------------------------------------------------------------------------------ network_utils
def test_network_utils_generic_helpers():
    assert network_utils.as_list(None) == [] and network_utils.as_list((1,)) == [1]
    assert network_utils.as_list("a") == ["a"]
    assert network_utils.as_tuple_or_list(2) == (2,)
    assert network_utils.maybe_call(lambda: 4) == 4 and network_utils.maybe_call(4) == 4
    assert network_utils.maybe_get([5, 6], 1) == 6 and network_utils.maybe_get("ab", 1) == "ab"
    assert network_utils.maybe_get(7, 3) == 7
    assert network_utils.flatten_list([[1], [2, 3]]) == [1, 2, 3]
    assert network_utils.name_from_vars({"a": 1, "b": 2}, "b", "c") == "b_2"
    assert network_utils.name_from_dict({"b": 2, "a": 1, "c": 3}, "c") == "a_1_b_2"
    rand = np.random.RandomState(0)
    assert network_utils.get_rand_state(rand) is rand
    assert network_utils.get_rand_state(3).randint(100) == np.random.RandomState(3).randint(100)
    with pytest.raises(errors.InvalidArgumentError, match="rand must be"):
        network_utils.get_rand_state("seed")


def test_network_utils_statistics():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    assert network_utils.half_int(values) == pytest.approx(1.96 * np.std(values) / np.sqrt(3))
    assert np.isnan(network_utils.half_int([1.0]))
    mean, std, ci = network_utils.mean_std_ci(values, mul=100)
    assert (mean, std) == (pytest.approx(250.0), pytest.approx(np.std(values * 100)))
    assert network_utils.mean_std_ci(values, tex=True) == f"${2.5:.2f} \\pm {network_utils.half_int(values):.2f}$"


def test_network_utils_graph_helpers(session):
    x = tf.constant([-1.0, 2.0])
    np.testing.assert_allclose(session.run(network_utils.leaky_relu(x, 0.1)), [-0.1, 2.0])
    with tf.variable_scope("block"):
        weight = tf.get_variable("kernel", initializer=tf.zeros([2]))
    assert network_utils.filter_vars("kernel", scope="block") == [weight]
    assert network_utils.GlorotUniform.fans([]) == (1, 1) and network_utils.GlorotUniform.fans([5]) == (5, 5)
    assert network_utils.GlorotUniform.fans([3, 3, 4, 8]) == (36, 72)
    init = network_utils.glorot_uniform(seed=1, dtype=tf.float64)
    assert init.get_config() == {"seed": 1, "dtype": "float64"}
    sample = session.run(init([10, 20]))
    assert sample.dtype == np.float64 and np.abs(sample).max() <= np.sqrt(6.0 / 30)
    with pytest.raises(errors.InvalidArgumentError, match="floating-point"):
        init([2], dtype=tf.int32)
    constant = network_utils.as_initializer(0.5)
    assert session.run(constant([2], dtype=tf.float32)).tolist() == [0.5, 0.5]
    assert network_utils.as_initializer(None) is None
    assert isinstance(network_utils.as_initializer(None, default=tf.zeros_initializer), tf.zeros_initializer)
    with pytest.raises(errors.InvalidArgumentError, match="initializer must be"):
        network_utils.as_initializer("zeros")


# ------------------------------------------------------------------------------------------ extension
def test_registry_lookup_errors_and_iteration():
    registry = extension.Registry("widget")
    assert registry.kind == "widget"
    with pytest.raises(errors.InvalidArgumentError, match="non-empty string"):
        registry.register("", lambda: 0)
    registry.register("b", lambda: 0)
    registry.register("a")(lambda: 1)
    assert list(registry) == ["a", "b"]
    with pytest.raises(errors.UnknownNameError, match="Unknown widget 'c'. Registered: 'a', 'b'"):
        registry.get("c")
    registry.unregister("a")
    registry.unregister("missing")
    assert registry.names() == ["b"]


def test_collections_and_scalar_outer_parameters(session):
    stacked = extension.get_outerparameter("rates", np.array([[0.1, 0.2], [0.3, 0.4]], np.float32), scalar=True)
    assert stacked.shape.as_list() == [2, 2]
    components = extension.outer_parameters(scope="rates_components")
    assert len(components) == 4 and all(v.shape.as_list() == [] for v in components)
    session.run(tf.global_variables_initializer())
    np.testing.assert_allclose(session.run(stacked), [[0.1, 0.2], [0.3, 0.4]])
    extension.remove_from_collection(extension.GraphKeys.METAPARAMETERS, components[0])
    assert len(extension.outer_parameters(scope="rates_components")) == 3
    extension.remove_from_collection(extension.GraphKeys.METAPARAMETERS, tf.constant(0.0))  # ignored
    assert extension.hypergradients() == [] and extension.lagrangian_multipliers() == []


# ------------------------------------------------------------------------------------------ graph_mode
def test_disable_v2_behavior_is_undone_with_a_warning():
    code = ("import warnings, tensorflow.compat.v1 as tf\n"
            "tf.disable_v2_behavior()\n"
            "import boml\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    boml.graph_mode.check_graph_mode('test')\n"
            "from tensorflow.python.ops import control_flow_util as c\n"
            "print('WARNED', any('re-enabling' in str(w.message) for w in caught), c.ENABLE_CONTROL_FLOW_V2,\n"
            "      tf.resource_variables_enabled())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "WARNED True True True" in result.stdout, result.stderr[-2000:]
