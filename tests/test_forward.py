"""Forward-mode hypergradients (outer_method="Forward") against Reverse and numpy finite
differences, in float64, on the engine's exact-math toys (tests/bilevel_toys.py)."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import bilevel_toys as toys
import boml
from boml.errors import DetachedOuterParameterError, InvalidArgumentError, InvalidCombinationError
from boml.upper_iter import BOMLOuterGradForward


def _name(var):
    return var.name.split("/")[-1].split(":")[0]


def _both_methods(build, **kwargs):
    """Hypergradients {param name: value} and the outer loss of Forward and of Reverse."""
    results = {}
    for method in ("Forward", "Reverse"):
        with tf.Graph().as_default(), tf.Session() as sess:
            boml_ho, _, pairs = build(outer_method=method, **kwargs)
            sess.run(tf.global_variables_initializer())
            grads = {_name(v): sess.run(g) for g, v in pairs}
            results[method] = (grads, sess.run(boml_ho.outergradient.outer_losses)[0])
    return results["Forward"], results["Reverse"]


def _assert_same(forward, reverse, rtol=1e-11):
    (fg, f_loss), (rg, r_loss) = forward, reverse
    assert set(fg) == set(rg)
    for key in rg:
        assert toys.relative_error(fg[key], rg[key]) < rtol, key
    assert abs(f_loss - r_loss) <= 1e-13 * max(1.0, abs(r_loss))


@pytest.mark.parametrize("optimizer,lr", [("SGD", 0.1), ("Momentum", 0.08), ("Adam", 0.05)])
def test_forward_equals_reverse_and_finite_differences(optimizer, lr):
    d = toys.make_data(seed=11)
    T = 6
    forward, reverse = _both_methods(lambda **k: toys.build_toy(d, **k), T=T, lr=lr, optimizer=optimizer)
    _assert_same(forward, reverse)

    def objective(W):
        y, _ = toys.unroll(W, d, T, lr, optimizer)
        return toys.outer_value(y, W, d)

    assert toys.relative_error(forward[0]["W"], toys.central_difference(objective, d["W"])) < 1e-6


@pytest.mark.parametrize("optimizer,per_step", [("SGD", False), ("Momentum", True), ("Adam", True)])
def test_forward_bda_with_learned_alpha_s_t(optimizer, per_step):
    d = toys.make_data(seed=12)
    T, lr, alpha0, s0, t0 = 5, 0.08, 0.4, 0.8, 1.2
    forward, reverse = _both_methods(
        lambda **k: toys.build_toy(d, inner_method="Aggr", **k), T=T, lr=lr, optimizer=optimizer, alpha=alpha0,
        learn_alpha=not per_step, learn_alpha_itr=per_step, learn_st=True, s=s0, t=t0)
    _assert_same(forward, reverse)
    grads = forward[0]
    alpha_init = np.full(T, alpha0) if per_step else alpha0

    def objective(W=d["W"], alpha=alpha_init, s=s0, t=t0):
        y, _ = toys.unroll(W, d, T, lr, optimizer, alpha=alpha, s=s, t=t)
        return toys.outer_value(y, W, d)

    assert toys.relative_error(grads["W"], toys.central_difference(objective, d["W"])) < 1e-6
    assert toys.relative_error(grads["alpha"], toys.central_difference(lambda a: objective(alpha=a),
                                                                        np.asarray(alpha_init))) < 1e-6
    assert toys.relative_error(grads["s"], toys.central_difference(lambda s: objective(s=float(s)),
                                                                    np.asarray(s0))) < 1e-6
    assert toys.relative_error(grads["t"], toys.central_difference(lambda t: objective(t=float(t)),
                                                                    np.asarray(t0))) < 1e-6


@pytest.mark.parametrize("optimizer,granularity", [("SGD", "scalar"), ("Momentum", "element"), ("Adam", "tensor")])
def test_forward_with_learned_step_size_and_learned_start(optimizer, granularity):
    d = dict(toys.make_data(seed=13), y0=np.array([0.3, -0.2, 0.5]))
    T, lr = 5, 0.07
    forward, reverse = _both_methods(lambda **k: toys.build_toy_with_start(d, **k), T=T, lr=lr,
                                     optimizer=optimizer, learn_lr=True, lr_granularity=granularity)
    _assert_same(forward, reverse)
    grads = forward[0]
    lr_key = "lr" if granularity == "scalar" else "lr_0"
    lr0 = np.full(3, lr) if granularity == "element" else np.asarray(lr)

    def objective(W=d["W"], y0=d["y0"], rate=lr0):
        y, _ = toys.unroll(W, d, T, rate, optimizer, y0=y0)
        return toys.outer_value(y, W, d)

    assert toys.relative_error(grads["W"], toys.central_difference(objective, d["W"])) < 1e-6
    assert toys.relative_error(grads["y_start"], toys.central_difference(lambda y0: objective(y0=y0), d["y0"])) < 1e-6
    fd_lr = toys.central_difference(lambda r: objective(rate=r if r.ndim else float(r)), lr0, h=1e-6)
    assert toys.relative_error(grads[lr_key], fd_lr) < 1e-6


def test_forward_first_order_equals_reverse_first_order():
    d = dict(toys.make_data(seed=14), y0=np.array([0.1, 0.4, -0.3]))
    forward, reverse = _both_methods(lambda **k: toys.build_toy_with_start(d, **k), T=4, lr=0.1,
                                     first_order=True, learn_lr=True)
    _assert_same(forward, reverse)


def test_forward_runs_meta_iterations_and_decreases_the_outer_loss(session):
    d = toys.make_data(seed=15)
    boml_ho, _, _ = toys.build_toy(d, outer_method="Forward", T=5, lr=0.1)
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    losses = [boml_ho.run(session=session)["outer_loss"] for _ in range(30)]
    assert losses[-1] < losses[0]


def test_forward_refuses_too_many_hyperparameters():
    d = toys.make_data(seed=16)  # W has 4 x 3 = 12 components
    with pytest.raises(InvalidArgumentError, match="forward_max_dim=10.*Reverse"):
        toys.build_toy(d, outer_method="Forward", forward_max_dim=10)


def test_forward_rejects_bad_settings():
    with pytest.raises(InvalidArgumentError, match="forward_max_dim"):
        BOMLOuterGradForward(forward_max_dim=0)
    with pytest.raises(InvalidArgumentError, match="truncate_iter"):
        boml.BOMLOptimizer("MetaFeat", "Trad", "Forward", truncate_iter=2)
    with pytest.raises(InvalidCombinationError):
        boml.BOMLOptimizer("MetaInit", "Simple", "Forward")


def test_forward_detects_a_detached_meta_parameter():
    d = toys.make_data(seed=17)
    boml.extension.get_outerparameter("unused", np.ones(2))
    with pytest.raises(DetachedOuterParameterError, match="unused"):
        toys.build_toy(d, outer_method="Forward")
