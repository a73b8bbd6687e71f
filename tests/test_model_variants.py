"""Reptile, inner-objective regularization and MT-net's learned update mask."""
import numpy as np
import tensorflow.compat.v1 as tf

import boml
from boml import extension

import bilevel_toys as toys


def _by_name(session, pairs):
    return {v.name.split(":")[0].split("/")[-1]: session.run(g) for g, v in pairs}


def test_reptile_hypergradient_is_initialization_minus_adapted_weights(session):
    d = toys.make_maml_data(seed=4)
    _, pairs = toys.build_maml_toy(d, T=4, lr=0.3, outer_method="Reptile")
    session.run(tf.global_variables_initializer())
    theta_T, _ = toys.maml_unroll(d["x"], d, 4, 0.3)
    np.testing.assert_allclose(_by_name(session, pairs)["x"], d["x"] - theta_T, rtol=1e-10, atol=1e-12)


def _ridge_with_penalty(session, l1, l2, T=4, lr=0.1):
    d = toys.make_data(seed=5)
    X, b = tf.constant(d["X"]), tf.constant(d["b"])
    W = extension.get_outerparameter("W", d["W"])
    y = tf.get_variable("y", initializer=tf.constant(np.linspace(-1, 1, d["k"])), trainable=False)
    inner = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(X, W), y) - b))
    outer = 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(tf.constant(d["Xq"]), W), y) - d["bq"]))
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    inner_grad = boml_ho.ll_problem(inner, lr, T, var_list=[y], l1_reg=l1, l2_reg=l2)
    boml_ho.ul_problem(outer, 1e-3, inner_grad, meta_param=[W])
    adapted = boml_ho.adapted(tf.identity(y))
    pairs = boml_ho.outergradient.outer_grads_and_vars()
    session.run(tf.global_variables_initializer())

    def unroll(Wv):
        yv = np.linspace(-1, 1, d["k"])
        for _ in range(T):
            A = d["X"] @ Wv
            yv = yv - lr * (A.T @ (A @ yv - d["b"]) + l2 * yv + l1 * np.sign(yv))
        return yv

    return d, session.run(adapted)[0], session.run(pairs[0][0]), unroll


def test_l2_penalty_applied_at_every_inner_step(session):
    d, adapted, hg, unroll = _ridge_with_penalty(session, 0.0, 0.7)
    np.testing.assert_allclose(adapted, unroll(d["W"]), rtol=1e-12)
    reference = toys.central_difference(lambda W: toys.outer_value(unroll(W), W, d), d["W"])
    assert toys.relative_error(hg, reference) < 1e-6


def test_l1_penalty_applied_at_every_inner_step(session):
    d, adapted, _, unroll = _ridge_with_penalty(session, 0.2, 0.0)
    np.testing.assert_allclose(adapted, unroll(d["W"]), rtol=1e-12)


def test_mt_net_mask_freezes_masked_units_and_learns(session):
    d = toys.make_maml_data(seed=6)
    boml_ho, _ = toys.build_maml_toy(d, T=3, lr=0.3, use_mask=True, mask_init=0.0)
    inner_grad = boml_ho._inner_grads[0]
    theta = inner_grad.var_list[0]
    adapted = boml_ho.adapted(tf.identity(theta))
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    logits = inner_grad.mask_logits[0]
    pattern = np.array([3.0, -3.0, 3.0, -3.0])
    logits.load(pattern, session)
    theta_T = session.run(adapted)[0]
    frozen = pattern < 0
    np.testing.assert_array_equal(theta_T[frozen], d["x"][frozen])
    assert np.all(np.abs(theta_T[~frozen] - d["x"][~frozen]) > 1e-4)
    # The expected adapted weights: masked gradient steps in numpy.
    expected = np.array(d["x"], float)
    for _ in range(3):
        expected = expected - 0.3 * toys.maml_grad(expected, d["X"], d["b"]) * (~frozen)
    np.testing.assert_allclose(theta_T, expected, rtol=1e-10)
    # The mask logits are meta-parameters that receive hypergradients and move.
    logits.load(np.zeros(4), session)
    before = session.run(logits)
    for _ in range(5):
        boml_ho.run(session=session)
    assert not np.allclose(session.run(logits), before)


def _warp_setup(warp_objective, warp_lambda):
    dataset = boml.meta_synthetic(num_classes=2, examples_train=2, examples_test=2, image_shape=(6, 6, 1),
                                  n_classes=(4, 2, 2), examples_per_class=6)
    ex = boml.BOMLExperiment(dataset, dtype=tf.float64)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    meta = boml_ho.meta_learner(ex.x, dataset, use_warp=True, dim_hidden=(3, 3), data_type=tf.float64)
    ex.model = boml_ho.base_learner(ex.x, meta)
    inner = boml.utils.cross_entropy(ex.model.out, ex.y)
    outer = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
    inner_grad = boml_ho.ll_problem(inner, 0.3, 2, experiment=ex)
    boml_ho.ul_problem(outer, 0.01, inner_grad, warp_objective=warp_objective, warp_lambda=warp_lambda)
    pairs = boml_ho.outergradient.outer_grads_and_vars()
    feed = {**ex.feed_dicts(dataset.train.generate_datasets(rand=1))[0],
            **ex.feed_dicts(dataset.train.generate_datasets(rand=1))[1]}
    return meta, ex, inner, outer, pairs, feed


def test_warpgrad_trajectory_objective(session):
    """Warp layers learn from one warped step beyond each fixed point of the trajectory."""
    from boml.substitute import substitute

    meta, ex, inner, outer, pairs, feed = _warp_setup("trajectory", 0.5)
    thetas, eta = ex.model.var_list, 0.3
    sources = ex.model.initial_state
    point = [tf.stop_gradient(tf.identity(x)) for x in sources]
    lookahead = []
    for _ in range(2):
        grads = tf.gradients(substitute(inner, list(zip(thetas, point))), point)
        stepped = [p - eta * g for p, g in zip(point, grads)]
        lookahead.append(substitute(outer, list(zip(thetas, stepped))))
        point = [tf.stop_gradient(p) for p in stepped]
    warp_params = [v for v in meta.model_param_dict.values() if "_z" in v.name]
    assert warp_params
    expected_warp = tf.gradients(tf.add_n(lookahead), warp_params)
    final = [tf.identity(p) for p in point]
    expected_init = tf.gradients(substitute(outer, list(zip(thetas, final))), final)
    session.run(tf.global_variables_initializer())
    got = {v.ref(): g for g, v in pairs}
    values = session.run({"warp": [got[p.ref()] for p in warp_params], "warp_ref": expected_warp,
                          "init": [got[p.ref()] for p in sources], "init_ref": expected_init}, feed)
    for value, reference in zip(values["warp"], values["warp_ref"]):
        np.testing.assert_allclose(value, reference, rtol=1e-9, atol=1e-12)
    for value, reference in zip(values["init"], values["init_ref"]):
        np.testing.assert_allclose(value, 0.5 * reference, rtol=1e-9, atol=1e-12)


def test_warp_lambda_scales_the_initialization_in_the_unrolled_variant(session):
    _, ex, _, _, pairs_half, feed = _warp_setup("unrolled", 0.5)
    session.run(tf.global_variables_initializer())
    half = dict(zip([v.name for _, v in pairs_half], session.run([g for g, _ in pairs_half], feed)))
    with tf.Graph().as_default(), tf.Session() as other:
        tf.set_random_seed(0)
        _, _, _, _, pairs_one, feed_one = _warp_setup("unrolled", 1.0)
        other.run(tf.global_variables_initializer())
        names = {v.name for _, v in pairs_one}
        assert names == set(half)
        # Same seeds: the initial values agree, so the hypergradients compare directly.
        one = dict(zip([v.name for _, v in pairs_one], other.run([g for g, _ in pairs_one], feed_one)))
    conv = [n for n in half if n.endswith("conv0:0")][0]
    warp = [n for n in half if n.endswith("conv0_z:0")][0]
    np.testing.assert_allclose(half[conv], 0.5 * one[conv], rtol=1e-9)
    np.testing.assert_allclose(half[warp], one[warp], rtol=1e-9)
