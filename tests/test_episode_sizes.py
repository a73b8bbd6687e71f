"""Static episode sizes of a batched experiment: inferred, validated, checked at run time."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml.errors import InvalidArgumentError, ShapeError


@pytest.fixture
def dataset():
    return boml.meta_synthetic(num_classes=3, examples_train=2, examples_test=4, image_shape=(6, 6, 1), seed=0)


def _function_op_types():
    library = tf.get_default_graph().as_graph_def().library
    return {node.op for function in library.function for node in function.node_def}


def test_sizes_come_from_the_training_meta_dataset(dataset):
    assert boml.BOMLExperiment(dataset, meta_batch_size=2).episode_sizes == (6, 12)
    assert boml.BOMLExperiment(dataset, meta_batch_size=2, episode_sizes=None, name="b").episode_sizes is None
    assert boml.BOMLExperiment(dataset, meta_batch_size=2, episode_sizes=(3, 5), name="c").episode_sizes == (3, 5)
    assert boml.BOMLExperiment(dataset, name="d").episode_sizes is None  # per-task placeholders are fed directly
    assert boml.BOMLExperiment(dim_data=(4,), dim_target=2, meta_batch_size=2, name="e").episode_sizes is None


@pytest.mark.parametrize("bad", [(0, 3), (2,), "big", (2.5, 3), (True, 3)])
def test_invalid_sizes_are_refused(dataset, bad):
    with pytest.raises(InvalidArgumentError, match="episode_sizes"):
        boml.BOMLExperiment(dataset, meta_batch_size=2, episode_sizes=bad)


def _maml(dataset, episode_sizes="auto"):
    """MAML on 2 tasks in the per-task map, whose function body holds the task's ops (EnsureShape among them)."""
    ex = boml.BOMLExperiment(dataset, meta_batch_size=2, episode_sizes=episode_sizes)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", dim_hidden=(4, 4))
    ex.model = boml_ho.base_learner(ex.x, meta_learner)
    query = ex.model.re_forward(ex.x_).out
    inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), learning_rate=0.1, T=2,
                                    experiment=ex, var_list=ex.model.var_list)
    boml_ho.ul_problem(boml.utils.cross_entropy(query, ex.y_), meta_learning_rate=0.01, inner_grad=inner_grad,
                       meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS), vectorize_tasks=False)
    boml_ho.aggregate_all()
    accuracy = boml_ho.adapted(boml.utils.classification_acc(query, ex.y_), inner_grad)
    return ex, boml_ho, accuracy


def test_meta_gradient_graph_is_static_and_evaluation_accepts_other_sizes(session, dataset):
    ex, boml_ho, accuracy = _maml(dataset)
    assert "EnsureShape" in _function_op_types()
    session.run(tf.global_variables_initializer())
    rand = np.random.RandomState(0)
    losses = boml_ho.run(*ex.feed_dicts(dataset.train.generate_batch(2, rand=rand)), session=session)
    assert np.isfinite(losses["outer_loss"])
    # Evaluation: more tasks and more queries than in training.
    other = boml.meta_synthetic(num_classes=3, examples_train=2, examples_test=7, image_shape=(6, 6, 1), seed=1)
    inner_fd, outer_fd = ex.feed_dicts(other.test.generate_batch(5, rand=rand))
    assert session.run(accuracy, {**inner_fd, **outer_fd}).shape == (5,)
    # Training on episodes of other sizes (meta_batch_size=2 of them) is refused with the sizes and the fix.
    inner_fd, outer_fd = ex.feed_dicts(other.test.generate_batch(2, rand=rand))
    with pytest.raises(ShapeError, match=r"12 query examples.*\(2, 21, 6, 6, 1\).*episode_sizes=None"):
        boml_ho.run(inner_fd, outer_fd, session=session)


def test_run_on_episodes_refuses_empty_requests(session, dataset):
    ex, _, accuracy = _maml(dataset)
    with pytest.raises(InvalidArgumentError, match="n_episodes and batch_size must be >= 1.*n_episodes=0"):
        boml.utils.run_on_episodes(session, [accuracy], ex, dataset.test, 0, rand=0)


def test_unknown_sizes_keep_the_graph_dynamic(session, dataset):
    ex, boml_ho, _ = _maml(dataset, episode_sizes=None)
    assert "EnsureShape" not in _function_op_types()
    session.run(tf.global_variables_initializer())
    other = boml.meta_synthetic(num_classes=3, examples_train=1, examples_test=7, image_shape=(6, 6, 1), seed=1)
    losses = boml_ho.run(*ex.feed_dicts(other.train.generate_batch(2, rand=0)), session=session)
    assert np.isfinite(losses["outer_loss"])
