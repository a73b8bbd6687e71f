"""MAML, FOMAML and Meta-SGD meta-gradients against exact math (float64)."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import bilevel_toys as toys


def _grads(session, pairs):
    session.run(tf.global_variables_initializer())
    return {v.name.split(":")[0].split("/")[-1]: session.run(g) for g, v in pairs}


@pytest.mark.parametrize("T", [1, 3])
def test_maml_equals_finite_differences(session, T):
    d = toys.make_maml_data()
    _, pairs = toys.build_maml_toy(d, T=T, lr=0.3)
    hg = _grads(session, pairs)["x"]

    def objective(x):
        theta, _ = toys.maml_unroll(x, d, T, 0.3)
        return toys.maml_loss(theta, d["Xq"], d["bq"])

    assert toys.relative_error(hg, toys.central_difference(objective, d["x"])) < 1e-6


def test_fomaml_equals_stop_gradient_formula(session):
    d = toys.make_maml_data(seed=1)
    T, lr = 3, 0.3
    _, pairs = toys.build_maml_toy(d, T=T, lr=lr, first_order=True)
    hg = _grads(session, pairs)["x"]
    theta_T, _ = toys.maml_unroll(d["x"], d, T, lr)
    expected = toys.maml_grad(theta_T, d["Xq"], d["bq"])
    assert toys.relative_error(hg, expected) < 1e-10
    # ... and differs from the second-order meta-gradient on this problem.
    full = toys.central_difference(lambda x: toys.maml_loss(toys.maml_unroll(x, d, T, lr)[0], d["Xq"], d["bq"]),
                                   d["x"])
    assert toys.relative_error(hg, full) > 1e-3


@pytest.mark.parametrize("granularity", ["element", "scalar"])
def test_meta_sgd_step_size_hypergradient_equals_finite_differences(session, granularity):
    d = toys.make_maml_data(seed=2)
    T, lr = 3, 0.25
    _, pairs = toys.build_maml_toy(d, T=T, lr=lr, learn_lr=True, lr_granularity=granularity)
    grads = _grads(session, pairs)
    lr_grad = grads["lr_0" if granularity == "element" else "lr"]
    lr0 = np.full(len(d["x"]), lr) if granularity == "element" else np.asarray(lr)

    def objective(rates):
        theta, _ = toys.maml_unroll(d["x"], d, T, rates)
        return toys.maml_loss(theta, d["Xq"], d["bq"])

    assert np.shape(lr_grad) == np.shape(lr0)
    assert toys.relative_error(lr_grad, toys.central_difference(objective, lr0)) < 1e-6
    x_reference = toys.central_difference(
        lambda x: toys.maml_loss(toys.maml_unroll(x, d, T, lr0)[0], d["Xq"], d["bq"]), d["x"])
    assert toys.relative_error(grads["x"], x_reference) < 1e-6


def test_fomaml_learned_step_size_gradient(session):
    d = toys.make_maml_data(seed=3)
    T, lr = 3, 0.25
    _, pairs = toys.build_maml_toy(d, T=T, lr=lr, first_order=True, learn_lr=True)
    grads = _grads(session, pairs)
    theta_T, used = toys.maml_unroll(d["x"], d, T, lr)
    outer_grad = toys.maml_grad(theta_T, d["Xq"], d["bq"])
    expected = -np.sum(used, axis=0) * outer_grad
    assert toys.relative_error(grads["lr_0"], expected) < 1e-10
