"""The vectorized task map (``boml.vectorize``, ``vectorize_tasks=True``) against the per-task ``tf.map_fn``.

The two formulations run different kernels (grouped convolutions and batch norm
over tasks x channels, against one small kernel per task), so their agreement to
float64 rounding is a check of the vectorization rules, not an identity.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import bilevel_toys as toys
import sessions
import boml
from boml.errors import InvalidArgumentError, ShapeError, VectorizationWarning
from boml.vectorize import VectorizationError, vectorized_group, vectorized_tasks

TASKS = 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _convolution_body(shared_images):
    """Per-task filters; first and second derivatives through the convolution (all three kernels)."""

    def body(elements):
        images, filters, weights = elements
        if shared_images is not None:
            images = tf.identity(shared_images)
        out = tf.nn.conv2d(images, filters, [1, 2, 2, 1], "SAME")
        loss = tf.reduce_sum(tf.tanh(out) * weights)
        d_images, d_filters = tf.gradients(loss, [images, filters])
        curvature = tf.reduce_sum(tf.square(d_filters)) + tf.reduce_sum(tf.square(d_images))
        return [loss, d_images, d_filters] + tf.gradients(curvature, [filters, images])

    return body


def _convolution_case(dtype, shared, tasks=TASKS):
    rand = np.random.RandomState(0)
    values = [rand.randn(TASKS, 2, 7, 7, 2), rand.randn(TASKS, 3, 3, 2, 5), rand.randn(TASKS, 2, 4, 4, 5)]
    elements = [tf.placeholder(dtype, [tasks] + list(v.shape[1:])) for v in values]
    feed = dict(zip(elements, values))
    shared_images = None
    if shared:
        shared_images = tf.constant(rand.randn(2, 7, 7, 2), dtype)
        feed[elements[0]] = np.zeros_like(values[0])
    return elements, feed, _convolution_body(shared_images)


@pytest.mark.parametrize("dtype, rtol", [(tf.float64, 1e-12), (tf.float32, 1e-4)])
@pytest.mark.parametrize("shared", [False, True], ids=["per-task images", "shared images"])
def test_per_task_filter_convolutions_and_their_derivatives_match_the_map(fresh_graph, dtype, rtol, shared):
    elements, feed, body = _convolution_case(dtype, shared)
    vectorized = vectorized_tasks(body, elements, TASKS)
    mapped = tf.map_fn(body, elements, fn_output_signature=[dtype] * 5)
    with sessions.numeric_session() as session:
        got, expected = session.run([vectorized, mapped], feed)
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    if dtype == tf.float32:  # one grouped kernel over the tasks, not one per task
        grouped = [op for op in fresh_graph.get_operations() if op.type == "Conv2D"
                   and op.inputs[0].shape[-1] == TASKS * 2 and op.inputs[1].shape[-1] == TASKS * 5]
        assert grouped


def _side_by_side_chain(dtype):
    """Every operand form the side-by-side rules take, after a grouped convolution, and their derivatives."""

    def body(elements):
        images, filters, bias, scale = elements
        shared = tf.constant(np.random.RandomState(1).randn(2, 4, 4, 5), dtype)
        out = tf.nn.conv2d(images, filters, [1, 2, 2, 1], "SAME")  # [2, 4, 4, 5] per task
        out = tf.nn.bias_add(out, bias) * tf.constant([1.0, 2.0, 0.5, 1.5, 1.0], dtype)  # per-channel vectors
        out = tf.tanh(out * scale[0] - 0.3 * shared)  # a per-task scalar, an unstacked tensor of the same shape
        if dtype == tf.float32:  # the fused kernels have no float64 version
            normed, _, _ = tf.nn.fused_batch_norm(out, scale + 1.0, bias, epsilon=1e-3, is_training=True)
            shared_scale = tf.constant([1.0, 0.5, 2.0, 1.0, 1.5], dtype)  # per-channel operands of every task
            normed += tf.nn.fused_batch_norm(out, shared_scale, 0.1 * shared_scale, epsilon=1e-3, is_training=True)[0]
        else:
            mean, variance = tf.nn.moments(out, [0, 1, 2])
            normed = tf.nn.batch_normalization(out, mean, variance, bias, scale + 1.0, 1e-3)
        centred = normed - tf.reduce_mean(normed, [0, 1, 2], keepdims=True)
        loss = tf.reduce_sum(tf.square(tf.nn.relu(centred))) + tf.reduce_mean(tf.reduce_sum(out, [0, 1, 2]))
        loss += tf.reduce_mean(tf.square(out), keepdims=True)[0, 0, 0, 0]
        first = tf.gradients(loss, [filters, bias, scale])
        curvature = tf.add_n([tf.reduce_sum(tf.square(g)) for g in first])
        return [loss] + first + tf.gradients(curvature, [filters, images])

    return body


def _reachable(outputs, op_type):
    """The ops of ``op_type`` that computing ``outputs`` runs."""
    seen, pending, found = set(), [t.op for t in outputs], []
    while pending:
        op = pending.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        found += [op] if op.type == op_type else []
        pending.extend(t.op for t in op.inputs)
        pending.extend(op.control_inputs)
    return found


def _side_by_side_chain_elements(dtype):
    rand = np.random.RandomState(2)
    values = [rand.randn(TASKS, 2, 7, 7, 2), rand.randn(TASKS, 3, 3, 2, 5), rand.randn(TASKS, 5), rand.randn(TASKS, 5)]
    return [tf.constant(v, dtype) for v in values]


@pytest.mark.parametrize("dtype, rtol", [(tf.float64, 1e-11), (tf.float32, 1e-4)])
def test_side_by_side_chains_of_elementwise_ops_reductions_and_batch_norm_match_the_map(fresh_graph, dtype, rtol):
    elements = _side_by_side_chain_elements(dtype)
    body = _side_by_side_chain(dtype)
    vectorized = vectorized_tasks(body, elements, TASKS)
    mapped = tf.map_fn(body, elements, fn_output_signature=[dtype] * 6)
    with sessions.numeric_session() as session:
        got, expected = session.run([vectorized, mapped])
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    # Transposes where tensors enter (images, filters) and leave (three rank-5 results) the side-by-side
    # layout, plus a few gradient ops left to pfor (tiles with run-time multiples): 9-12, against 28-36
    # with every rule transposing its own operands.
    assert len([op for op in _reachable(vectorized, "Transpose") if op.inputs[0].shape.rank == 5]) <= 12


def test_only_the_tasks_first_views_something_reads_are_built(fresh_graph):
    """Each side-by-side result's tasks-first view is a stand-in until the conversion ends; only read ones are built."""
    vectorized = vectorized_tasks(_side_by_side_chain(tf.float32), _side_by_side_chain_elements(tf.float32), TASKS)
    outputs = {t.ref() for t in vectorized}
    operations = fresh_graph.get_operations()
    views = [op for op in operations if op.type == "Transpose" and op.inputs[0].shape.rank == 5]
    unread = [op.name for op in views if not op.outputs[0].consumers() and op.outputs[0].ref() not in outputs]
    assert views and not unread
    stand_ins = [op for op in operations if op.type == "PlaceholderWithDefault" and "deferred_tasks_first" in op.name]
    assert stand_ins and not any(op.outputs[0].consumers() for op in stand_ins)


@pytest.mark.parametrize("tasks, limit, expected", [(32, 16, 16), (30, 16, 15), (31, 16, 1), (4, None, None),
                                                    (4, 4, None), (4, 9, None)])
def test_the_group_is_the_largest_divisor_of_the_tasks_up_to_parallel_iterations(tasks, limit, expected):
    assert vectorized_group(tasks, limit) == expected


def test_groups_of_tasks_one_after_the_other_give_the_same_numbers(fresh_graph):
    rand = np.random.RandomState(4)
    values = [rand.randn(4, 2, 7, 7, 2), rand.randn(4, 3, 3, 2, 5), rand.randn(4, 2, 4, 4, 5)]
    elements = [tf.constant(v) for v in values]
    body = _convolution_body(None)
    grouped = vectorized_tasks(body, elements, 4, group_size=2)
    mapped = tf.map_fn(body, elements, fn_output_signature=[tf.float64] * 5)
    assert any(op.type in ("While", "StatelessWhile") and "task_groups" in op.name
               for op in fresh_graph.get_operations())
    with sessions.numeric_session() as session:
        for a, b in zip(*session.run([grouped, mapped])):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    with pytest.raises(VectorizationError, match="groups of 3"):
        vectorized_tasks(body, elements, 4, group_size=3)


def _bare_constant_values(operations):
    return [(op.get_attr("dtype"), op.get_attr("value").SerializeToString(deterministic=True))
            for op in operations if op.type == "Const" and not op.control_inputs]


def test_the_traced_body_and_its_conversion_create_each_small_constant_once(fresh_graph):
    elements, _, body = _convolution_case(tf.float32, False)
    before = len(fresh_graph.get_operations())
    vectorized_tasks(body, elements, TASKS)
    values = _bare_constant_values(fresh_graph.get_operations()[before:])
    assert len(values) > 10 and len(set(values)) == len(values)


def test_shared_constants_are_only_bare_small_constants_of_one_graph_within_the_block(fresh_graph):
    from boml.vectorize import _shared_constants

    with _shared_constants():
        first = tf.constant([1, 2])
        assert tf.constant([1, 2]) is first
        assert tf.constant([1, 2], tf.int64) is not first and tf.constant([1.0, 2.0]) is not first
        with tf.control_dependencies([first.op]):
            ordered = tf.constant([1, 2])
        assert ordered is not first and ordered.op.control_inputs == [first.op]
        assert tf.constant(np.zeros(1000)) is not tf.constant(np.zeros(1000))
        with tf.Graph().as_default():
            assert tf.constant([1, 2]).graph is not first.graph
    assert tf.constant([1, 2]) is not first


@pytest.mark.parametrize("dtype, rtol", [(tf.float32, 1e-4), (tf.float64, 1e-12)], ids=["float32", "float64"])
def test_a_task_count_known_at_run_time_only_is_vectorized(fresh_graph, dtype, rtol):
    """float32: grouped kernels of a dynamic group count; float64: a map over the groups (no grouped CPU kernel)."""
    elements, feed, body = _convolution_case(dtype, False, tasks=None)
    outputs = vectorized_tasks(body, elements, tf.shape(elements[0])[0])
    mapped = tf.map_fn(body, elements, fn_output_signature=[dtype] * 5)
    with sessions.numeric_session() as session:
        for a, b in zip(*session.run([outputs, mapped], feed)):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


def test_the_trace_stays_out_of_the_graph_and_keeps_the_static_shapes_the_body_reads_from_it(fresh_graph):
    """Axes computed in the outer graph reach the trace as values: the outputs keep their static shapes."""
    rand = np.random.RandomState(5)
    values = rand.randn(4, 3, 6)
    elements = [tf.constant(values)]
    axes = tf.range(tf.rank(elements[0]) - 2)  # [0], computed outside the body

    def body(per_task):
        (x,) = per_task
        pooled = tf.reduce_mean(tf.tanh(x), axes)  # [6] only when the axes are known
        return [pooled, tf.gradients(tf.reduce_sum(tf.square(pooled)), x)[0]]

    for group_size in (None, 2):
        before = len(fresh_graph.get_operations())
        outputs = vectorized_tasks(body, elements, 4, group_size=group_size)
        added = fresh_graph.get_operations()[before:]
        assert not [op for op in added if op.type == "PlaceholderWithDefault"]  # the trace's task index
        assert outputs[0].shape.as_list() == [4, 6] and outputs[1].shape.as_list() == [4, 3, 6]
        expected = np.tanh(values).mean(1)
        with sessions.numeric_session() as session:
            pooled, gradient = session.run(outputs)
        np.testing.assert_allclose(pooled, expected, rtol=1e-12)
        np.testing.assert_allclose(gradient, 2 * expected[:, None, :] * (1 - np.tanh(values) ** 2) / 3, rtol=1e-12)


def test_a_body_ordered_after_an_outer_operation_stays_ordered_after_it(fresh_graph):
    counter = tf.Variable(0.0, dtype=tf.float64)
    increment = counter.assign_add(1.0)

    def body(per_task):
        with tf.control_dependencies([increment]):
            return [2.0 * per_task[0]]

    for group_size in (None, 2):
        outputs = vectorized_tasks(body, [tf.constant(np.arange(4.0))], 4, group_size=group_size)
        with sessions.numeric_session() as session:
            session.run(counter.initializer)
            np.testing.assert_array_equal(session.run(outputs[0]), 2.0 * np.arange(4.0))
            assert session.run(counter) == 1.0


def test_errors_of_the_body_itself_are_not_taken_for_vectorization_failures(fresh_graph):
    def body(elements):
        raise InvalidArgumentError("the body's own error")

    with pytest.raises(InvalidArgumentError, match="the body's own error"):
        vectorized_tasks(body, [tf.zeros([TASKS, 2])], TASKS)


@pytest.fixture
def dataset():
    return boml.meta_synthetic(num_classes=3, examples_train=2, examples_test=4, image_shape=(6, 6, 1), seed=0)


def _meta_gradients(dataset, vectorize, dtype=tf.float64, ll_flags=None, budget=None, T=2, run=True,
                    parallel_iterations=16, tasks=TASKS, graph=None, ul_flags=None, network=None):
    """MAML-family meta-gradients of a conv-4 with batch norm (float64), ``tasks`` tasks, ``T`` inner steps."""
    graph = graph or tf.Graph()
    with graph.as_default():
        tf.set_random_seed(3)
        ex = boml.BOMLExperiment(dataset, dtype=dtype, meta_batch_size=tasks)
        boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
        meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1",
                                           **{"dim_hidden": (4, 4), **(network or {})})
        ex.model = boml_ho.base_learner(ex.x, meta_learner)
        inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), learning_rate=0.3, T=T,
                                        experiment=ex, var_list=ex.model.var_list, **(ll_flags or {}))
        outer = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
        boml_ho.ul_problem(outer, 1e-3, inner_grad, vectorize_tasks=vectorize, task_memory_budget=budget,
                           parallel_iterations=parallel_iterations, **(ul_flags or {}),
                           meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS))
        pairs = boml_ho.outergradient.outer_grads_and_vars()
        if not run:
            return boml_ho.outergradient.task_maps[0], None
        feed = {}
        for part in ex.feed_dicts(dataset.train.generate_batch(tasks, rand=np.random.RandomState(0))):
            feed.update(part)
        with sessions.numeric_session() as session:
            session.run(tf.global_variables_initializer())
            values = {v.name: session.run(g, feed) for g, v in pairs}
    return boml_ho.outergradient.task_maps[0], values


@pytest.mark.parametrize("ll_flags, T", [({}, 2), ({"first_order": True}, 2), ({"learn_lr": True}, 1)],
                         ids=["MAML", "FMAML", "Meta-SGD"])
def test_maml_meta_gradients_of_a_batch_norm_conv_net_equal_the_map_in_float64(dataset, ll_flags, T):
    vector_map, vectorized = _meta_gradients(dataset, True, ll_flags=ll_flags, T=T)
    task_map, mapped = _meta_gradients(dataset, False, ll_flags=ll_flags, T=T)
    assert vector_map["vectorized"] is True and vector_map["concurrent_tasks"] == TASKS
    assert task_map["vectorized"] is False
    assert vectorized.keys() == mapped.keys() and len(mapped) >= 8
    scale = max(np.abs(v).max() for v in mapped.values())
    assert scale > 0
    for name, value in mapped.items():
        np.testing.assert_allclose(vectorized[name], value, rtol=1e-9, atol=1e-12 * scale, err_msg=name)


def test_recomputed_segments_of_a_vectorized_batch_norm_conv_net_give_the_plain_meta_gradients(dataset):
    """Gradient checkpointing (T=2 in segments of 1) inside the vectorized task body, float64."""
    vector_map, checkpointed = _meta_gradients(dataset, True, ul_flags={"recompute_every": 1})
    _, plain = _meta_gradients(dataset, True)
    assert vector_map["vectorized"] is True
    assert checkpointed.keys() == plain.keys() and len(plain) >= 8
    scale = max(np.abs(v).max() for v in plain.values())
    for name, value in plain.items():
        np.testing.assert_allclose(checkpointed[name], value, rtol=1e-9, atol=1e-12 * scale, err_msg=name)


def test_maml_meta_gradients_through_an_inner_while_loop_vectorize_and_agree_with_the_map_in_float32(dataset):
    """T=2 from while_loop_threshold=1, a tanh conv block with fused batch norm: pfor converts the while loop and
    its gradient loop, whose accumulators are TensorLists (``ZerosLike`` of one needs ``boml.vectorize_rules``'s
    rule; without it this body keeps the map). Agreement to float32 rounding (float64 has no fused batch norm,
    and its gradient loop does not take the ``ZerosLike``: it converts without the rule)."""
    looped = {"while_loop_threshold": 1}
    network = {"dim_hidden": (2,), "activation": tf.tanh}
    vector_map, vectorized = _meta_gradients(dataset, True, tf.float32, looped, tasks=2, network=network)
    task_map, mapped = _meta_gradients(dataset, False, tf.float32, looped, tasks=2, network=network)
    assert vector_map["vectorized"] is True, vector_map.get("vectorization_error")
    assert task_map["vectorized"] is False
    assert vectorized.keys() == mapped.keys() and len(mapped) >= 4
    scale = max(np.abs(v).max() for v in mapped.values())
    assert scale > 1e-3
    for name, value in mapped.items():
        np.testing.assert_allclose(vectorized[name], value, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def test_auto_leaves_a_body_with_a_while_loop_to_the_map_quietly(dataset):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", VectorizationWarning)
        task_map, _ = _meta_gradients(dataset, "auto", ll_flags={"while_loop_threshold": 2}, T=3, run=False)
        unrolled_map, _ = _meta_gradients(dataset, "auto", ll_flags={"while_loop_threshold": 4}, T=3, run=False)
        rhg_map, _ = _tanh_meta_feat(dataset, "auto")  # Trad's inner loop is a while loop
    assert task_map["vectorized"] is False and rhg_map["vectorized"] is False
    assert "tf.while_loop" in task_map["vectorization_error"] and "vectorize_tasks=True" in task_map[
        "vectorization_error"]
    assert unrolled_map["vectorized"] is True


def _budget_for(tasks_at_once, per_task_bytes):
    """A task_memory_budget (GB) that admits ``tasks_at_once`` tasks of ``per_task_bytes``, and not one more."""
    return (tasks_at_once + 0.5) * per_task_bytes / 2 ** 30


def test_a_memory_budget_chooses_the_vectorized_group_and_the_numbers_stay(dataset):
    """4 tasks, a budget for 3 (which does not divide 4): groups of 2, the same meta-gradients."""
    per_task = _meta_gradients(dataset, True, run=False, tasks=4)[0]["activation_bytes"]  # all 4 at once
    task_map, mapped = _meta_gradients(dataset, False, tasks=4)
    vector_map, vectorized = _meta_gradients(dataset, True, budget=_budget_for(3, per_task), tasks=4)
    assert vector_map["vectorized"] is True and vector_map["concurrent_tasks"] == 2
    for name, value in mapped.items():
        np.testing.assert_allclose(vectorized[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


def test_a_budget_below_two_tasks_keeps_the_per_task_map_and_says_so(dataset):
    per_task = _meta_gradients(dataset, True, run=False)[0]["activation_bytes"]
    budget = _budget_for(1, per_task)
    with pytest.warns(VectorizationWarning, match=f"task_memory_budget={budget} allows no two tasks"):
        task_map, _ = _meta_gradients(dataset, True, budget=budget, run=False)
    assert task_map["vectorized"] is False
    assert f"{per_task / 2 ** 30:.2f} GB" in task_map["vectorization_error"]


def test_auto_vectorizes_small_tasks_and_quietly_maps_large_ones(dataset, monkeypatch):
    import warnings

    import boml.task

    with warnings.catch_warnings():
        warnings.simplefilter("error", VectorizationWarning)
        task_map, _ = _meta_gradients(dataset, "auto", run=False)
        assert task_map["vectorized"] is True and task_map["concurrent_tasks"] == TASKS
        monkeypatch.setattr(boml.task, "AUTO_VECTORIZE_GB", 2.5 * task_map["activation_bytes"] / 2 ** 30)
        task_map, _ = _meta_gradients(dataset, "auto", run=False, tasks=4)
        assert task_map["vectorized"] is True and task_map["concurrent_tasks"] == 2
        task_map, _ = _meta_gradients(dataset, "auto", run=False)  # 3 tasks: no group of 2
    assert task_map["vectorized"] is False and task_map["concurrent_tasks"] == 16
    assert "AUTO_VECTORIZE_GB" in task_map["vectorization_error"]


def test_without_onednn_auto_keeps_the_map_for_convolutions_and_says_why(dataset, monkeypatch):
    import boml.task

    monkeypatch.setattr(boml.task, "grouped_derivatives_available", lambda: False)
    task_map, _ = _meta_gradients(dataset, "auto", run=False)
    assert task_map["vectorized"] is False and "oneDNN" in task_map["vectorization_error"]


def test_without_onednn_the_vectorized_derivatives_run_one_kernel_per_task_and_match_the_map(tmp_path):
    """Without oneDNN the CPU has no grouped convolution derivative: it fails at run time unless split."""
    script = tmp_path / "no_onednn.py"
    script.write_text(
        "import numpy as np, tensorflow.compat.v1 as tf\n"
        "from boml.vectorize import vectorized_tasks\n"
        "from boml.vectorize_rules import grouped_derivatives_available\n"
        "tf.disable_eager_execution()\n"
        "assert not grouped_derivatives_available()\n"
        "rand = np.random.RandomState(0)\n"
        "elements = [tf.constant(rand.randn(3, 2, 7, 7, 2), tf.float32),\n"
        "            tf.constant(rand.randn(3, 3, 3, 2, 5), tf.float32)]\n"
        "def body(e):\n"
        "    loss = tf.reduce_sum(tf.tanh(tf.nn.conv2d(e[0], e[1], [1, 2, 2, 1], 'SAME')))\n"
        "    return [loss] + tf.gradients(loss, [e[0], e[1]])\n"
        "vectorized = vectorized_tasks(body, elements, 3)\n"
        "mapped = tf.map_fn(body, elements, fn_output_signature=[tf.float32] * 3)\n"
        "with tf.Session() as session:\n"
        "    for a, b in zip(*session.run([vectorized, mapped])):\n"
        "        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())\n"
        "print('agree')\n")
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "agree" in done.stdout, done.stderr[-2000:]


def test_the_default_is_auto(dataset):
    from boml.upper_iter import BOMLOuterGradSimple

    assert BOMLOuterGradSimple().config.vectorize_tasks == "auto"
    task_map, _ = _meta_gradients(dataset, "auto", run=False)
    assert task_map["vectorized"] is True


def test_one_task_at_a_time_is_the_map_and_says_so(dataset):
    with pytest.warns(VectorizationWarning, match="parallel_iterations=1"):
        task_map, _ = _meta_gradients(dataset, True, parallel_iterations=1, run=False)
    assert task_map["vectorized"] is False and task_map["concurrent_tasks"] == 1
    assert "parallel_iterations=1" in task_map["vectorization_error"]


def _tanh_meta_feat(dataset, vectorize, outer_fn=None):
    """Reverse-mode (RHG) hypergradient of tanh features in float32, 3 tasks."""
    graph = tf.Graph()
    with graph.as_default():
        ex = boml.BOMLExperiment(dataset, meta_batch_size=TASKS)
        boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
        W, inner, query_out = toys.tanh_meta_feat_model(boml_ho, ex, np.float32)
        outer = (outer_fn or boml.utils.cross_entropy)(query_out, ex.y_)
        inner_grad = boml_ho.ll_problem(inner, 0.2, 3, experiment=ex)
        boml_ho.ul_problem(outer, 0.05, inner_grad, meta_param=[W], vectorize_tasks=vectorize)
        (grad, _), = boml_ho.outergradient.outer_grads_and_vars()
        feed = {}
        for part in ex.feed_dicts(dataset.train.generate_batch(TASKS, rand=np.random.RandomState(1))):
            feed.update(part)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            value = session.run(grad, feed)
    return boml_ho.outergradient.task_maps[0], value


def test_float32_hypergradients_of_a_tanh_network_agree_to_float32_rounding(dataset):
    vector_map, vectorized = _tanh_meta_feat(dataset, True)
    _, mapped = _tanh_meta_feat(dataset, False)
    assert vector_map["vectorized"] is True
    assert np.abs(mapped).max() > 1e-3
    np.testing.assert_allclose(vectorized, mapped, rtol=1e-5, atol=1e-6 * np.abs(mapped).max())


def test_a_body_with_an_operation_pfor_cannot_convert_runs_in_the_map_with_the_reason(dataset):
    def segment_loss(logits, labels):  # SegmentSum has no vectorization rule
        per_example = tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)
        halves = tf.math.segment_sum(per_example, [0] * 6 + [1] * 6)
        return tf.reduce_mean(halves)

    with pytest.warns(VectorizationWarning, match="SegmentSum"):
        vector_map, vectorized = _tanh_meta_feat(dataset, True, segment_loss)
    _, mapped = _tanh_meta_feat(dataset, False, segment_loss)
    assert vector_map["vectorized"] is False
    assert "SegmentSum" in vector_map["vectorization_error"]
    np.testing.assert_allclose(vectorized, mapped, rtol=1e-6)


@pytest.mark.parametrize("bad", ["yes", "Auto", 1, None])
def test_vectorize_tasks_must_be_auto_or_a_bool(fresh_graph, bad):
    from boml.upper_iter import BOMLOuterGradSimple

    with pytest.raises(InvalidArgumentError, match=f"vectorize_tasks must be 'auto', True or False; received {bad!r}"):
        BOMLOuterGradSimple(vectorize_tasks=bad)



def test_a_vectorized_meta_training_feed_must_hold_meta_batch_size_tasks(dataset):
    with tf.Graph().as_default():
        ex = boml.BOMLExperiment(dataset, meta_batch_size=TASKS)
        boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
        ex.model = boml_ho.base_learner(ex.x, boml_ho.meta_learner(ex.x, dataset, dim_hidden=(2, 2)))
        inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), 0.1, 1, experiment=ex)
        boml_ho.ul_problem(boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_), 0.01, inner_grad,
                           vectorize_tasks=True)
        boml_ho.aggregate_all()
        assert ex.fixed_task_count
        rand = np.random.RandomState(0)
        with sessions.numeric_session() as session:
            session.run(tf.global_variables_initializer())
            losses = boml_ho.run(*ex.feed_dicts(dataset.train.generate_batch(TASKS, rand=rand)), session=session)
            assert np.isfinite(losses["outer_loss"])
            with pytest.raises(ShapeError, match=f"meta_batch_size={TASKS} tasks"):
                boml_ho.run(*ex.feed_dicts(dataset.train.generate_batch(TASKS - 1, rand=rand)), session=session)
