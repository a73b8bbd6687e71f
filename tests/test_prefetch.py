"""Training meta-batches sampled ahead in a thread: the same batches, in the same order, the same training."""
import threading
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from boml import workflow
from boml.errors import InvalidArgumentError
from boml.workflow.prefetch import Prefetcher


def _draw(rand):
    return rand.randint(1 << 30, size=3)


def test_items_and_generator_states_follow_the_sequential_order():
    rand = np.random.RandomState(7)
    sequential = np.random.RandomState(7)
    with Prefetcher(_draw, rand, depth=2) as ahead:
        for _ in range(6):
            item, state = ahead.next()
            np.testing.assert_array_equal(item, _draw(sequential))
            np.testing.assert_array_equal(state[1], sequential.get_state()[1])
    # the caller's generator is not advanced by the thread
    np.testing.assert_array_equal(_draw(rand), _draw(np.random.RandomState(7)))


def test_states_resume_the_sequence():
    rand = np.random.RandomState(3)
    with Prefetcher(_draw, rand, depth=3) as ahead:
        items = [ahead.next() for _ in range(4)]
    resumed = np.random.RandomState()
    resumed.set_state(items[1][1])  # the state after the second item
    np.testing.assert_array_equal(_draw(resumed), items[2][0])


def test_at_most_depth_items_are_sampled_ahead():
    calls = []

    def sample(rand):
        calls.append(threading.get_ident())
        return len(calls)

    with Prefetcher(sample, np.random.RandomState(0), depth=2) as ahead:
        time.sleep(0.3)
        waiting = len(calls)
        assert ahead.next()[0] == 1
    assert waiting <= 3  # two in the queue, one blocked on putting it


def test_an_error_in_the_thread_is_raised_in_order():
    def sample(rand):
        value = rand.randint(10)
        if len(seen) == 2:
            raise RuntimeError("third batch failed")
        seen.append(value)
        return value

    seen = []
    with Prefetcher(sample, np.random.RandomState(0), depth=2) as ahead:
        ahead.next()
        ahead.next()
        with pytest.raises(RuntimeError, match="third batch failed"):
            ahead.next()


@pytest.mark.parametrize("depth", [0, -1, 1.5, True])
def test_bad_depth_is_refused(depth):
    with pytest.raises(InvalidArgumentError, match="depth"):
        Prefetcher(_draw, np.random.RandomState(0), depth=depth)


def test_training_with_and_without_prefetch_is_identical(tmp_path):
    weights = []
    for prefetch in (0, 2):
        config = workflow.Config().replace(
            algorithm="maml", dataset="synthetic", classes=3, examples_train=1, examples_test=2, meta_batch_size=2,
            T=1, lr=0.4, num_filters=4, image_size=8, meta_train_iterations=3, test_episodes=5, eval_batch_size=5,
            print_interval=0, save_interval=0, val_interval=0, logdir=str(tmp_path), name=f"p{prefetch}",
            prefetch=prefetch)
        with tf.Graph().as_default():
            result = workflow.train(config, log=lambda *_: None)
        reader = tf.train.load_checkpoint(result["checkpoint"])
        weights.append({name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()})
    assert set(weights[0]) == set(weights[1])
    for name in weights[0]:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
