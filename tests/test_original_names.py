"""Names of the original BOML that scripts use, each with the original's behaviour (issue 11, point 5).

Covers ``boml.utils`` (``BatchQueueMock``, ``get_default_session``, ``remove_from_collection``,
``add_list``, ``maybe_add``, ``val_or_zero``, ``solve_int_or_generator``, ``save_obj``/``load_obj``),
``BatchQueueMock.get_single_batch``, the ``BOMLOpt*`` classes as ``tf.compat.v1.train.Optimizer``
subclasses with ``minimize``, Adam's original epsilon placement and ``BOMLNetFeedForward``'s Xavier
default. The engine objects' names (``BOMLOuterGrad.initialization`` ...) are tested with the engine.
"""
import inspect
import logging
import os
import pickle

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors, utils
from boml.load_data.datasets.structures import Datasets
from boml.optimizer import BOMLOptAdam, BOMLOptMomentum, BOMLOptSGD

RNG = np.random.RandomState(3)


def _meta_dataset():
    return boml.meta_synthetic(num_classes=3, examples_train=1, examples_test=2, image_shape=(4, 4, 1),
                               n_classes=(6, 3, 3), examples_per_class=4).train


def _ids(episode):
    return episode.train.data.reshape(len(episode.train.data), -1).sum(1)


# ------------------------------------------------------------------------------------ BatchQueueMock
def test_utils_batch_queue_mock_is_the_data_class():
    assert utils.BatchQueueMock is boml.BatchQueueMock
    queue = utils.BatchQueueMock(_meta_dataset(), 1, 4, utils.get_rand_state(0))  # the original's call
    (meta_batch,) = queue.get_all_batches()
    assert len(meta_batch) == 4 and all(isinstance(e, Datasets) for e in meta_batch)


def test_get_single_batch_returns_n_batches_episodes_drawn_one_at_a_time():
    metadataset = _meta_dataset()
    queue = utils.BatchQueueMock(metadataset, 3, 5, 7)
    single = queue.get_single_batch()
    assert len(single) == 3 and all(isinstance(e, Datasets) for e in single)  # not batch_size=5 episodes
    expected = list(metadataset.generate(3, 1, 7))
    for got, want in zip(single, expected):
        np.testing.assert_array_equal(got.train.data, want.train.data)
        np.testing.assert_array_equal(got.test.target, want.test.target)
    # The RandomState is shared: the next calls continue the same stream.
    again = utils.BatchQueueMock(metadataset, 3, 5, 7)
    again.get_single_batch()
    assert [len(b) for b in again.get_all_batches()] == [5, 5, 5]
    assert len(next(again)) == 5
    with_batch_one = utils.BatchQueueMock(metadataset, 2, 1, 0).get_all_batches()
    assert all(isinstance(e, Datasets) for e in with_batch_one)


def test_queue_gives_new_episodes_across_calls():
    queue = utils.BatchQueueMock(_meta_dataset(), 1, 1, 1)
    first, second = queue.get_single_batch()[0], queue.get_single_batch()[0]
    assert not np.array_equal(_ids(first), _ids(second))


# ------------------------------------------------------------------------------------ small helpers
def test_get_default_session(fresh_graph):
    assert utils.get_default_session() is None
    with tf.Session(graph=fresh_graph) as sess:
        assert utils.get_default_session() is sess
    assert utils.get_default_session() is None


def test_remove_from_collection_removes_and_warns_about_missing(caplog):
    a = tf.Variable(1.0, name="a")
    b = tf.Variable(2.0, name="b")
    stray = tf.Variable(3.0, name="stray", collections=[])
    key = tf.GraphKeys.GLOBAL_VARIABLES
    with caplog.at_level(logging.WARNING, logger="boml.utils"):
        utils.remove_from_collection(key, a)
    assert tf.get_collection(key) == [b] and not caplog.records
    with caplog.at_level(logging.WARNING, logger="boml.utils"):
        utils.remove_from_collection(key, stray, b)
    assert tf.get_collection(key) == []
    assert "stray" in caplog.text and key in caplog.text


def test_add_list_maybe_add_val_or_zero(session):
    assert utils.add_list([1, 2.5], [10, -1]) == [11, 1.5]
    summed = utils.add_list([tf.constant([1.0, 2.0])], [tf.constant([0.5, 0.5])])
    np.testing.assert_array_equal(session.run(summed[0]), [1.5, 2.5])
    with pytest.raises(errors.InvalidArgumentError, match="lengths 2 and 1"):
        utils.add_list([1, 2], [3])
    assert utils.maybe_add(3, None) == 3 and utils.maybe_add(3, 4) == 7
    like = tf.constant(np.ones((2, 3)))
    zeros = utils.val_or_zero(None, like)
    assert zeros.shape.as_list() == [2, 3] and zeros.dtype == tf.float64
    np.testing.assert_array_equal(session.run(zeros), np.zeros((2, 3)))
    value = tf.constant(5.0)
    assert utils.val_or_zero(value, like) is value


def test_solve_int_or_generator():
    assert utils.solve_int_or_generator(3) == range(3)
    assert utils.solve_int_or_generator(np.int64(2)) == range(2)
    steps = [0, 5, 9]
    assert utils.solve_int_or_generator(steps) is steps
    generator = (i for i in range(2))
    assert utils.solve_int_or_generator(generator) is generator


# ------------------------------------------------------------------------------------ save_obj / load_obj
_CALLS = []


def _record_call():
    _CALLS.append("called")
    return "payload"


class _Exploit:
    def __reduce__(self):
        return _record_call, ()


def test_save_and_load_obj_round_trip(tmp_path):
    results = {"train_train": {"mean": [0.25, np.float64(0.5)], "std": [0.1, 0.2]}, "iterations": [0, 100],
               "alpha": [np.arange(6.0).reshape(2, 3)], "counts": np.array([1, 2], np.int32),
               "order": boml.utils.OrderedDict(b=1, a=2), "name": "MAML", "flags": {True, None}}
    path = str(tmp_path / "results.pickle")
    utils.save_obj(path, results)
    assert os.listdir(tmp_path) == ["results.pickle"]  # no temporary file left behind
    loaded = utils.load_obj(path)
    assert loaded["train_train"] == results["train_train"] and loaded["iterations"] == [0, 100]
    np.testing.assert_array_equal(loaded["alpha"][0], results["alpha"][0])
    assert loaded["counts"].dtype == np.int32 and list(loaded["order"]) == ["b", "a"]
    assert loaded["name"] == "MAML" and loaded["flags"] == {True, None}
    utils.save_obj(path, [1, 2])  # overwrites
    assert utils.load_obj(path) == [1, 2]


def test_save_obj_failure_leaves_no_file(tmp_path):
    path = str(tmp_path / "results.pickle")
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        utils.save_obj(path, {"not picklable": lambda: None})
    assert os.listdir(tmp_path) == []


def test_load_obj_refuses_code_unless_trusted(tmp_path):
    path = str(tmp_path / "exploit.pickle")
    with open(path, "wb") as stream:
        pickle.dump({"looks": "harmless", "but": _Exploit()}, stream)
    _CALLS.clear()
    with pytest.raises(errors.DataError, match="_record_call"):
        utils.load_obj(path)
    assert _CALLS == []
    assert utils.load_obj(path, trusted=True)["but"] == "payload"
    assert _CALLS == ["called"]


# ------------------------------------------------------------------------------------ optimizers
@pytest.mark.parametrize("optimizer", [BOMLOptSGD(0.1), BOMLOptMomentum(0.1, 0.5), BOMLOptAdam(0.1)],
                         ids=["sgd", "momentum", "adam"])
def test_boml_optimizers_are_tf_train_optimizers(optimizer):
    assert isinstance(optimizer, tf.train.Optimizer)
    assert optimizer.get_name() == optimizer.name
    ours = list(inspect.signature(type(optimizer).minimize).parameters)
    theirs = list(inspect.signature(tf.train.Optimizer.minimize).parameters)
    # The original's order (loss_inner, var_list, global_step, ...), every keyword of TF's minimize.
    assert ours[1:4] == ["loss_inner", "var_list", "global_step"] and set(ours[2:]) == set(theirs[2:])


def test_plain_sgd_minimize_equals_numpy_sgd(session):
    """The original evaluation's ``BOMLOptSGD(lr).minimize(loss, var_list=...)`` run T times."""
    features, targets = RNG.randn(8, 3), RNG.randn(8, 2)
    w0, b0 = RNG.randn(3, 2), RNG.randn(2)
    w = tf.Variable(w0, name="w")
    b = tf.Variable(b0, name="b")
    loss = 0.5 * tf.reduce_sum((tf.matmul(tf.constant(features), w) + b - targets) ** 2)
    update, dynamics = BOMLOptSGD(learning_rate=0.02).minimize(loss, var_list=[w, b])
    assert list(dynamics)[:2] == [w, b]
    session.run(tf.global_variables_initializer())
    w_np, b_np = w0.copy(), b0.copy()
    for _ in range(7):
        session.run(update)
        residual = features @ w_np + b_np - targets
        w_np, b_np = w_np - 0.02 * features.T @ residual, b_np - 0.02 * residual.sum(0)
    np.testing.assert_allclose(session.run(w), w_np, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(session.run(b), b_np, rtol=1e-12, atol=1e-14)
    assert np.abs(w_np - w0).max() > 0.1  # the weights really moved


@pytest.mark.parametrize("make_boml, make_tf, slots", [
    (lambda: BOMLOptMomentum(0.05, momentum=0.8, use_locking=True),
     lambda c: tf.train.MomentumOptimizer(c(0.05), c(0.8), use_locking=True), [("m", "momentum")]),
    (lambda: BOMLOptAdam(0.05, 0.8, 0.95, 1e-6, True),
     lambda c: tf.train.AdamOptimizer(c(0.05), c(0.8), c(0.95), c(1e-6), use_locking=True), [("m", "m"), ("v", "v")]),
], ids=["momentum", "adam"])
def test_minimize_with_tf_keywords_and_get_slot_match_tf(session, make_boml, make_tf, slots):
    def loss(v):
        return tf.reduce_sum(tf.sin(v) * v ** 2) + tf.reduce_sum(tf.exp(-v))

    start = RNG.randn(4, 3)
    ours, theirs = tf.Variable(start, name="ours"), tf.Variable(start, name="theirs")
    optimizer = make_boml()
    update, _ = optimizer.minimize(loss(ours), var_list=[ours], gate_gradients=tf.train.Optimizer.GATE_GRAPH,
                                   aggregation_method=None, colocate_gradients_with_ops=True, name="compat",
                                   grad_loss=tf.constant(1.0, tf.float64))
    reference_optimizer = make_tf(lambda value: tf.constant(value, tf.float64))
    reference = reference_optimizer.minimize(loss(theirs), var_list=[theirs])
    assert optimizer.get_slot_names() == [ours_name for ours_name, _ in slots]
    assert set(optimizer.variables()) == {optimizer.get_slot(ours, name) for name, _ in slots} | {
        v for v in optimizer.variables() if v.dtype.base_dtype == tf.int32}
    assert optimizer.get_slot(theirs, slots[0][0]) is None
    session.run(tf.global_variables_initializer())
    for _ in range(6):
        session.run([update, reference])
    np.testing.assert_allclose(session.run(ours), session.run(theirs), rtol=1e-12, atol=1e-14)
    for ours_name, tf_name in slots:
        np.testing.assert_allclose(session.run(optimizer.get_slot(ours, ours_name)),
                                   session.run(reference_optimizer.get_slot(theirs, tf_name)), rtol=1e-12, atol=1e-14)
    assert not np.allclose(session.run(ours), start)


def test_minimize_global_step_and_hyperparameter_tensors(session):
    w = tf.Variable(np.array([1.0, -1.0]), name="w")
    step = tf.train.get_or_create_global_step()
    optimizer = BOMLOptMomentum(0.25, 0.5)
    update, _ = optimizer.minimize(tf.reduce_sum(w ** 2), var_list=[w], global_step=step)
    session.run(tf.global_variables_initializer())
    session.run(update)
    session.run(update)
    assert session.run(step) == 2
    assert session.run(optimizer.learning_rate_tensor) == pytest.approx(0.25)
    assert session.run(optimizer.optimizer_params_tensor) == pytest.approx([0.25, 0.5])


def test_adam_original_epsilon_placement(session):
    w0, g = np.array([0.5, -2.0, 0.0]), np.array([0.3, -0.01, 0.0])
    lr, beta1, beta2, eps = 0.1, 0.9, 0.999, 0.05  # a large epsilon makes the two placements differ
    inside = BOMLOptAdam(lr, beta1, beta2, eps, epsilon_inside_sqrt=True)
    outside = BOMLOptAdam(lr, beta1, beta2, eps)
    params = [tf.constant(w0)]
    (w_in,), slots_in = inside.step(params, [tf.constant(g)], inside.init_slots(params), 1)
    (w_out,), _ = outside.step(params, [tf.constant(g)], outside.init_slots(params), 1)
    m, v = (1 - beta1) * g, (1 - beta2) * g ** 2
    lr_1 = lr * np.sqrt(1 - beta2) / (1 - beta1)
    got_in, got_out = session.run([w_in, w_out])
    np.testing.assert_allclose(got_in, w0 - lr_1 * m / np.sqrt(v + eps ** 2), rtol=1e-13)
    np.testing.assert_allclose(got_out, w0 - lr_1 * m / (np.sqrt(v) + eps), rtol=1e-13)
    assert np.abs(got_in - got_out).max() > 1e-3
    # With epsilon inside the root the derivative of the root is bounded even where v' == 0.
    (jacobian,) = tf.gradients(tf.reduce_sum(w_in), params)
    assert np.all(np.isfinite(session.run(jacobian)))
    assert session.run(slots_in[1])[2] == 0.0
    assert str(inside).endswith("epsilon_inside_sqrt=True)") and "inside" not in str(outside)
    assert inside.epsilon_inside_sqrt and not outside.epsilon_inside_sqrt


@pytest.mark.parametrize("build, fragment", [
    (lambda: BOMLOptSGD(0.1, use_locking="yes"), "use_locking"),
    (lambda: BOMLOptMomentum(0.1, 0.5, use_locking=1), "use_locking"),
    (lambda: BOMLOptAdam(0.1, epsilon_inside_sqrt="original"), "epsilon_inside_sqrt"),
])
def test_bad_compat_arguments_raise(build, fragment):
    with pytest.raises(errors.InvalidArgumentError, match=fragment):
        build()


# ------------------------------------------------------------------------------------ FeedForward
def test_feedforward_default_head_is_xavier_uniform(session):
    features = tf.placeholder(tf.float32, [None, 400])
    head = boml.BOMLNetFeedForward(features, 100)
    session.run(tf.global_variables_initializer())
    weight, bias = session.run(head.var_list)
    limit = np.sqrt(6.0 / (400 + 100))
    assert np.abs(weight).max() <= limit and np.abs(weight).max() > 0.95 * limit
    assert weight.std() == pytest.approx(limit / np.sqrt(3.0), rel=0.03)
    assert abs(weight.mean()) < 0.005
    np.testing.assert_array_equal(bias, np.zeros(100))


def test_base_learner_head_stays_zero_initialized(session):
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    boml_ho.set_output_dim(5)
    head = boml_ho.base_learner(tf.placeholder(tf.float32, [None, 7]), meta_learner=None)
    session.run(tf.global_variables_initializer())
    np.testing.assert_array_equal(session.run(head.var_list[0]), np.zeros((7, 5)))
