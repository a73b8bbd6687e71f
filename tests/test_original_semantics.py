"""The original BOML's tensor semantics, on the synthetic dataset in float64, against ``adapted()``.

(a) MetaInit: a tensor built after ``ll_problem`` from ``ex.model.re_forward(ex.x_).out`` is a function
    of the adapted weights: a plain ``session.run`` with one episode's support+query feed gives the
    adapted value.
(b) MetaFeat (Trad/Aggr): after ``run()`` the task variables hold the adapted state of the last task run,
    ``outergradient.initialization`` resets them, and the original evaluation protocol (reset, then T
    plain ``BOMLOptSGD(lr).minimize`` steps on the support loss, then the query accuracy) gives
    ``adapted()``'s accuracy.
"""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import bilevel_toys as toys
import boml
from boml.optimizer import BOMLOptSGD


@pytest.fixture
def dataset():
    return boml.meta_synthetic(num_classes=3, examples_train=2, examples_test=4, image_shape=(6, 6, 1), seed=0)


def _episode(ex, dataset, seed, batch=None):
    rand = np.random.RandomState(seed)
    episodes = dataset.train.generate_batch(batch or 1, rand=rand)
    if batch is None:
        return ex.feed_dicts(episodes[:1]) if ex.is_batched else ex.feed_dicts(episodes[0])
    return ex.feed_dicts(episodes)


def test_meta_init_tensors_built_after_ll_problem_are_at_the_adapted_weights(session, dataset):
    ex = boml.BOMLExperiment(dataset, dtype=tf.float64)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", dim_hidden=(4, 4))
    ex.model = boml_ho.base_learner(ex.x, meta_learner)
    before = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
    inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), learning_rate=0.3, T=3,
                                    experiment=ex)
    query_out = ex.model.re_forward(ex.x_).out  # the original's outer-objective tensor
    outer = boml.utils.cross_entropy(query_out, ex.y_)
    accuracy = boml.utils.classification_acc(query_out, ex.y_)
    boml_ho.ul_problem(outer, 0.01, inner_grad, meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS))
    boml_ho.aggregate_all()
    reference = boml_ho.adapted([before, boml.utils.classification_acc(
        ex.model.network.re_forward(ex.x_).out, ex.y_), ex.model.network.out], inner_grad)
    assert "AdaptedModel" in repr(ex.model) and ex.model.var_list == inner_grad.var_list
    session.run(tf.global_variables_initializer())
    inner_fd, outer_fd = _episode(ex, dataset, seed=1)
    feed = {**inner_fd, **outer_fd}
    plain_loss, plain_acc, unadapted = session.run([outer, accuracy, before], feed)
    adapted_loss, adapted_acc, adapted_support = session.run(reference, feed)
    np.testing.assert_allclose(session.run(ex.model.out, feed), adapted_support[0], rtol=1e-10)
    np.testing.assert_allclose(plain_loss, adapted_loss[0], rtol=1e-10)
    np.testing.assert_allclose(plain_acc, adapted_acc[0], rtol=1e-12)
    assert abs(plain_loss - unadapted) > 1e-3  # the adaptation does change the value
    # The same tensor drives training: the training loss of the episode is the adapted query loss.
    losses = boml_ho.run(inner_fd, outer_fd, session=session)
    np.testing.assert_allclose(losses["outer_loss"], plain_loss, rtol=1e-10)


def utils_feed(ex, episode):
    inner_fd, outer_fd = ex.feed_dicts([episode] if ex.is_batched else episode)
    return {**inner_fd, **outer_fd}


def _meta_feat(dataset, inner_method, meta_batch_size=None, T=3, lr=0.2):
    ex = boml.BOMLExperiment(dataset, dtype=tf.float64, meta_batch_size=meta_batch_size)
    boml_ho = boml.BOMLOptimizer("MetaFeat", inner_method, "Reverse")
    W, inner, query_out = toys.tanh_meta_feat_model(boml_ho, ex)
    outer = boml.utils.cross_entropy(query_out, ex.y_)
    extra = {"outer_objective": outer, "alpha_init": 0.3} if inner_method == "Aggr" else {}
    inner_grad = boml_ho.ll_problem(inner, lr, T, experiment=ex, **extra)
    boml_ho.ul_problem(outer, 0.05, inner_grad, meta_param=[W], outer_objective_optimizer="SGD")
    boml_ho.aggregate_all()
    accuracy = boml.utils.classification_acc(query_out, ex.y_)
    return ex, boml_ho, inner_grad, inner, accuracy


@pytest.mark.parametrize("meta_batch_size", [None, 2])
@pytest.mark.parametrize("inner_method", ["Trad", "Aggr"])
def test_meta_feat_task_variables_hold_the_adapted_state_after_run(session, dataset, inner_method,
                                                                   meta_batch_size):
    ex, boml_ho, inner_grad, _, _ = _meta_feat(dataset, inner_method, meta_batch_size)
    adapted_state = boml_ho.adapted([tf.identity(v) for v in inner_grad.var_list], inner_grad)
    session.run(tf.global_variables_initializer())
    inner_fd, outer_fd = _episode(ex, dataset, seed=2, batch=meta_batch_size)
    # Aggr adapts with the query loss inside the dynamics: the training adaptation needs the query feed too.
    expected = session.run(adapted_state, {**inner_fd, **outer_fd}) if inner_method == "Trad" else None
    boml_ho.run(inner_fd, outer_fd, session=session)
    held = session.run(inner_grad.var_list)
    if expected is not None:
        for value, reference in zip(held, expected):
            np.testing.assert_allclose(value, reference[-1], rtol=1e-10)  # the last task run
    assert any(np.abs(v).max() > 1e-6 for v in held)
    session.run(boml_ho.outergradient.initialization)
    for value in session.run(inner_grad.var_list):
        np.testing.assert_array_equal(value, np.zeros_like(value))


@pytest.mark.parametrize("meta_batch_size", [None, 2])
def test_original_evaluation_protocol_matches_adapted(session, dataset, meta_batch_size):
    T, lr = 3, 0.2
    ex, boml_ho, inner_grad, inner, accuracy = _meta_feat(dataset, "Trad", meta_batch_size, T=T, lr=lr)
    reference = boml_ho.adapted(accuracy, inner_grad)
    update = BOMLOptSGD(lr).minimize(inner, var_list=inner_grad.var_list)
    update = update[0] if isinstance(update, tuple) else update
    session.run(tf.global_variables_initializer())
    rand = np.random.RandomState(0)
    for _ in range(3):  # a little meta-training first
        boml_ho.run(*_episode(ex, dataset, seed=int(rand.randint(1000)), batch=meta_batch_size), session=session)
    for seed in (7, 8):
        episode = dataset.train.generate_batch(1, rand=np.random.RandomState(seed))[0]
        # The original's plain feed: one episode on the per-task placeholders.
        inner_fd = {ex.x: episode.train.data, ex.y: episode.train.target}
        outer_fd = {ex.x_: episode.test.data, ex.y_: episode.test.target}
        session.run(boml_ho.outergradient.initialization)
        for _ in range(T):
            session.run(update, inner_fd)
        original = session.run(accuracy, {**inner_fd, **outer_fd})
        expected = session.run(reference, utils_feed(ex, episode))[0]
        np.testing.assert_allclose(original, expected, rtol=1e-12)


def test_aggregation_fn_receives_a_list_as_in_the_original(session, dataset):
    ex = boml.BOMLExperiment(dataset, dtype=tf.float64, meta_batch_size=2)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    W = boml.extension.get_outerparameter("W", np.random.RandomState(0).randn(36, 5) * 0.3)
    boml_ho.set_output_dim(3)
    ex.model = boml_ho.base_learner(tf.matmul(tf.reshape(ex.x, [-1, 36]), W), None)
    outer = boml.utils.cross_entropy(ex.model.re_forward(tf.matmul(tf.reshape(ex.x_, [-1, 36]), W)).out, ex.y_)
    inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), 0.2, 2, experiment=ex)
    boml_ho.ul_problem(outer, 0.05, inner_grad, meta_param=[W])
    received = []

    def total(grads):
        received.append(grads)
        return tf.add_n(grads)

    pairs = boml_ho.outergradient.outer_grads_and_vars(aggregation_fn=total)
    mean = boml_ho.outergradient.outer_grads_and_vars()
    assert isinstance(received[0], list) and len(received[0]) == 2
    session.run(tf.global_variables_initializer())
    feed = {**_episode(ex, dataset, seed=3, batch=2)[0], **_episode(ex, dataset, seed=3, batch=2)[1]}
    np.testing.assert_allclose(session.run(pairs[0][0], feed), 2 * session.run(mean[0][0], feed), rtol=1e-12)


def test_learn_lr_learns_one_scalar_by_default_as_in_the_original():
    y = tf.get_variable("y", initializer=tf.zeros([3, 2], tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    inner_grad = boml_ho.ll_problem(tf.reduce_sum(tf.square(y - 1.0)), 0.1, 2, var_list=[y], learn_lr=True)
    assert inner_grad.learning_rate.shape == () and inner_grad.learning_rate.name.endswith("lr:0")
    assert boml_ho.get_global_step() is boml_ho.global_step
    assert boml.extension.GraphKeys.ZS == "zs"


def test_unknown_ll_problem_keyword_is_refused_with_the_valid_ones():
    y = tf.get_variable("y", initializer=tf.zeros([2], tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    with pytest.raises(boml.errors.UnknownOptionError, match="first_ordr.*lr_granularity"):
        boml_ho.ll_problem(tf.reduce_sum(tf.square(y)), 0.1, 2, var_list=[y], first_ordr=True)
    with pytest.raises(boml.errors.UnknownOptionError, match="alpha_init"):
        boml_ho.ll_problem(tf.reduce_sum(tf.square(y)), 0.1, 2, var_list=[y], alpha_init=0.5)  # Aggr only
    inner_grad = boml_ho.ll_problem(tf.reduce_sum(tf.square(y)), 0.1, 2, var_list=[y])
    with pytest.raises(boml.errors.UnknownOptionError, match="epsilon"):
        boml_ho.ul_problem(tf.reduce_sum(y), 0.1, inner_grad, meta_param=[y], epsilon=0.5)  # Darts only
