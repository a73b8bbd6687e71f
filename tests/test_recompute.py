"""Gradient checkpointing of the inner trajectory (``recompute_every``, Reverse and Simple).

The checkpointed reverse pass recomputes segments of the trajectory and chains their adjoints by hand
(``TaskDynamics.reverse_hypergradients``), a different computation from TensorFlow's reverse pass through
the whole loop: both are checked against central finite differences of the numpy unrolled objective and
against each other, in float64, with segment lengths that do not divide T.
"""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError, UnknownOptionError

import bilevel_toys as toys
import sessions


def _hypergradients(build):
    """``{parameter name: hypergradient}`` of the pairs ``build()`` returns, in a graph of its own."""
    with tf.Graph().as_default():
        pairs = build()
        with sessions.numeric_session() as session:
            session.run(tf.global_variables_initializer())
            return {param.op.name: session.run(grad) for grad, param in pairs}


def _start_data():
    d = toys.make_data(seed=4)
    d["y0"] = np.random.RandomState(1).randn(d["k"])
    return d


@pytest.mark.parametrize("optimizer, every", [("SGD", 1), ("Momentum", 3), ("Adam", "sqrt")])
def test_checkpointed_reverse_equals_finite_differences_and_the_plain_reverse_pass(optimizer, every):
    d, T, lr = _start_data(), 7, 0.05

    def build(recompute):
        return lambda: toys.build_toy_with_start(d, T=T, lr=lr, optimizer=optimizer, learn_lr=True,
                                                 recompute_every=recompute)[2]

    checkpointed, plain = _hypergradients(build(every)), _hypergradients(build(None))

    def objective(W, y0, rate=lr):
        y, _ = toys.unroll(W, d, T, rate, optimizer, y0=y0)
        return toys.outer_value(y, W, d)

    assert toys.relative_error(checkpointed["W"], toys.central_difference(lambda W: objective(W, d["y0"]), d["W"])) \
        < 1e-6
    assert toys.relative_error(checkpointed["y_start"],
                               toys.central_difference(lambda y: objective(d["W"], y), d["y0"])) < 1e-6
    rate = [name for name in checkpointed if name not in ("W", "y_start")]
    assert len(rate) == 1
    fd_rate = toys.central_difference(lambda r: objective(d["W"], d["y0"], float(r)), np.asarray(lr))
    assert toys.relative_error(checkpointed[rate[0]], fd_rate) < 1e-6
    assert checkpointed.keys() == plain.keys()
    for name, value in plain.items():
        assert toys.relative_error(checkpointed[name], value) < 1e-12, name


@pytest.mark.parametrize("K, every", [(3, 2), (5, "sqrt"), (0, 2)])
def test_checkpointed_trhg_back_propagates_through_the_last_k_steps_only(K, every):
    d, T, lr = toys.make_data(seed=1), 7, 0.1
    checkpointed = _hypergradients(lambda: toys.build_toy(d, T=T, lr=lr, truncate_iter=K, recompute_every=every)[2])
    frozen = toys.unroll(d["W"], d, T - K, lr)

    def objective(W):
        y, _ = toys.unroll(W, d, T, lr, start=frozen, start_step=T - K + 1)
        return toys.outer_value(y, W, d)

    assert toys.relative_error(checkpointed["W"], toys.central_difference(objective, d["W"])) < 1e-6


@pytest.mark.parametrize("T, every", [(5, 2), (20, "sqrt"), (20, 6)], ids=["unrolled", "while-sqrt", "while-6"])
def test_checkpointed_maml_equals_finite_differences_and_the_plain_reverse_pass(T, every):
    """MAML with learned per-element step sizes (Meta-SGD), unrolled (T=5) and as while loops (T=20)."""
    d, lr = toys.make_maml_data(seed=2), 0.1

    def build(recompute):
        return lambda: toys.build_maml_toy(d, T=T, lr=lr, learn_lr=True,
                                           ul_options={"recompute_every": recompute})[1]

    checkpointed, plain = _hypergradients(build(every)), _hypergradients(build(None))

    def objective(x):
        theta, _ = toys.maml_unroll(x, d, T, lr)
        return toys.maml_loss(theta, d["Xq"], d["bq"])

    assert toys.relative_error(checkpointed["x"], toys.central_difference(objective, d["x"])) < 1e-6
    assert checkpointed.keys() == plain.keys() and len(plain) == 2
    for name, value in plain.items():
        assert toys.relative_error(checkpointed[name], value) < 1e-12, name


def _functions():
    return {f.signature.name: f for f in tf.get_default_graph().as_graph_def().library.function}


def _ancestors(function, name):
    """Names of the nodes and input arguments ``name`` depends on in a FunctionDef (data and control inputs)."""
    nodes = {node.name: node for node in function.node_def}
    seen, stack = set(), [name]
    while stack:
        for source in nodes[stack.pop()].input:
            parent = source.lstrip("^").split(":")[0]
            if parent not in seen:
                seen.add(parent)
                if parent in nodes:
                    stack.append(parent)
    return seen


def test_the_recomputed_segments_run_one_at_a_time_after_the_adjoint_of_the_next_one():
    """The backward loop over the segments runs one iteration at a time, and its segment's recomputation (a
    loop inside its body) depends on the incoming adjoint: the segments' intermediates are never alive
    together, which is the memory bound (without the ordering a segment could be recomputed at once)."""
    d = toys.make_data(seed=3)
    toys.build_toy(d, T=9, lr=0.1, recompute_every=3)
    graph = tf.get_default_graph()
    backward = [op for op in graph.get_operations() if op.type in ("While", "StatelessWhile")
                and op.name.endswith("recompute_segments")]
    assert len(backward) == 1 and backward[0].get_attr("parallel_iterations") == 1
    body = _functions()[backward[0].get_attr("body").name]
    arguments = [arg.name for arg in body.signature.input_arg]
    adjoint = arguments[3:4]  # after the loop counter, maximum_iterations and the segment index: y's adjoint
    recomputation = [node.name for node in body.node_def if node.op in ("While", "StatelessWhile")
                     and "lower_dynamics" in node.name and "_grad" not in node.name]
    assert len(recomputation) == 1
    assert set(adjoint) <= _ancestors(body, recomputation[0])


def _op_count():
    graph_def = tf.get_default_graph().as_graph_def()
    return len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)


def test_the_checkpointed_graph_does_not_grow_with_t():
    counts = []
    for T in (20, 400):
        with tf.Graph().as_default():
            toys.build_maml_toy(toys.make_maml_data(), T=T, ul_options={"recompute_every": "sqrt"})
            counts.append(_op_count())
    assert counts[0] == counts[1]


@pytest.mark.parametrize("bad", [0, -2, True, 2.5, "half"])
def test_recompute_every_must_be_a_positive_length_or_sqrt(fresh_graph, bad):
    with pytest.raises(InvalidArgumentError, match="recompute_every must be None"):
        toys.build_toy(toys.make_data(), recompute_every=bad)


def test_recompute_every_is_refused_by_strategies_without_a_trajectory_and_with_warp_layers(fresh_graph):
    with pytest.raises(UnknownOptionError, match="recompute_every"):
        toys.build_toy(toys.make_data(), outer_method="Implicit", recompute_every=2)
    with pytest.raises(InvalidArgumentError, match="warp layers"):
        from boml.upper_iter import SimpleOptions

        SimpleOptions.from_options("Simple", {"use_warp": True, "recompute_every": 2})
