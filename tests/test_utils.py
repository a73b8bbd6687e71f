"""Losses, metrics and regularizers of boml.utils against numpy."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from boml import errors, utils

RNG = np.random.RandomState(0)


def test_losses_and_accuracy_match_numpy(session):
    logits = RNG.randn(6, 4)
    labels = np.eye(4)[RNG.randint(0, 4, 6)]
    shifted = logits - logits.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    ce, acc, mse = session.run([utils.cross_entropy(tf.constant(logits), tf.constant(labels)),
                                utils.classification_acc(tf.constant(logits), tf.constant(labels)),
                                utils.mse(tf.constant(logits), tf.constant(labels))])
    assert ce == pytest.approx(-(labels * log_softmax).sum(1).mean(), rel=1e-12)
    assert acc == pytest.approx((logits.argmax(1) == labels.argmax(1)).mean())
    assert mse == pytest.approx(((logits - labels) ** 2).mean(), rel=1e-12)


def test_regularizers(session):
    a, b = RNG.randn(3, 2), RNG.randn(4)
    variables = [tf.constant(a), tf.constant(b)]
    l2, l1 = session.run([utils.get_L2Reg(variables, 0.3), utils.get_L1Reg(variables, 0.2)])
    assert l2 == pytest.approx(0.3 * 0.5 * ((a ** 2).sum() + (b ** 2).sum()), rel=1e-12)
    assert l1 == pytest.approx(0.2 * (np.abs(a).sum() + np.abs(b).sum()), rel=1e-12)
    with pytest.raises(errors.InvalidArgumentError, match="-1"):
        utils.get_L2Reg(variables, -1)


def test_helpers():
    assert utils.merge_dicts({"a": 1}, None, {"b": 2, "a": 3}) == {"a": 3, "b": 2}
    assert utils.maybe_call(lambda k: k + 1, 2) == 3 and utils.maybe_call(5, 2) == 5
    assert utils.as_list(None) == [] and utils.as_list((1, 2)) == [1, 2] and utils.as_list(3) == [3]
    mean, std, half = utils.mean_std_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and half == pytest.approx(1.96 * std / 2)
    assert isinstance(utils.get_rand_state(3), np.random.RandomState)
    with pytest.raises(errors.InvalidArgumentError):
        utils.get_rand_state("seed")
    with pytest.raises(errors.InvalidArgumentError):
        utils.mean_std_ci([])
