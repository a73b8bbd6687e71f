"""boml.utils helpers against their documented behaviour: tensor arithmetic, evaluation, feeds, seeds."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors, utils


def test_vector_helpers_and_empty_regularizers(session):
    a = tf.constant([1.0, -2.0])
    b = tf.constant([[3.0], [4.0]])
    np.testing.assert_allclose(session.run(utils.vectorize_all([a, b])), [1, -2, 3, 4])
    assert session.run(utils.dot(b, b)) == pytest.approx(25.0)
    assert session.run(utils.get_L2Reg([], 0.5)) == 0.0 and session.run(utils.get_L1Reg([], 0.5)) == 0.0
    assert session.run(utils.get_L1Reg([a, b], 0.5)) == pytest.approx(0.5 * (1 + 2 + 3 + 4))


def test_flatten_list_and_integer_check():
    assert utils.flatten_list([[1, 2], 3, (4,), None]) == [1, 2, 3, 4]
    assert utils.as_tuple_or_list(1) == [1] and utils.as_tuple_or_list((1,)) == (1,)
    assert utils.isinteger(3) and utils.isinteger(np.int64(3))
    assert not utils.isinteger(True) and not utils.isinteger(3.0)


def test_maybe_eval_runs_tensors_in_the_given_or_default_session(session):
    a = tf.constant([1.0, -2.0])
    assert utils.maybe_eval(a, session).tolist() == [1.0, -2.0]
    assert utils.maybe_eval(tf.constant(2.0)) == 2.0  # the fixture's session is the default one
    assert utils.maybe_eval(3) == 3


def test_rand_state_from_a_seed_a_sequence_or_the_callers_state():
    assert utils.get_rand_state(3).randint(1000) == np.random.RandomState(3).randint(1000)
    assert utils.get_rand_state([1, 2]).randint(1000) == np.random.RandomState([1, 2]).randint(1000)
    rand, reference = np.random.RandomState(1), np.random.RandomState(1)
    utils.get_rand_state(rand).rand()  # draws from the caller's own stream
    reference.rand()
    assert rand.rand() == reference.rand()
    with pytest.raises(errors.InvalidArgumentError, match="received 'seed'"):
        utils.get_rand_state("seed")


def test_session_config_grows_gpu_memory_and_places_softly():
    config = utils.set_gpu()
    assert config.gpu_options.allow_growth and config.allow_soft_placement


def _dataset(num_classes=2):
    return boml.meta_synthetic(num_classes=num_classes, examples_train=1, examples_test=1, image_shape=(4, 4, 1),
                               n_classes=(4, 2, 2), examples_per_class=3)


def test_feed_dicts_feed_each_experiment_its_own_episode():
    dataset = _dataset()
    first, second = boml.BOMLExperiment(dataset), boml.BOMLExperiment(dataset)
    episodes = dataset.train.generate_batch(2, rand=0)
    inner, outer = utils.feed_dict(episodes[0], first)
    np.testing.assert_array_equal(inner[first.x], episodes[0].train.data)
    np.testing.assert_array_equal(outer[first.y_], episodes[0].test.target)
    inner, outer = utils.feed_dicts(episodes, [first, second])
    np.testing.assert_array_equal(inner[second.x], episodes[1].train.data)
    np.testing.assert_array_equal(outer[first.x_], episodes[0].test.data)
    with pytest.raises(errors.InvalidArgumentError, match="received 2 episodes for 1 experiments"):
        utils.feed_dicts(episodes, [first])
