"""Issue 13, engine side: an update that is not finite is never applied, and no setting is silently wrong."""
import warnings

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors

import bilevel_toys as toys


def _values(session, variables):
    return [np.array(v) for v in session.run(variables)]


def test_a_nan_hypergradient_changes_nothing_and_names_what_diverged(session):
    d = toys.make_data(seed=3)
    scale = tf.placeholder(tf.float64, [], name="scale")
    boml_ho, _, _ = toys.build_toy(d, T=3, lr=0.1)
    boml_ho.aggregate_all(gradient_clip=lambda g: g * scale)  # finite losses, hypergradient scaled by the feed
    session.run(tf.global_variables_initializer())
    boml_ho.run(initializer_feed_dict={scale: 1.0}, session=session)  # Adam's slots are non-zero from here on
    watched = tf.global_variables()  # W, the task variable, Adam's m/v/beta powers, the global step
    before = _values(session, watched)
    with pytest.raises(errors.DivergenceError) as caught:
        boml_ho.run(initializer_feed_dict={scale: np.nan}, session=session)
    message = str(caught.value)
    assert "meta-iteration 1 produced non-finite values in: hypergradient of W (losses" in message
    assert "meta_learning_rate=0.00099999" in message and "inner learning_rate=0.1" in message
    for name, old, new in zip([v.name for v in watched], before, _values(session, watched)):
        np.testing.assert_array_equal(new, old, err_msg=name)
    boml_ho.run(initializer_feed_dict={scale: 1.0}, session=session)  # the run continues at the same iteration
    assert session.run(boml_ho.global_step) == 2


def test_float64_meta_parameters_get_a_float64_meta_learning_rate(session):
    d = toys.make_data(seed=5)
    boml_ho, _, _ = toys.build_toy(d, T=2, lr=0.1, outer_objective_optimizer="SGD")
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    (grad, W), = boml_ho.hypergradients
    w0, g0 = session.run([W, grad])
    boml_ho.run(session=session)
    np.testing.assert_allclose(w0 - session.run(W), 1e-3 * g0, rtol=1e-9)  # float32(1e-3) is off by 5e-8


def test_float64_outer_adam_is_the_float64_update(session):
    d = toys.make_data(seed=6)
    boml_ho, _, _ = toys.build_toy(d, T=2, lr=0.1)  # outer Adam, meta learning rate 1e-3
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    (grad, W), = boml_ho.hypergradients
    w0, g0 = session.run([W, grad])
    boml_ho.run(session=session)
    lr_t = 1e-3 * np.sqrt(1 - 0.999) / (1 - 0.9)  # first step: m = 0.1 g, v = 0.001 g^2
    step = lr_t * 0.1 * g0 / (np.sqrt(0.001 * g0 ** 2) + 1e-8)
    np.testing.assert_allclose(w0 - session.run(W), step, rtol=1e-11)  # with float32 beta powers: off by 1e-10


def test_an_error_of_the_users_own_graph_is_not_disguised(session):
    scale = tf.placeholder(tf.float64, [], name="scale")
    boml_ho, _, _ = toys.build_toy(toys.make_data(), T=2)
    boml_ho.aggregate_all(gradient_clip=lambda g: tf.debugging.check_numerics(g * scale, "user's check"))
    session.run(tf.global_variables_initializer())
    with pytest.raises(tf.errors.InvalidArgumentError, match="user's check"):
        boml_ho.run(initializer_feed_dict={scale: np.nan}, session=session)


def test_truncation_longer_than_T_is_refused():
    with pytest.raises(errors.InvalidArgumentError, match=r"truncate_iter=4 is larger than .* T=3"):
        toys.build_toy(toys.make_data(), T=3, truncate_iter=4)


def test_adapted_needs_a_positive_number_of_steps():
    boml_ho, inner_grad, _ = toys.build_toy(toys.make_data(), T=3)
    y = inner_grad.var_list[0]
    for T in (0, -3, 2.5):
        with pytest.raises(errors.InvalidArgumentError, match=f"received T={T!r}"):
            boml_ho.adapted(y, T=T)


def test_a_negative_learning_rate_tensor_is_refused_in_graph(session):
    lr = tf.placeholder(tf.float64, [], name="inner_lr")
    boml_ho, _, _ = toys.build_toy(toys.make_data(), T=3, lr=lr)
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    boml_ho.run({lr: 0.1}, session=session)
    with pytest.raises(errors.InvalidArgumentError, match="learning_rate tensor given to ll_problem must be positive"):
        boml_ho.run({lr: -1.0}, session=session)


def test_a_missing_placeholder_is_named(session):
    d = toys.make_data()
    shift = tf.placeholder(tf.float64, [], name="query_shift")
    boml_ho, _, _ = toys.build_toy(d, T=2)
    boml_ho.aggregate_all(gradient_clip=lambda g: g + 0 * shift)
    session.run(tf.global_variables_initializer())
    with pytest.raises(errors.InvalidArgumentError, match="placeholder 'query_shift'"):
        boml_ho.run(session=session)


@pytest.mark.parametrize("setting, match", [({"alpha": 2.0}, "alpha_init must be a number in"),
                                            ({"alpha": -0.1}, "alpha_init must be a number in"),
                                            ({"s": -1.0}, "s must be a positive"),
                                            ({"t": 0.0}, "t must be a positive")])
def test_bda_parameters_outside_their_range_are_refused(setting, match):
    with pytest.raises(errors.InvalidArgumentError, match=match):
        toys.build_toy(toys.make_data(), inner_method="Aggr", T=2, **setting)


def test_the_network_takes_the_experiment_dtype():
    dataset = boml.meta_synthetic(num_classes=3, examples_train=1, examples_test=2, image_shape=(6, 6, 1), seed=0)
    ex = boml.BOMLExperiment(dataset, dtype=tf.float64)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    net = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", dim_hidden=(4,))
    assert {v.dtype.base_dtype for v in net.outer_param_dict.values()} == {tf.float64}
    assert net.out.dtype.base_dtype == tf.float64
    with pytest.raises(errors.InvalidArgumentError, match=r"data_type=float32\) does not match .* float64"):
        boml_ho.meta_learner(ex.x, dataset, meta_model="V1", name="other", dim_hidden=(4,), data_type=tf.float32)


def _inner_value(y, W, d):
    return 0.5 * np.sum((d["X"] @ W @ y - d["b"]) ** 2) + 0.5 * toys.RHO * np.sum(y ** 2)


def test_an_inner_loop_that_raises_its_objective_is_reported(session):
    d = toys.make_data(seed=7)
    boml_ho, _, _ = toys.build_toy(d, T=3, lr=50.0, outer_objective_optimizer="SGD")
    boml_ho.aggregate_all(gradient_clip=lambda g: 0.0 * g)  # W stays put: every meta-iteration diverges alike
    session.run(tf.global_variables_initializer())
    W = session.run(tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS)[0])
    start, end = _inner_value(np.zeros(d["k"]), W, d), _inner_value(toys.unroll(W, d, 3, 50.0)[0], W, d)
    assert np.isfinite(end) and end > 10 * start  # finite losses: no DivergenceError, only this report
    with pytest.warns(errors.InnerDivergenceWarning) as caught:
        boml_ho.run(session=session)
    message = str(caught[0].message)
    assert caught[0].filename == __file__  # the warning names the caller of run()
    assert f"from {start:.6g} (episode start) to {end:.6g}" in message and "learning_rate=50" in message
    reported = []
    for _ in range(4):  # meta-iterations 2..5: reported at the 2nd and 4th such iteration only
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            boml_ho.run(session=session)
        reported.append(any(issubclass(w.category, errors.InnerDivergenceWarning) for w in seen))
    assert reported == [True, False, True, False]


def test_a_converging_inner_loop_is_not_reported(session):
    d = toys.make_data(seed=7)
    boml_ho, _, _ = toys.build_toy(d, T=3, lr=0.05, outer_objective_optimizer="SGD")
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        boml_ho.run(session=session)
    assert not [w for w in seen if issubclass(w.category, errors.InnerDivergenceWarning)]
