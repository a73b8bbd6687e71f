"""Tests of the V2 residual networks (MetaInit V2, MetaFeat V2): shapes, parameter sets,
re_forward, inner steps and hypergradients against finite differences (float64)."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import extension
from boml.errors import InvalidArgumentError, ShapeError
from boml.extension import GraphKeys
from boml.setup_model import (
    BOMLNetFeedForward,
    BOMLNetMetaFeatV2,
    BOMLNetMetaInitV2,
    BOMLNetMiniMetaFeatV2,
    BOMLNetMiniMetaInitV2,
    BOMLNetOmniglotMetaFeatV2,
    BOMLNetOmniglotMetaInitV2,
)

N = 5
RNG = np.random.RandomState(0)
OMNI = RNG.rand(4, 28, 28, 1).astype(np.float32)
TINY = {"dim_resnet": (3, 4), "head_dims": (5, 4)}  # small widths for the graph-heavy tests
TINY_IMAGE = (8, 8, 1)  # 8 -> 4 -> 2, then global average pooling


def refs(variables):
    return {v.ref() for v in variables}


def omniglot_input(dtype=tf.float32):
    return tf.placeholder(dtype, [None, 28, 28, 1], name="x")


def base_learner(meta, _input, name="task_net"):
    """A MetaInit V2 base learner sharing ``meta``'s parameters (as BOMLOptimizer.base_learner does)."""
    return BOMLNetMetaInitV2(_input, meta.dims, name=name, outer_param_dict=meta.outer_param_dict,
                             model_param_dict=meta.model_param_dict, **meta._config)  # pylint: disable=protected-access


def block_keys(i, convs=3, skip_bias=False):
    return [f"res{i}_id"] + ([f"res{i}_id_bias"] if skip_bias else []) + [f"res{i}_conv{j}" for j in range(convs)]


HEAD_KEYS = ["head_conv1", "head_bias1", "head_conv2", "head_bias2"]


def bn_keys(n_blocks, convs=3):
    return [f"res{i}_bn{j}_{p}" for i in range(n_blocks) for j in range(convs) for p in ("offset", "scale")]


# ------------------------------------------------------------------------------------- shapes
def test_mini_meta_init_v2_layers_and_parameters(session):
    x = tf.placeholder(tf.float32, [None, 84, 84, 3], name="x")
    net = BOMLNetMiniMetaInitV2(x, N)
    assert net.dim_resnet == [64, 96, 128, 256] and net.head_dims == [2048, 512] and net.head_pool == 6
    assert [layer.shape.as_list()[1:] for layer in net.layers[1:5]] == [[42, 42, 64], [21, 21, 96], [11, 11, 128],
                                                                        [6, 6, 256]]
    assert net.layers[5].shape.as_list()[1:] == [1, 1, 2048]  # 1x1 conv to 2048, then the 6x6 VALID pool
    assert net.out.shape.as_list() == [None, N]
    expected = [k for i in range(4) for k in block_keys(i)] + HEAD_KEYS + ["fc_weight", "fc_bias"]
    assert list(net.outer_param_dict) == expected
    assert list(net.model_param_dict) == bn_keys(4)
    shapes = {k: v.shape.as_list() for k, v in net.outer_param_dict.items()}
    assert shapes["res0_id"] == [1, 1, 3, 64] and shapes["res0_conv0"] == [3, 3, 3, 64]
    assert shapes["res0_conv1"] == [3, 3, 64, 64] and shapes["res3_conv0"] == [3, 3, 128, 256]
    assert shapes["head_conv1"] == [1, 1, 256, 2048] and shapes["head_conv2"] == [1, 1, 2048, 512]
    assert shapes["fc_weight"] == [512, N]
    session.run(tf.global_variables_initializer())
    assert session.run(net.out, {x: RNG.rand(2, 84, 84, 3)}).shape == (2, N)


def test_omniglot_v2_networks_shapes(session):
    x = omniglot_input()
    init = BOMLNetOmniglotMetaInitV2(x, N)
    feat = BOMLNetOmniglotMetaFeatV2(x, dim_output=N)  # dim_output is accepted and ignored
    for net in (init, feat):
        assert net.channels == 1 and net.dim_resnet == [64, 96] and net.head_pool is None
        assert [layer.shape.as_list()[1:] for layer in net.layers[1:3]] == [[14, 14, 64], [7, 7, 96]]
    assert init.out.shape.as_list() == [None, N]
    assert feat.out.shape.as_list() == [None, 512]
    assert list(feat.outer_param_dict) == [k for i in range(2) for k in block_keys(i, skip_bias=True)] + HEAD_KEYS
    assert list(feat.model_param_dict) == bn_keys(2)
    assert feat.var_list == []
    # the original 6x6 VALID head pooling is available
    pooled = BOMLNetOmniglotMetaFeatV2(x, head_pool=6, name="pooled")
    assert pooled.out.shape.as_list() == [None, 512]
    session.run(tf.global_variables_initializer())
    logits, features = session.run([init.out, feat.out], {x: OMNI})
    assert logits.shape == (4, N) and features.shape == (4, 512)
    assert np.all(features >= 0.0)  # the MetaFeat head ends with a ReLU


def test_mini_meta_feat_v2_output():
    net = BOMLNetMiniMetaFeatV2(tf.placeholder(tf.float32, [None, 84, 84, 3]))
    assert net.out.shape.as_list() == [None, 512]
    assert net.outer_param_dict["res3_id"].shape.as_list() == [1, 1, 128, 256]
    assert net.outer_param_dict["res3_id_bias"].shape.as_list() == [256]


def test_head_pool_flattens_larger_maps_and_norm_none_adds_biases():
    x = tf.placeholder(tf.float32, [None, 16, 16, 2])  # 16 -> 8 -> 4, pooled 2x2 -> 2x2 map
    net = BOMLNetMetaInitV2(x, N, dim_resnet=(3, 4), head_dims=(5, 6), head_pool=2, norm=None)
    assert net.outer_param_dict["fc_weight"].shape.as_list() == [2 * 2 * 6, N]
    assert "res1_bias2" in net.outer_param_dict and net.model_param_dict == {}


# ----------------------------------------------------------------------- parameter sets
@pytest.mark.parametrize("kind", ["init", "feat"])
def test_parameter_sets_are_disjoint_and_complete(kind):
    x = tf.placeholder(tf.float32, (None,) + TINY_IMAGE, name="x")
    if kind == "init":
        meta = BOMLNetMetaInitV2(x, N, name="meta", **TINY)
        task = base_learner(meta, x)
        task_vars = task.var_list
    else:
        meta = BOMLNetMetaFeatV2(x, name="meta", **TINY)
        task = BOMLNetFeedForward(meta.out, N, name="head")
        task_vars = task.var_list
    outer, model = list(meta.outer_param_dict.values()), list(meta.model_param_dict.values())
    # meta / model / task sets are pairwise disjoint ...
    assert refs(outer).isdisjoint(refs(model))
    assert refs(task_vars).isdisjoint(refs(outer) | refs(model))
    # ... and together they are every variable of the graph (nothing left untrained).
    assert refs(tf.global_variables()) == refs(outer) | refs(model) | refs(task_vars)
    assert tf.get_collection(GraphKeys.METAPARAMETERS) == outer + model
    assert not tf.trainable_variables()
    # the skip convolutions are adapted (MetaInit) or meta-learned (MetaFeat); batch norm is meta-only
    skip = [k for k in meta.outer_param_dict if k.startswith("res") and "_id" in k]
    assert skip == (["res0_id", "res1_id"] if kind == "init" else ["res0_id", "res0_id_bias", "res1_id",
                                                                    "res1_id_bias"])
    assert list(meta.model_param_dict) == bn_keys(2)
    if kind == "init":
        assert meta.var_list == []
        assert list(task.task_parameter) == list(meta.outer_param_dict)
        assert task.var_list == list(task.task_parameter.values())
        for key, copy in task.task_parameter.items():
            assert task.initial_state_of(copy) is meta.outer_param_dict[key]
            assert copy.name == f"task_net/{key}:0"
        assert refs(task.var_list) <= refs(tf.get_collection(GraphKeys.MODEL_VARIABLES))
        assert task.model_param_dict == meta.model_param_dict
    else:
        assert meta.var_list == [] and list(meta.task_parameter) == list(meta.outer_param_dict)


@pytest.mark.parametrize("kind", ["init", "feat"])
def test_every_parameter_gets_a_nonzero_gradient(session, kind):
    """Nothing is dead: each adapted copy and each meta-parameter influences the loss."""
    x = tf.placeholder(tf.float64, (None,) + TINY_IMAGE, name="x")
    if kind == "init":
        meta = BOMLNetMetaInitV2(x, N, name="meta", data_type=tf.float64, **TINY)
        net = base_learner(meta, x)
        params = net.var_list + list(meta.model_param_dict.values())
        assert all(g is None for g in tf.gradients(net.out, list(meta.outer_param_dict.values())))
    else:
        net = BOMLNetMetaFeatV2(x, name="meta", data_type=tf.float64, **TINY)
        params = net.meta_parameters
    loss = tf.reduce_sum(tf.sin(net.out * tf.constant(RNG.randn(*net.out.shape.as_list()[1:]))))
    grads = tf.gradients(loss, params)
    assert all(g is not None for g in grads)
    session.run(tf.global_variables_initializer())
    values = session.run(grads, {x: RNG.rand(6, *TINY_IMAGE)})
    assert [p.name for p, g in zip(params, values) if np.max(np.abs(g)) < 1e-8] == []


# ------------------------------------------------------------------------------------ re_forward
@pytest.mark.parametrize("role", ["meta_init", "base", "meta_feat"])
def test_re_forward_shares_variables(session, role):
    x = tf.placeholder(tf.float32, (None,) + TINY_IMAGE, name="x")
    meta = BOMLNetMetaInitV2(x, N, name="meta", **TINY)
    nets = {"meta_init": meta, "base": base_learner(meta, x),
            "meta_feat": BOMLNetMetaFeatV2(x, name="feat", **TINY)}
    net = nets[role]
    variables, collection = tf.global_variables(), tf.get_collection(GraphKeys.METAPARAMETERS)
    other_input = tf.placeholder(tf.float32, (None,) + TINY_IMAGE, name="x_new")
    same, other = net.re_forward(), net.re_forward(other_input)
    assert tf.global_variables() == variables
    assert tf.get_collection(GraphKeys.METAPARAMETERS) == collection
    for copy in (same, other):
        assert type(copy) is type(net) and copy.name == net.name
        assert copy.outer_param_dict == net.outer_param_dict and copy.model_param_dict == net.model_param_dict
        assert copy.var_list == net.var_list
        assert all(copy.task_parameter[k] is v for k, v in net.task_parameter.items())
    session.run(tf.global_variables_initializer())
    data = RNG.rand(6, *TINY_IMAGE)
    np.testing.assert_allclose(*session.run([same.out, net.out], {x: data}), rtol=1e-6)
    np.testing.assert_allclose(session.run(other.out, {other_input: data}), session.run(net.out, {x: data}),
                               rtol=1e-6)


@pytest.mark.parametrize("factory", [BOMLNetOmniglotMetaInitV2, BOMLNetOmniglotMetaFeatV2])
def test_re_forward_uses_the_given_task_parameters(session, factory):
    """The original Omniglot V2 re_forward ignored the task parameters it was given."""
    x = omniglot_input()
    net = factory(x, dim_output=N, dim_resnet=(8, 8), head_dims=(16, 8))
    n_vars = len(tf.global_variables())
    shifted = {k: v + 0.05 for k, v in net.task_parameter.items()}  # tensors, as theta_t in the inner loop
    moved = net.re_forward(x, task_parameter=shifted)
    partial = net.re_forward(x, task_parameter={"head_bias2": shifted["head_bias2"]})
    assert len(tf.global_variables()) == n_vars  # nothing created
    assert moved.task_parameter["res0_conv0"] is shifted["res0_conv0"]
    assert partial.task_parameter["res0_conv0"] is net.task_parameter["res0_conv0"]
    assert all(g is not None for g in tf.gradients(tf.reduce_sum(moved.out), list(shifted.values())))
    session.run(tf.global_variables_initializer())
    out, out_moved, out_partial = session.run([net.out, moved.out, partial.out], {x: OMNI})
    assert np.abs(out_moved - out).max() > 1e-3 and np.abs(out_partial - out).max() > 1e-4
    with pytest.raises(InvalidArgumentError, match="does not use"):
        net.re_forward(task_parameter={"conv0": tf.zeros([3, 3, 1, 8])})
    with pytest.raises(ShapeError, match="head_bias2"):
        net.re_forward(task_parameter={"head_bias2": tf.zeros([9])})


# ---------------------------------------------------------------------------- through the facade
def tiny_dataset(name="Synthetic"):
    return boml.meta_synthetic(num_classes=2, examples_train=2, examples_test=3, image_shape=TINY_IMAGE,
                               n_classes=(6, 2, 2), examples_per_class=6, name=name)


def build_v2(method, inner, outer, dataset, dtype=tf.float64, T=2, tasks=2, lr=0.1, ll=None, ul=None):
    """The README construction with ``meta_model="V2"`` on a batched experiment (no aggregate_all)."""
    ex = boml.BOMLExperiment(dataset, dtype=dtype, meta_batch_size=tasks)
    boml_ho = boml.BOMLOptimizer(method, inner, outer)
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V2", data_type=dtype, **TINY)
    if method == "MetaInit":
        ex.model = boml_ho.base_learner(ex.x, meta_learner)
        outer_objective = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
    else:
        features = meta_learner.re_forward(ex.x).out
        # The head BOMLOptimizer.base_learner builds is float32; the float64 checks need a float64 head.
        ex.model = BOMLNetFeedForward(features, dataset.train.dim_target, name="task_net", data_type=dtype,
                                      output_weight_initializer=tf.zeros_initializer)
        outer_objective = boml.utils.cross_entropy(
            ex.model.re_forward(meta_learner.re_forward(ex.x_).out).out, ex.y_)
    inner_objective = boml.utils.cross_entropy(ex.model.out, ex.y)
    inner_grad = boml_ho.ll_problem(inner_objective, learning_rate=lr, T=T, experiment=ex,
                                    var_list=ex.model.var_list, **(ll or {}))
    boml_ho.ul_problem(outer_objective, meta_learning_rate=0.05, inner_grad=inner_grad,
                       meta_param=tf.get_collection(GraphKeys.METAPARAMETERS), **(ul or {}))
    return boml_ho, ex, meta_learner, inner_objective


def episode_feed(ex, dataset, tasks=2, seed=0):
    inner, outer = ex.feed_dicts(dataset.train.generate_batch(tasks, rand=np.random.RandomState(seed)))
    return {**inner, **outer}


@pytest.mark.parametrize("dataset_name, method, expected", [
    ("Omniglot", "MetaInit", BOMLNetMetaInitV2), ("Mini", "MetaInit", BOMLNetMetaInitV2),
    ("Omniglot", "MetaFeat", BOMLNetMetaFeatV2), ("Mini", "MetaFeat", BOMLNetMetaFeatV2),
    ("Synthetic", "MetaInit", BOMLNetMetaInitV2), ("Synthetic", "MetaFeat", BOMLNetMetaFeatV2),
])
def test_meta_model_v2_selects_the_residual_networks(dataset_name, method, expected):
    shape = {"Omniglot": (28, 28, 1), "Mini": (84, 84, 3), "Synthetic": (8, 8, 2)}[dataset_name]
    dataset = boml.meta_synthetic(num_classes=N, examples_train=1, examples_test=1, image_shape=shape,
                                  n_classes=(N, N, N), examples_per_class=2, name=dataset_name)
    ex = boml.BOMLExperiment(dataset)
    boml_ho = boml.BOMLOptimizer(method, "Simple" if method == "MetaInit" else "Trad",
                                 "Simple" if method == "MetaInit" else "Reverse")
    net = boml_ho.meta_learner(ex.x, dataset, meta_model="v2")
    assert type(net) is expected
    widths = {"Omniglot": [64, 96], "Mini": [64, 96, 128, 256], "Synthetic": [64, 96, 128, 256]}[dataset_name]
    assert net.dim_resnet == widths and net.channels == shape[-1]
    assert net.head_pool == (6 if dataset_name == "Mini" else None)
    if method == "MetaInit":
        task = boml_ho.base_learner(ex.x, net)
        assert type(task) is expected and len(task.var_list) == len(net.outer_param_dict)
        assert net.out.shape.as_list() == [None, N]


def test_networks_are_registered():
    expected = {
        "OmniglotMetaInitV2": BOMLNetOmniglotMetaInitV2, "MiniMetaInitV2": BOMLNetMiniMetaInitV2,
        "MetaInitV2": BOMLNetMetaInitV2, "OmniglotMetaFeatV2": BOMLNetOmniglotMetaFeatV2,
        "MiniMetaFeatV2": BOMLNetMiniMetaFeatV2, "MetaFeatV2": BOMLNetMetaFeatV2,
    }
    for name, network in expected.items():
        assert extension.NETWORKS.get(name) is network


class Built:
    """A facade construction in its own graph and session, shared by the tests of one module."""

    def __init__(self, method, inner, outer, T, lr):
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.set_random_seed(0)
            self.dataset = tiny_dataset()
            self.lr = lr
            self.boml_ho, self.ex, self.meta, self.inner_objective = build_v2(
                method, inner, outer, self.dataset, dtype=tf.float64, T=T, lr=lr,
                ul={"outer_objective_optimizer": "SGD"})
            self.boml_ho.aggregate_all()
            config = tf.ConfigProto()
            # Grappler would spend most of each first run optimizing the unrolled graph; the math is the same.
            config.graph_options.rewrite_options.disable_meta_optimizer = True
            self.session = tf.Session(graph=self.graph, config=config)
            self.feed = episode_feed(self.ex, self.dataset)

    def param(self, key):
        return self.meta.outer_param_dict.get(key, self.meta.model_param_dict.get(key))


@pytest.fixture(scope="module")
def maml64():
    """MAML (MetaInit/Simple/Simple) on a tiny float64 V2 network, T=2."""
    built = Built("MetaInit", "Simple", "Simple", T=2, lr=0.3)
    yield built
    built.session.close()


@pytest.fixture(scope="module")
def reverse64():
    """RHG (MetaFeat/Trad/Reverse) on a tiny float64 V2 network, T=3."""
    built = Built("MetaFeat", "Trad", "Reverse", T=3, lr=0.5)
    yield built
    built.session.close()


def test_inner_step_changes_exactly_the_task_copies(maml64):
    """One MAML inner step moves every task copy by -lr * gradient and nothing else."""
    b = maml64
    session, ex, meta = b.session, b.ex, b.meta
    with b.graph.as_default():
        copies = ex.model.var_list
        assert [v.name for v in copies] == [f"task_net/{k}:0" for k in meta.outer_param_dict]
        assert refs(copies).isdisjoint(refs(meta.model_param_dict.values()))  # batch norm is not in the state
        adapted = b.boml_ho.adapted([tf.identity(v) for v in copies], T=1)
        grads = tf.gradients(b.inner_objective, copies)
        session.run(tf.global_variables_initializer())
        meta_before = session.run(meta.meta_parameters)
        after = session.run(adapted, b.feed)
        start = session.run(list(meta.outer_param_dict.values()))
        for task in range(2):
            support = {ex.x: b.feed[ex.x_batch][task], ex.y: b.feed[ex.y_batch][task]}
            for name, theta0, theta1, g in zip(meta.outer_param_dict, start, after, session.run(grads, support)):
                assert np.max(np.abs(g)) > 1e-8, name  # every copy moves
                np.testing.assert_allclose(theta1[task], theta0 - b.lr * g, rtol=1e-10, atol=1e-12, err_msg=name)
        for before, now in zip(meta_before, session.run(meta.meta_parameters)):
            np.testing.assert_array_equal(before, now)  # adaptation does not touch the meta-parameters


def _check_against_finite_differences(b, keys, coords=2, eps=1e-6, seed=0):
    """Aggregated hypergradient entries vs central differences of the mean outer loss (float64)."""
    session, params = b.session, [b.param(k) for k in keys]
    with b.graph.as_default():
        pairs = {v.ref(): g for g, v in b.boml_ho.outergradient.outer_grads_and_vars()}
        loss = tf.reduce_mean(b.boml_ho.outergradient.outer_losses)
        session.run(tf.global_variables_initializer())
        hypergradients = session.run([pairs[p.ref()] for p in params], b.feed)
        rand = np.random.RandomState(seed)
        errors = {}
        for param, hg in zip(params, hypergradients):
            value = session.run(param)
            picks = [tuple(rand.randint(d) for d in value.shape) for _ in range(coords)]
            numeric = []
            for index in picks:
                values = []
                for sign in (1.0, -1.0):
                    shifted = value.copy()
                    shifted[index] += sign * eps
                    param.load(shifted, session)
                    values.append(session.run(loss, b.feed))
                param.load(value, session)
                numeric.append((values[0] - values[1]) / (2 * eps))
            analytic, numeric = np.array([hg[index] for index in picks]), np.array(numeric)
            assert np.max(np.abs(numeric)) > 1e-7, param.name  # a meaningful check
            errors[param.name] = np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)
    assert max(errors.values()) < 1e-5, errors
    return errors


def test_maml_v2_hypergradient_equals_finite_differences(maml64):
    _check_against_finite_differences(maml64, ["res0_id", "res0_conv1", "res1_id", "res1_conv2", "head_conv1",
                                               "head_bias2", "fc_weight", "res0_bn0_offset", "res1_bn2_scale"])


def test_reverse_meta_feat_v2_hypergradient_equals_finite_differences(reverse64):
    _check_against_finite_differences(reverse64, ["res0_id", "res0_id_bias", "res0_conv0", "res1_id",
                                                  "res1_conv2", "head_conv1", "head_bias2", "res0_bn1_offset",
                                                  "res1_bn0_scale"])


@pytest.mark.parametrize("built", ["maml64", "reverse64"])
def test_one_meta_iteration_updates_every_meta_parameter(request, built):
    """Every meta-parameter learns: skip convs, batch-norm offsets and scales included."""
    b = request.getfixturevalue(built)
    with b.graph.as_default():
        b.session.run(tf.global_variables_initializer())
        b.boml_ho.sync_step(b.session)
        before = b.session.run(b.meta.meta_parameters)
        inner_fd, outer_fd = b.ex.feed_dicts(b.dataset.train.generate_batch(2, rand=np.random.RandomState(1)))
        losses = b.boml_ho.run(inner_fd, outer_fd, session=b.session)
        assert np.isfinite(losses["outer_loss"])
        after = b.session.run(b.meta.meta_parameters)
    frozen = [p.name for p, old, new in zip(b.meta.meta_parameters, before, after) if np.array_equal(old, new)]
    assert frozen == []


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("factory", [BOMLNetOmniglotMetaInitV2, BOMLNetOmniglotMetaFeatV2])
@pytest.mark.parametrize("flag", ["use_t", "use_warp"])
def test_t_and_warp_layers_are_rejected(factory, flag):
    with pytest.raises(InvalidArgumentError, match=f"{flag}=True is not supported.*meta_model='V1'"):
        factory(omniglot_input(), dim_output=N, **{flag: True})


def test_bad_arguments_raise_typed_errors():
    x = omniglot_input()
    with pytest.raises(InvalidArgumentError, match="dim_resnet"):
        BOMLNetMetaInitV2(x, N, dim_resnet=[])
    with pytest.raises(InvalidArgumentError, match="not both"):
        BOMLNetMetaFeatV2(x, dim_resnet=(4,), dim_hidden=(4,))
    with pytest.raises(InvalidArgumentError, match="head_dims"):
        BOMLNetMetaInitV2(x, N, head_dims=(8,))
    with pytest.raises(InvalidArgumentError, match="head_pool"):
        BOMLNetMetaFeatV2(x, head_pool=0)
    with pytest.raises(InvalidArgumentError, match="dim_output"):
        BOMLNetOmniglotMetaInitV2(x, 0)
    with pytest.raises(InvalidArgumentError, match="norm"):
        BOMLNetOmniglotMetaFeatV2(x, norm="layer_norm")
    with pytest.raises(InvalidArgumentError, match="data_type"):
        BOMLNetOmniglotMetaInitV2(x, N, data_type=tf.int32)
    with pytest.raises(ShapeError, match="rank-4"):
        BOMLNetOmniglotMetaInitV2(tf.placeholder(tf.float32, [None, 784]), N)
    with pytest.raises(ShapeError, match="channels=3"):
        BOMLNetMiniMetaFeatV2(x)
    with pytest.raises(ShapeError, match="smaller than the 6x6"):
        BOMLNetMiniMetaInitV2(tf.placeholder(tf.float32, [None, 32, 32, 3]), N)
    with pytest.raises(ShapeError, match="static"):
        BOMLNetMiniMetaInitV2(tf.placeholder(tf.float32, [None, None, None, 3]), N)
    # global pooling accepts any image size
    BOMLNetMetaInitV2(tf.placeholder(tf.float32, [None, None, None, 1]), N, dim_resnet=(4,), head_dims=(4, 4))


def test_base_learner_must_match_the_meta_learner():
    x = omniglot_input()
    meta = BOMLNetOmniglotMetaInitV2(x, N, name="meta", dim_resnet=(4, 4), head_dims=(8, 4))
    with pytest.raises(InvalidArgumentError, match="model_param_dict"):
        BOMLNetOmniglotMetaInitV2(x, N, name="task", outer_param_dict=meta.outer_param_dict,
                                  dim_resnet=(4, 4), head_dims=(8, 4))
    with pytest.raises(ShapeError, match="fc_weight"):
        BOMLNetOmniglotMetaInitV2(x, N + 1, name="task", outer_param_dict=meta.outer_param_dict,
                                  model_param_dict=meta.model_param_dict, dim_resnet=(4, 4), head_dims=(8, 4))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        BOMLNetOmniglotMetaInitV2(x, N, name="task", outer_param_dict=meta.outer_param_dict,
                                  model_param_dict=meta.model_param_dict, dim_resnet=(4, 4), head_dims=(8, 4),
                                  data_type=tf.float64)


def test_reuse_true_finds_the_same_variables():
    x = omniglot_input()
    for factory in (BOMLNetOmniglotMetaInitV2, BOMLNetOmniglotMetaFeatV2):
        first = factory(x, dim_output=N, name=f"shared_{factory.__name__}", dim_resnet=(4,), head_dims=(4, 4))
        again = factory(x, dim_output=N, name=f"shared_{factory.__name__}", dim_resnet=(4,), head_dims=(4, 4),
                        reuse=True)
        assert again.meta_parameters == first.meta_parameters
