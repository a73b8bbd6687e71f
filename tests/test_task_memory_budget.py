"""The task map's memory budget: fewer concurrent tasks for big task bodies, the same meta-gradient."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml.errors import InvalidArgumentError
from boml.task import activation_bytes, concurrent_tasks

GB = 2 ** 30


@pytest.mark.parametrize("limit,per_task,budget,expected", [
    (16, GB, 8.0, 8), (16, 3 * GB, 8.0, 2), (16, 100 * GB, 8.0, 1), (4, GB // 10, 8.0, 4), (16, 100 * GB, None, 16),
])
def test_concurrent_tasks(limit, per_task, budget, expected):
    assert concurrent_tasks(limit, per_task, budget) == expected


def test_activation_bytes_counts_static_floating_outputs(fresh_graph):
    tf.placeholder(tf.float32, [3, 4])                  # 48 bytes
    tf.zeros([2], tf.float64)                           # 16 bytes
    tf.placeholder(tf.float32, [None, 4])               # unknown size: not counted
    tf.constant([1, 2, 3], tf.int32)                    # not floating: not counted
    assert activation_bytes(fresh_graph) == 64


def _meta_gradients(budget):
    """One batched MAML meta-gradient (4 tasks, 8x8 synthetic) in the per-task map, parallel_iterations=4, ``budget``.

    (The vectorized map's groups under a budget are tested in tests/test_vectorize.py.)
    """
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1)
        dataset = boml.meta_synthetic(num_classes=3, examples_train=1, examples_test=2, image_shape=(8, 8, 1),
                                      seed=0)
        ex = boml.BOMLExperiment(dataset, meta_batch_size=4)
        boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
        meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", dim_hidden=(2, 2))
        ex.model = boml_ho.base_learner(ex.x, meta_learner)
        inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), learning_rate=0.1, T=2,
                                        experiment=ex, var_list=ex.model.var_list)
        outer = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
        boml_ho.ul_problem(outer, 1e-3, inner_grad, parallel_iterations=4, task_memory_budget=budget,
                           vectorize_tasks=False, meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS))
        grads = [g for g, _ in boml_ho.outergradient.outer_grads_and_vars()]
        task_map = boml_ho.outergradient.task_maps[0]
        loops = [op.get_attr("parallel_iterations") for op in graph.get_operations()
                 if op.type in ("While", "StatelessWhile") and "tasks" in op.name]
        feed = {}
        for part in ex.feed_dicts(dataset.train.generate_batch(4, rand=np.random.RandomState(0))):
            feed.update(part)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            values = session.run(grads, feed)
    return task_map, loops, values


def test_a_small_budget_runs_one_task_at_a_time_with_the_same_meta_gradient():
    alone, alone_loops, alone_values = _meta_gradients(1e-9)
    together, together_loops, together_values = _meta_gradients(None)
    assert alone["concurrent_tasks"] == 1 and alone_loops == [1]
    assert together["concurrent_tasks"] == 4 and together_loops == [4]
    assert alone["activation_bytes"] == together["activation_bytes"] > 0
    assert any(np.abs(v).max() > 0 for v in together_values)
    for a, b in zip(alone_values, together_values):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), "8", True])
def test_bad_budgets_are_refused(fresh_graph, budget):
    from boml.upper_iter import BOMLOuterGradSimple

    with pytest.raises(InvalidArgumentError, match="task_memory_budget must be a positive number of GB or None"):
        BOMLOuterGradSimple(task_memory_budget=budget)
