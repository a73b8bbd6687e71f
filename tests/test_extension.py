"""Registries: a user's own strategies and networks are selected by name without editing boml."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors, extension
from boml.lower_iter import BOMLInnerGradTrad, inner_gradient
from boml.upper_iter import BOMLOuterGrad

import bilevel_toys as toys


@pytest.fixture
def registered():
    """Registers a damped lower strategy and a first-order upper strategy for one test."""

    class DampedTrad(BOMLInnerGradTrad):
        """Gradient steps on the inner objective scaled by 1/2."""

        outer_methods = ("Reverse",)  # joins the table with a built-in upper strategy

        def direction(self, dynamics, t, state, hyperparameters):
            grads, _ = inner_gradient(dynamics, dynamics.inner_objective, state)
            return [0.5 * g for g in grads]

    class FirstOrder(BOMLOuterGrad):
        """Only the direct gradient of F at the final state."""

        inner_methods = ("DampedTrad",)

        def task_hypergradients(self, dynamics):
            final = dynamics.unroll(differentiable=False).final
            return tf.gradients(dynamics.outer_value(final), dynamics.meta_locals), final

    extension.register_lower_iter("DampedTrad")(DampedTrad)
    extension.register_upper_iter("FirstOrder")(FirstOrder)
    yield
    extension.LOWER_ITERS.unregister("DampedTrad")
    extension.UPPER_ITERS.unregister("FirstOrder")


def test_user_strategies_selected_by_name(session, registered):
    d = toys.make_data(seed=11)
    T, lr = 4, 0.1
    _, _, pairs = toys.build_toy(d, inner_method="DampedTrad", outer_method="Reverse", T=T, lr=lr)
    session.run(tf.global_variables_initializer())
    hg = session.run([g for g, v in pairs if v.name.startswith("W")][0])
    # Halving the direction is SGD with half the step: compare with the numpy unrolled objective.
    reference = toys.central_difference(lambda W: toys.outer_value(toys.unroll(W, d, T, lr / 2)[0], W, d), d["W"])
    assert toys.relative_error(hg, reference) < 1e-6


def test_user_upper_strategy(session, registered):
    d = toys.make_data(seed=12)
    _, _, pairs = toys.build_toy(d, inner_method="DampedTrad", outer_method="FirstOrder", T=3, lr=0.1)
    session.run(tf.global_variables_initializer())
    hg = session.run([g for g, v in pairs if v.name.startswith("W")][0])
    y_T, _ = toys.unroll(d["W"], d, 3, 0.05)
    direct = toys.central_difference(lambda W: toys.outer_value(y_T, W, d), d["W"])
    assert toys.relative_error(hg, direct) < 1e-8


def test_unallowed_user_pair_is_refused(registered):
    with pytest.raises(errors.InvalidCombinationError, match="inner_methods"):
        boml.BOMLOptimizer("MetaFeat", "DampedTrad", "Implicit")


def test_user_network_selected_by_meta_model():
    calls = []

    def tiny_feature_net(_input, name="net", **kwargs):
        calls.append(kwargs)
        return boml.BOMLNetMetaFeatV1(_input, name=name, dim_hidden=(4,), **{
            k: v for k, v in kwargs.items() if k in ("use_t", "use_warp", "outer_method")})

    extension.register_network("SyntheticMetaFeatTiny")(tiny_feature_net)
    try:
        dataset = boml.meta_synthetic(num_classes=2, examples_train=1, examples_test=1, image_shape=(8, 8, 1),
                                      n_classes=(4, 2, 2), examples_per_class=4)
        ex = boml.BOMLExperiment(dataset)
        boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
        net = boml_ho.meta_learner(ex.x, dataset, meta_model="Tiny")
        assert calls and net.out.shape.as_list()[-1] == 4 * 4 * 4
    finally:
        extension.NETWORKS.unregister("SyntheticMetaFeatTiny")


def test_registry_rejects_duplicates_and_non_callables():
    registry = extension.Registry("thing")
    registry.register("a", lambda: 1)
    with pytest.raises(errors.InvalidArgumentError, match="already registered"):
        registry.register("a", lambda: 2)
    with pytest.raises(errors.InvalidArgumentError, match="callable"):
        registry.register("b", 3)
    registry.register("a", lambda: 3, overwrite=True)
    assert registry.get("a")() == 3 and "a" in registry and registry.names() == ["a"]


@pytest.mark.parametrize("options, sizes, vectorized", [
    ({"vectorize_tasks": False}, (2, 32), False),
    ({"vectorize_tasks": True, "parallel_iterations": 32}, (2, 32), True),  # all tasks at once
    ({}, (32, 64), True),  # the default: groups of 16 in a loop over the groups
], ids=["map", "vectorized", "default"])
def test_graph_does_not_grow_with_meta_batch_size(options, sizes, vectorized):
    counts = []
    for meta_batch in sizes:
        with tf.Graph().as_default() as graph:
            dataset = boml.meta_synthetic(num_classes=2, examples_train=1, examples_test=2, image_shape=(8, 8, 1),
                                          n_classes=(6, 2, 2), examples_per_class=6)
            ex = boml.BOMLExperiment(dataset, meta_batch_size=meta_batch)
            boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
            meta = boml_ho.meta_learner(ex.x, dataset, dim_hidden=(4, 4))
            ex.model = boml_ho.base_learner(ex.x, meta)
            inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), 0.1, 3, experiment=ex)
            boml_ho.ul_problem(boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_), 0.01, inner_grad,
                               **options)
            assert boml_ho.outergradient.task_maps[0]["vectorized"] is vectorized
            boml_ho.aggregate_all()
            # Constants are left out: the vectorized conversion shares equal small constants, and a
            # group size that equals some other shape or axis value shares one more of them.
            counts.append(len([op for op in graph.get_operations() if op.type != "Const"]))
    assert counts[0] == counts[1]


def test_meta_param_none_uses_the_collection(session):
    d = toys.make_data(seed=13)
    X, b = tf.constant(d["X"]), tf.constant(d["b"])
    W = extension.get_outerparameter("W", d["W"])
    y = tf.get_variable("y", initializer=tf.zeros([d["k"]], tf.float64), trainable=False)
    loss = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(X, W), y) - b)) + tf.reduce_sum(y * y)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    inner = boml_ho.ll_problem(loss, 0.1, 2, var_list=[y])
    boml_ho.ul_problem(loss, 0.01, inner)  # meta_param=None: the METAPARAMETERS collection
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    before = session.run(W)
    boml_ho.run(session=session)
    assert not np.allclose(before, session.run(W))
