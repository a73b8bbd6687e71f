"""Simple (MAML) as one tf.while_loop above while_loop_threshold: same hypergradients as the unrolled graph."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import bilevel_toys as toys
import sessions
import boml
from boml.errors import InvalidArgumentError


def _hypergradients(T, lr=0.3, seed=0, threshold=None, **ll):
    """The toy's hypergradients, built in a fresh graph; ``threshold=1`` forces the while_loop."""
    d = toys.make_maml_data(seed=seed)
    graph = tf.Graph()
    with graph.as_default():
        options = {} if threshold is None else {"while_loop_threshold": threshold}
        _, pairs = toys.build_maml_toy(d, T=T, lr=lr, **options, **ll)
        loops = [op for op in graph.get_operations() if op.type in ("While", "StatelessWhile")]
        with sessions.numeric_session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            grads = {v.name.split(":")[0].split("/")[-1]: session.run(g) for g, v in pairs}
    return d, grads, len(loops), len(graph.get_operations())


@pytest.mark.parametrize("first_order", [False, True])
def test_while_loop_equals_unrolled_and_finite_differences(first_order):
    T, lr = 4, 0.3
    d, looped, n_loops, _ = _hypergradients(T, lr, threshold=1, first_order=first_order)
    _, unrolled, n_unrolled_loops, _ = _hypergradients(T, lr, threshold=T + 1, first_order=first_order)
    assert n_loops >= 1 and n_unrolled_loops == 0
    assert toys.relative_error(looped["x"], unrolled["x"]) < 1e-12
    if first_order:
        theta_T, _ = toys.maml_unroll(d["x"], d, T, lr)
        expected = toys.maml_grad(theta_T, d["Xq"], d["bq"])
        assert toys.relative_error(looped["x"], expected) < 1e-10
    else:
        def objective(x):
            return toys.maml_loss(toys.maml_unroll(x, d, T, lr)[0], d["Xq"], d["bq"])

        assert toys.relative_error(looped["x"], toys.central_difference(objective, d["x"])) < 1e-6


def test_while_loop_meta_sgd_step_sizes_equal_finite_differences():
    T, lr = 3, 0.25
    d, looped, _, _ = _hypergradients(T, lr, seed=2, threshold=1, learn_lr=True, lr_granularity="element")
    _, unrolled, _, _ = _hypergradients(T, lr, seed=2, threshold=T + 1, learn_lr=True, lr_granularity="element")
    lr0 = np.full(len(d["x"]), lr)

    def objective(rates):
        return toys.maml_loss(toys.maml_unroll(d["x"], d, T, rates)[0], d["Xq"], d["bq"])

    assert toys.relative_error(looped["lr_0"], unrolled["lr_0"]) < 1e-12
    assert toys.relative_error(looped["lr_0"], toys.central_difference(objective, lr0)) < 1e-6


def test_default_threshold_unrolls_small_T_and_loops_large_T():
    *_, loops_small, ops_small = _hypergradients(2)
    *_, loops_large, ops_large = _hypergradients(40)
    *_, _, ops_larger = _hypergradients(80)
    assert loops_small == 0 and loops_large >= 1
    assert ops_large == ops_larger  # the graph does not grow with T


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_bad_threshold_is_refused(value):
    d = toys.make_maml_data()
    with pytest.raises(InvalidArgumentError, match="while_loop_threshold"):
        toys.build_maml_toy(d, T=2, while_loop_threshold=value)


def test_batched_conv_network_while_loop_matches_unrolled():
    """Tasks mapped with tf.map_fn, each inner loop a while_loop: float32 agreement with the unrolled graph."""
    dataset = boml.meta_synthetic(num_classes=2, examples_train=1, examples_test=2, image_shape=(8, 8, 1),
                                  n_classes=(6, 2, 2), examples_per_class=6)
    episodes = dataset.train.generate_batch(2, rand=3)
    results = []
    for threshold in (1, 10):
        graph = tf.Graph()
        with graph.as_default():
            tf.set_random_seed(1)
            ex = boml.BOMLExperiment(dataset, meta_batch_size=2)
            boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
            meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", dim_hidden=(4, 4))
            ex.model = boml_ho.base_learner(ex.x, meta_learner)
            outer = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
            inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), learning_rate=0.3, T=3,
                                            experiment=ex, var_list=ex.model.var_list,
                                            while_loop_threshold=threshold)
            boml_ho.ul_problem(outer, 0.01, inner_grad,
                               meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS))
            pairs = boml_ho.outergradient.outer_grads_and_vars()
            with sessions.numeric_session(graph=graph) as session:
                session.run(tf.global_variables_initializer())
                feed = {**ex.feed_dicts(episodes)[0], **ex.feed_dicts(episodes)[1]}
                results.append(session.run([g for g, _ in pairs], feed))
    for looped, unrolled in zip(*results):
        np.testing.assert_allclose(looped, unrolled, rtol=1e-4, atol=1e-6)
    assert max(np.max(np.abs(g)) for g in results[0]) > 1e-3
