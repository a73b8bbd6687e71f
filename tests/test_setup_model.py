"""Tests of boml.setup_model: shapes, parameter bookkeeping, re_forward, gradients, errors."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError, ShapeError
from boml.extension import GraphKeys
from boml.setup_model import (
    BOMLNet,
    BOMLNetFeedForward,
    BOMLNetMetaFeatV1,
    BOMLNetMetaInitV1,
    BOMLNetMiniMetaFeatV1,
    BOMLNetMiniMetaInitV1,
    BOMLNetOmniglotMetaFeatV1,
    BOMLNetOmniglotMetaInitV1,
    network_utils,
)

N = 5
RNG = np.random.RandomState(0)
OMNI = RNG.rand(6, 28, 28, 1).astype(np.float32)
MINI = RNG.rand(3, 84, 84, 3).astype(np.float32)


def omniglot_input(dtype=tf.float32):
    return tf.placeholder(dtype, [None, 28, 28, 1], name="x")


def mini_input():
    return tf.placeholder(tf.float32, [None, 84, 84, 3], name="x")


def base_learner(meta, _input, name="task_net", **kw):
    """Builds a MetaInit base learner sharing ``meta``'s parameters (as BOMLOptimizer.base_learner does)."""
    return BOMLNetMetaInitV1(_input, meta.dims, name=name, outer_param_dict=meta.outer_param_dict,
                             model_param_dict=meta.model_param_dict, use_t=meta.use_t, use_warp=meta.use_warp,
                             dim_hidden=meta.dim_hidden, max_pool=meta.max_pool, channels=meta.channels,
                             data_type=meta.datatype, **kw)


def refs(variables):
    return {v.ref() for v in variables}


# ------------------------------------------------------------------------------------- shapes
def test_omniglot_meta_init_shapes(session):
    x = omniglot_input()
    net = BOMLNetOmniglotMetaInitV1(x, N)
    assert list(net.outer_param_dict) == ["conv0", "bias0", "conv1", "bias1", "conv2", "bias2", "conv3", "bias3",
                                          "w4", "bias4"]
    assert net.outer_param_dict["conv0"].shape.as_list() == [3, 3, 1, 64]
    assert net.outer_param_dict["conv3"].shape.as_list() == [3, 3, 64, 64]
    assert net.outer_param_dict["w4"].shape.as_list() == [64, N]
    assert [layer.shape.as_list()[1:] for layer in net.layers[1:5]] == [[14, 14, 64], [7, 7, 64], [4, 4, 64],
                                                                        [2, 2, 64]]
    assert net[0] is x and net.out is net.layers[-1]
    assert net.out.shape.as_list() == [None, N]
    session.run(tf.global_variables_initializer())
    assert session.run(net.out, {x: OMNI}).shape == (6, N)


def test_mini_meta_init_shapes(session):
    x = mini_input()
    net = BOMLNetMiniMetaInitV1(x, N)
    assert net.channels == 3 and net.dim_hidden == [32] * 4 and net.max_pool
    assert net.outer_param_dict["conv0"].shape.as_list() == [3, 3, 3, 32]
    assert net.outer_param_dict["w4"].shape.as_list() == [800, N]
    assert [layer.shape.as_list()[1:3] for layer in net.layers[1:5]] == [[42, 42], [21, 21], [10, 10], [5, 5]]
    session.run(tf.global_variables_initializer())
    assert session.run(net.out, {x: MINI}).shape == (3, N)


@pytest.mark.parametrize("factory, make_input, data, outer_method, dim", [
    (BOMLNetOmniglotMetaFeatV1, omniglot_input, OMNI, "Reverse", 256),
    (BOMLNetOmniglotMetaFeatV1, omniglot_input, OMNI, "Implicit", 64),
    (BOMLNetMiniMetaFeatV1, mini_input, MINI, "Reverse", 800),
    (BOMLNetMiniMetaFeatV1, mini_input, MINI, "Implicit", 800),
])
def test_meta_feat_feature_dims(session, factory, make_input, data, outer_method, dim):
    x = make_input()
    net = factory(x, outer_method=outer_method, dim_output=N)  # dim_output is accepted and ignored
    assert net.out.shape.as_list() == [None, dim]
    assert list(net.outer_param_dict) == ["conv0", "conv1", "conv2", "conv3"]  # no conv biases (BN follows)
    assert net.var_list == []
    session.run(tf.global_variables_initializer())
    assert session.run(net.out, {x: data}).shape == (len(data), dim)


# ----------------------------------------------------------------------- meta / model parameters
def test_meta_parameters_collection_is_outer_then_model():
    net = BOMLNetOmniglotMetaInitV1(omniglot_input(), N)
    assert tf.get_collection(GraphKeys.METAPARAMETERS) == net.meta_parameters
    assert net.meta_parameters == list(net.outer_param_dict.values()) + list(net.model_param_dict.values())
    assert list(net.model_param_dict) == [f"bn{i}_{p}" for i in range(4) for p in ("offset", "scale")]
    for v in net.meta_parameters:
        assert v not in tf.trainable_variables()
        assert v.ref() in refs(tf.global_variables())
    assert net.var_list == []
    assert all(net.task_parameter[k] is v for k, v in net.outer_param_dict.items())
    # building a base learner adds no meta-parameter
    base_learner(net, omniglot_input())
    assert tf.get_collection(GraphKeys.METAPARAMETERS) == net.meta_parameters


def test_batch_norm_offset_zero_scale_one_and_norm_none(session):
    net = BOMLNetOmniglotMetaInitV1(omniglot_input(), N)
    plain = BOMLNetOmniglotMetaInitV1(omniglot_input(), N, norm=None)
    assert list(plain.model_param_dict) == []
    session.run(tf.global_variables_initializer())
    values = session.run(net.model_param_dict)
    for i in range(4):
        np.testing.assert_array_equal(values[f"bn{i}_offset"], np.zeros(64))
        np.testing.assert_array_equal(values[f"bn{i}_scale"], np.ones(64))


@pytest.mark.parametrize("meta_class, kw", [(BOMLNetOmniglotMetaInitV1, {"dim_output": N}),
                                            (BOMLNetOmniglotMetaFeatV1, {})])
def test_use_t_adds_identity_t_layers(session, meta_class, kw):
    x = omniglot_input()
    plain = meta_class(x, name="plain", **kw)
    with_t = meta_class(x, name="with_t", use_t=True, **kw)
    extra = [k for k in with_t.model_param_dict if k not in plain.model_param_dict]
    expected = [f"conv{i}_z" for i in range(4)] + (["w4_z"] if meta_class is BOMLNetOmniglotMetaInitV1 else [])
    assert extra == expected
    assert list(with_t.outer_param_dict) == list(plain.outer_param_dict)
    session.run(tf.global_variables_initializer())
    for i in range(4):
        np.testing.assert_array_equal(session.run(with_t.model_param_dict[f"conv{i}_z"]),
                                      np.eye(64).reshape(1, 1, 64, 64))
    if "w4_z" in with_t.model_param_dict:
        np.testing.assert_array_equal(session.run(with_t.model_param_dict["w4_z"]), np.eye(N))
    # with the same outer weights, identity T-layers do not change the output
    for key, var in plain.outer_param_dict.items():
        with_t.outer_param_dict[key].load(session.run(var), session)
    out_plain, out_t = session.run([plain.out, with_t.out], {x: OMNI})
    np.testing.assert_allclose(out_t, out_plain, rtol=1e-5, atol=1e-5)
    # changing a T-layer changes the output: the T-layers are really used
    with_t.model_param_dict["conv1_z"].load(2.0 * np.eye(64).reshape(1, 1, 64, 64) + 0.1, session)
    assert np.abs(session.run(with_t.out, {x: OMNI}) - out_plain).max() > 1e-3


@pytest.mark.parametrize("meta_class, kw", [(BOMLNetOmniglotMetaInitV1, {"dim_output": N}),
                                            (BOMLNetOmniglotMetaFeatV1, {})])
def test_use_warp_adds_warp_layers(session, meta_class, kw):
    x = omniglot_input()
    plain = meta_class(x, name="plain", **kw)
    warp = meta_class(x, name="warp", use_warp=True, **kw)
    extra = [k for k in warp.model_param_dict if k not in plain.model_param_dict]
    assert extra == [k for i in range(4) for k in (f"conv{i}_z", f"bias{i}_z")]
    for i in range(4):
        assert warp.model_param_dict[f"conv{i}_z"].shape.as_list() == [3, 3, 64, 64]
        assert warp.model_param_dict[f"bias{i}_z"].shape.as_list() == [64]
    assert tf.get_collection(GraphKeys.METAPARAMETERS, scope="warp") == warp.meta_parameters
    session.run(tf.global_variables_initializer())
    before = session.run(warp.out, {x: OMNI})
    warp.model_param_dict["conv2_z"].load(np.zeros([3, 3, 64, 64]), session)
    assert np.abs(session.run(warp.out, {x: OMNI}) - before).max() > 1e-4


def test_use_t_with_use_warp_is_rejected():
    with pytest.raises(InvalidArgumentError, match="use_t=True and use_warp=True"):
        BOMLNetOmniglotMetaInitV1(omniglot_input(), N, use_t=True, use_warp=True)
    with pytest.raises(InvalidArgumentError, match="use_t=True and use_warp=True"):
        BOMLNetOmniglotMetaFeatV1(omniglot_input(), use_t=True, use_warp=True)


# ------------------------------------------------------------------------------ base learner
@pytest.mark.parametrize("use_t", [False, True])
def test_base_learner_copies(session, use_t):
    x = omniglot_input()
    meta = BOMLNetOmniglotMetaInitV1(x, N, name="meta", use_t=use_t)
    task = base_learner(meta, x)
    assert len(task.var_list) == len(meta.outer_param_dict)
    assert refs(task.var_list).isdisjoint(refs(meta.meta_parameters))
    assert refs(task.var_list).isdisjoint(refs(tf.get_collection(GraphKeys.METAPARAMETERS)))
    for (key, outer), copy in zip(meta.outer_param_dict.items(), task.var_list):
        assert task.task_parameter[key] is copy
        assert copy.name == f"task_net/{key}:0"
        assert copy.shape == outer.shape and copy.dtype == outer.dtype
        assert task.initial_state_of(copy) is outer
        assert copy not in tf.trainable_variables()
    assert refs(task.var_list) <= refs(tf.get_collection(GraphKeys.MODEL_VARIABLES))
    assert refs(task.var_list) <= refs(tf.global_variables())
    assert task.model_param_dict == meta.model_param_dict
    session.run(tf.global_variables_initializer())
    for copy, outer in zip(task.var_list, meta.outer_param_dict.values()):
        np.testing.assert_array_equal(*session.run([copy, outer]))
    np.testing.assert_allclose(*session.run([task.out, meta.out], {x: OMNI}), rtol=1e-6)
    # initialize() restarts the copies from the current meta-parameters
    conv0 = meta.outer_param_dict["conv0"]
    conv0.load(session.run(conv0) + 1.0, session)
    task.initialize(session)
    np.testing.assert_array_equal(session.run(task.task_parameter["conv0"]), session.run(conv0))


def test_base_learner_gradients_reach_var_list_and_batch_norm():
    x = omniglot_input()
    meta = BOMLNetOmniglotMetaInitV1(x, N, use_warp=True)
    task = base_learner(meta, x)
    loss = tf.reduce_sum(tf.square(task.out))
    bn = [v for k, v in meta.model_param_dict.items() if k.startswith("bn")]
    assert len(bn) == 8
    warp = [v for k, v in meta.model_param_dict.items() if k.endswith("_z")]
    grads = tf.gradients(loss, task.var_list + bn + warp)
    assert all(g is not None for g in grads)
    # the base learner reads its copies, not the meta-parameters
    assert all(g is None for g in tf.gradients(loss, list(meta.outer_param_dict.values())))


def test_second_order_gradients_through_max_pool_net(session):
    x = tf.placeholder(tf.float64, [4, 20, 20, 3])
    meta = BOMLNetMetaInitV1(x, N, "meta", dim_hidden=(4, 4, 4, 4), max_pool=True, data_type=tf.float64)
    task = base_learner(meta, x)
    assert meta.outer_param_dict["w4"].shape.as_list() == [4, N]  # 20 -> 10 -> 5 -> 2 -> 1
    loss = tf.reduce_sum(tf.square(task.out))
    grads = tf.gradients(loss, task.var_list)
    second = tf.gradients(tf.add_n([tf.reduce_sum(g * g) for g in grads]), task.var_list)
    assert all(g is not None for g in second)
    session.run(tf.global_variables_initializer())
    assert all(np.all(np.isfinite(v)) for v in session.run(second, {x: RNG.rand(4, 20, 20, 3)}))


def test_batch_norm_matches_numpy_and_has_exact_second_derivatives(session):
    x = tf.placeholder(tf.float64, [6, 3])
    offset = tf.constant([0.5, -1.0, 2.0], tf.float64)
    scale = tf.constant([2.0, 0.5, 1.5], tf.float64)
    y = network_utils.batch_norm(x, offset, scale)
    x_val = RNG.randn(6, 3)
    mean, var = x_val.mean(0), x_val.var(0)
    reference = (x_val - mean) / np.sqrt(var + 1e-3) * [2.0, 0.5, 1.5] + [0.5, -1.0, 2.0]
    np.testing.assert_allclose(session.run(y, {x: x_val}), reference, rtol=1e-10)
    # Hessian-vector product of a non-quadratic loss vs central finite differences of the gradient
    coeff = tf.constant(RNG.randn(6, 3))
    grad = tf.gradients(tf.reduce_sum(coeff * y ** 3), x)[0]
    direction = RNG.randn(6, 3)
    hvp = tf.gradients(tf.reduce_sum(grad * direction), x)[0]
    eps = 1e-5
    numeric = (session.run(grad, {x: x_val + eps * direction}) - session.run(grad, {x: x_val - eps * direction}))
    numeric /= 2 * eps
    np.testing.assert_allclose(session.run(hvp, {x: x_val}), numeric, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------ re_forward
@pytest.mark.parametrize("role", ["meta", "base", "feat", "head"])
def test_re_forward_shares_variables_and_output(session, role):
    x = omniglot_input()
    meta = BOMLNetOmniglotMetaInitV1(x, N, name="meta", use_t=True)
    feat = BOMLNetOmniglotMetaFeatV1(x, name="feat")
    nets = {"meta": meta, "base": base_learner(meta, x), "feat": feat,
            "head": BOMLNetFeedForward(feat.out, N, output_weight_initializer=network_utils.GlorotUniform())}
    net = nets[role]
    before = tf.global_variables()
    collections_before = tf.get_collection(GraphKeys.METAPARAMETERS)
    same = net.re_forward()
    other = net.re_forward(tf.placeholder(tf.float32, net.layers[0].shape, name="x_new"))
    assert tf.global_variables() == before
    assert tf.get_collection(GraphKeys.METAPARAMETERS) == collections_before
    for copy in (same, other):
        assert type(copy) is type(net)
        assert copy.outer_param_dict == net.outer_param_dict
        assert copy.model_param_dict == net.model_param_dict
        assert copy.var_list == net.var_list
        assert all(copy.task_parameter[k] is v for k, v in net.task_parameter.items())
    session.run(tf.global_variables_initializer())
    feed_input = OMNI if role != "head" else session.run(feat.out, {x: OMNI})
    np.testing.assert_allclose(*session.run([same.out, net.out], {x: OMNI}), rtol=1e-6)
    np.testing.assert_allclose(session.run(other.out, {other.layers[0]: feed_input}),
                               session.run(net.out, {net.layers[0]: feed_input}), rtol=1e-6)


def test_re_forward_with_task_parameter_tensors(session):
    x = omniglot_input()
    meta = BOMLNetOmniglotMetaInitV1(x, N, name="meta")
    task = base_learner(meta, x)
    shifted = task.re_forward(task_parameter={"bias4": task.task_parameter["bias4"] + 1.0})
    assert shifted.task_parameter["conv0"] is task.task_parameter["conv0"]
    assert [v.name for v in shifted.var_list] == [v.name for v in task.var_list if "bias4" not in v.name]
    adapted = {k: v - 0.01 for k, v in task.task_parameter.items()}  # a "theta_1" of tensors
    stepped = task.re_forward(x, task_parameter=adapted)
    assert stepped.var_list == []
    grads = tf.gradients(tf.reduce_sum(stepped.out), task.var_list)
    assert all(g is not None for g in grads)  # the new output depends on the copies through the tensors
    session.run(tf.global_variables_initializer())
    out, out_shifted, out_stepped = session.run([task.out, shifted.out, stepped.out], {x: OMNI})
    np.testing.assert_allclose(out_shifted, out + 1.0, rtol=1e-5, atol=1e-5)
    assert np.abs(out_stepped - out).max() > 1e-4
    with pytest.raises(InvalidArgumentError, match="does not use"):
        task.re_forward(task_parameter={"not_a_param": tf.zeros([N])})
    with pytest.raises(ShapeError, match="bias4"):
        task.re_forward(task_parameter={"bias4": tf.zeros([N + 1])})


def test_meta_feat_and_head_re_forward_with_tensors(session):
    x = omniglot_input()
    feat = BOMLNetOmniglotMetaFeatV1(x)
    zero_conv = feat.re_forward(task_parameter={"conv3": tf.zeros([3, 3, 64, 64])})
    head = BOMLNetFeedForward(feat.out, N)
    w = tf.constant(RNG.randn(256, N).astype(np.float32))
    b = tf.constant(np.arange(N, dtype=np.float32))
    head2 = head.re_forward(zero_conv.out, task_parameter={"fc_weight": w, "fc_bias": b})
    assert head2.var_list == []
    session.run(tf.global_variables_initializer())
    f, f0, o2 = session.run([feat.out, zero_conv.out, head2.out], {x: OMNI})
    assert np.abs(f - f0).max() > 1e-3
    np.testing.assert_allclose(o2, f0 @ session.run(w) + np.arange(N), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------ isolation
def test_two_networks_share_nothing(session):
    x = omniglot_input()
    first = BOMLNetOmniglotMetaInitV1(x, N)  # same (default) name twice
    second = BOMLNetOmniglotMetaInitV1(x, N)
    assert refs(first.meta_parameters).isdisjoint(refs(second.meta_parameters))
    names = [v.name for v in tf.global_variables()]
    assert len(names) == len(set(names)) == 2 * len(first.meta_parameters)
    assert first.scope_name != second.scope_name
    assert tf.get_collection(GraphKeys.METAPARAMETERS) == first.meta_parameters + second.meta_parameters
    feat_a, feat_b = BOMLNetOmniglotMetaFeatV1(x), BOMLNetOmniglotMetaFeatV1(x)
    assert refs(feat_a.meta_parameters).isdisjoint(refs(feat_b.meta_parameters))
    head_a, head_b = BOMLNetFeedForward(feat_a.out, N), BOMLNetFeedForward(feat_a.out, N)
    assert refs(head_a.var_list).isdisjoint(refs(head_b.var_list))
    session.run(tf.global_variables_initializer())
    assert not np.allclose(*session.run([first.outer_param_dict["conv0"], second.outer_param_dict["conv0"]]))


def test_reuse_true_finds_the_same_variables():
    x = omniglot_input()
    first = BOMLNetOmniglotMetaInitV1(x, N, name="shared")
    again = BOMLNetOmniglotMetaInitV1(x, N, name="shared", reuse=True)
    assert again.meta_parameters == first.meta_parameters


# ------------------------------------------------------------------------------------ feedforward
@pytest.mark.parametrize("initializer", [tf.zeros_initializer, tf.zeros_initializer()])
def test_feedforward_zero_head(session, initializer):
    feats = tf.placeholder(tf.float32, [None, 7])
    head = BOMLNetFeedForward(feats, N, name="clf", output_weight_initializer=initializer)
    assert [v.name for v in head.var_list] == ["clf/fc_weight:0", "clf/fc_bias:0"]
    assert list(head.task_parameter) == ["fc_weight", "fc_bias"]
    assert head.outer_param_dict == {} and head.model_param_dict == {}
    assert refs(head.var_list) <= refs(tf.get_collection(GraphKeys.MODEL_VARIABLES))
    assert not tf.get_collection(GraphKeys.METAPARAMETERS)
    session.run(tf.global_variables_initializer())
    np.testing.assert_array_equal(session.run(head.out, {feats: RNG.rand(3, 7)}), np.zeros((3, N)))


def test_feedforward_is_linear(session):
    feats = tf.placeholder(tf.float32, [None, 7])
    head = BOMLNetFeedForward(feats, [N], output_weight_initializer=tf.random_normal_initializer)
    data = RNG.rand(3, 7).astype(np.float32)
    session.run(tf.global_variables_initializer())
    w, b = session.run(head.var_list)
    head.var_list[1].load(np.arange(N, dtype=np.float32), session)
    np.testing.assert_allclose(session.run(head.out, {feats: data}), data @ w + np.arange(N), rtol=1e-5)
    assert all(g is not None for g in tf.gradients(tf.reduce_sum(head.out), head.var_list))


# ------------------------------------------------------------------------------------ float64
def test_float64_networks(session):
    x = omniglot_input(tf.float64)
    meta = BOMLNetOmniglotMetaInitV1(x, N, data_type=tf.float64, use_t=True)
    task = base_learner(meta, x)
    feat = BOMLNetOmniglotMetaFeatV1(x, data_type=tf.float64, use_warp=True)
    head = BOMLNetFeedForward(feat.out, N, data_type=tf.float64)
    for v in meta.meta_parameters + task.var_list + feat.meta_parameters + head.var_list:
        assert v.dtype.base_dtype == tf.float64
    for out in (meta.out, task.out, feat.out, head.out):
        assert out.dtype == tf.float64
    assert all(g is not None for g in tf.gradients(tf.reduce_sum(task.out), task.var_list))
    session.run(tf.global_variables_initializer())
    values = session.run([task.out, head.out], {x: OMNI.astype(np.float64)})
    assert all(v.dtype == np.float64 and np.all(np.isfinite(v)) for v in values)


# ------------------------------------------------------------------------------------ errors
def test_bad_inputs_raise_typed_errors():
    with pytest.raises(ShapeError, match="rank-4"):
        BOMLNetOmniglotMetaInitV1(tf.placeholder(tf.float32, [None, 784]), N)
    with pytest.raises(ShapeError, match="rank-4"):
        BOMLNetMetaFeatV1(tf.placeholder(tf.float32, [None, 28, 28]))
    with pytest.raises(ShapeError, match="channel"):
        BOMLNetMetaInitV1(tf.placeholder(tf.float32, [None, 28, 28, None]), N, "net")
    with pytest.raises(ShapeError, match="channels=1"):
        BOMLNetOmniglotMetaInitV1(tf.placeholder(tf.float32, [None, 28, 28, 3]), N)
    with pytest.raises(ShapeError, match="static"):
        BOMLNetMiniMetaInitV1(tf.placeholder(tf.float32, [None, None, None, 3]), N)
    with pytest.raises(ShapeError, match="static"):
        BOMLNetOmniglotMetaFeatV1(tf.placeholder(tf.float32, [None, None, None, 1]))
    for bad in (0, -1, "5", 2.5, None, True):
        with pytest.raises(InvalidArgumentError, match="dim_output"):
            BOMLNetOmniglotMetaInitV1(omniglot_input(), bad)
    with pytest.raises(InvalidArgumentError, match="dim_hidden"):
        BOMLNetOmniglotMetaInitV1(omniglot_input(), N, dim_hidden=[])
    with pytest.raises(InvalidArgumentError, match="norm"):
        BOMLNetOmniglotMetaInitV1(omniglot_input(), N, norm="layer_norm")
    with pytest.raises(InvalidArgumentError, match="data_type"):
        BOMLNetOmniglotMetaFeatV1(omniglot_input(), data_type=tf.int32)
    with pytest.raises(ShapeError, match="feat_dim"):
        BOMLNetFeedForward(tf.placeholder(tf.float32, [None]), N)
    with pytest.raises(InvalidArgumentError, match="dim_output"):
        BOMLNetFeedForward(tf.placeholder(tf.float32, [None, 4]), 0)
    # a pure GAP MetaInit accepts unknown height and width
    BOMLNetMetaInitV1(tf.placeholder(tf.float32, [None, None, None, 1]), N, "gap")


def test_base_learner_must_match_the_meta_learner():
    x = omniglot_input()
    meta = BOMLNetOmniglotMetaInitV1(x, N, name="meta")
    with pytest.raises(InvalidArgumentError, match="model_param_dict"):
        BOMLNetOmniglotMetaInitV1(x, N, name="task", outer_param_dict=meta.outer_param_dict)
    with pytest.raises(ShapeError, match="w4"):
        BOMLNetOmniglotMetaInitV1(x, N + 1, name="task", outer_param_dict=meta.outer_param_dict,
                                  model_param_dict=meta.model_param_dict)
    with pytest.raises(InvalidArgumentError, match="dtype"):
        BOMLNetOmniglotMetaInitV1(x, N, name="task", outer_param_dict=meta.outer_param_dict,
                                  model_param_dict=meta.model_param_dict, data_type=tf.float64)
    with pytest.raises(InvalidArgumentError, match="conv0_z"):
        BOMLNetOmniglotMetaInitV1(x, N, name="task", outer_param_dict=meta.outer_param_dict,
                                  model_param_dict=meta.model_param_dict, use_t=True)


def test_abstract_base_raises_not_implemented():
    with pytest.raises(NotImplementedError):
        BOMLNet(tf.placeholder(tf.float32, [None, 3]), name="abstract")


# ------------------------------------------------------------------------------------ registry
def test_networks_are_registered():
    expected = {
        "OmniglotMetaInitV1": BOMLNetOmniglotMetaInitV1, "MiniMetaInitV1": BOMLNetMiniMetaInitV1,
        "MetaInitV1": BOMLNetMetaInitV1, "OmniglotMetaFeatV1": BOMLNetOmniglotMetaFeatV1,
        "MiniMetaFeatV1": BOMLNetMiniMetaFeatV1, "MetaFeatV1": BOMLNetMetaFeatV1,
    }
    for name, network in expected.items():
        assert extension.NETWORKS.get(name) is network
    net = extension.NETWORKS.get("MetaInitV1")(tf.placeholder(tf.float32, [None, 16, 16, 2]), N, "generic")
    assert net.channels == 2 and net.out.shape.as_list() == [None, N]


def test_fused_batch_norm_second_derivatives_match_float64_reference():
    """The fused float32 path has the same Hessian-vector products as the exact float64 path."""
    x_val, coeff, direction = RNG.randn(4, 5, 5, 3), RNG.randn(4, 5, 5, 3), RNG.randn(4, 5, 5, 3)

    def hvp(dtype):
        with tf.Graph().as_default(), tf.Session() as sess:
            x = tf.placeholder(dtype, [4, 5, 5, 3])
            offset, scale = tf.constant([0.5, -1.0, 2.0], dtype), tf.constant([2.0, 0.5, 1.5], dtype)
            y = network_utils.batch_norm(x, offset, scale)
            grad = tf.gradients(tf.reduce_sum(tf.constant(coeff, dtype) * y ** 3), x)[0]
            second = tf.gradients(tf.reduce_sum(grad * tf.constant(direction, dtype)), [x, offset, scale])
            uses_fused = any(op.type.startswith("FusedBatchNorm") for op in sess.graph.get_operations())
            return sess.run(second, {x: x_val}), uses_fused

    exact, fused_in_64 = hvp(tf.float64)
    fast, fused_in_32 = hvp(tf.float32)
    assert fused_in_32 and not fused_in_64
    for a, b in zip(exact, fast):
        assert np.max(np.abs(a - b)) / np.max(np.abs(a)) < 1e-5
