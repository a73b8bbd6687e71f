"""MAML++'s per-step batch norm (weights and running statistics), LSLR at evaluation and the cosine meta-lr
schedule, each against its definition in float64: numpy unrolls with the batch-norm backward pass written out,
central differences, numpy moving averages and the cosine formula."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import bilevel_toys as toys
import boml
from boml import extension
from boml.errors import InvalidArgumentError, InvalidCombinationError, UnknownNameError
from boml.setup_model.network_utils import BATCH_NORM_EPSILON, batch_norm

T, LR, EPS = 3, 0.3, BATCH_NORM_EPSILON


def _bn_data(seed=3):
    rng = np.random.RandomState(seed)
    return {"X": rng.randn(6, 3), "b": 0.5 * rng.randn(6, 2), "Xq": rng.randn(8, 3), "bq": 0.5 * rng.randn(8, 2),
            "W": 0.5 * rng.randn(3, 2), "beta": np.array([0.1, -0.2]), "gamma": np.array([1.2, 0.8])}


def _np_bn(h, beta, gamma, mean=None, var=None):
    mean = h.mean(0) if mean is None else mean
    var = ((h - mean) ** 2).mean(0) if var is None else var
    xhat = (h - mean) / np.sqrt(var + EPS)
    return gamma * xhat + beta, xhat, var


def _np_loss(W, X, b, beta, gamma, stats=None):
    y, _, _ = _np_bn(X @ W, beta, gamma, *(stats or (None, None)))
    return 0.5 * np.sum((np.tanh(y) - b) ** 2)


def _np_grad(W, X, b, beta, gamma):
    """d loss / d W through the batch statistics (the batch-norm backward pass written out)."""
    y, xhat, var = _np_bn(X @ W, beta, gamma)
    dy = (np.tanh(y) - b) * (1 - np.tanh(y) ** 2)
    dxhat = dy * gamma
    dh = (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0)) / np.sqrt(var + EPS)
    return X.T @ dh


def _np_unroll(W, d, betas, gammas, rates, steps):
    """theta_t = theta_{t-1} - r_t grad f(theta_{t-1}; beta[row], gamma[row]), row = min(t, T) - 1."""
    for t in range(1, steps + 1):
        row = min(t, len(betas)) - 1
        W = W - rates[row] * _np_grad(W, d["X"], d["b"], betas[row], gammas[row])
    return W


def _build_bn(d, steps=T, meta_lr=1e-3, **ul_options):
    """The tiny batch-normalised MAML++ problem; returns the optimizer, the lower strategy, the query loss,
    the shared ``(offset, scale)`` and the meta-initialisation ``xW``."""
    xW = extension.get_outerparameter("xW", d["W"])
    offset = extension.get_outerparameter("bn0_offset", d["beta"])
    scale = extension.get_outerparameter("bn0_scale", d["gamma"])
    W = tf.get_variable("W", initializer=tf.zeros([3, 2], tf.float64), trainable=False)

    def loss(X, b):
        return 0.5 * tf.reduce_sum(tf.square(tf.tanh(batch_norm(tf.constant(X) @ W, offset, scale)) - b))

    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "MAML++")
    inner_grad = boml_ho.ll_problem(loss(d["X"], d["b"]), LR, steps, var_list=[W], initial_state=[xW])
    query = loss(d["Xq"], d["bq"])
    boml_ho.ul_problem(query, meta_lr, inner_grad, **dict(dict(per_step_bn_weights=True), **ul_options))
    return boml_ho, inner_grad, query, (offset, scale), xW


def test_per_step_batch_norm_weights_hypergradient_and_evaluation(session):
    d = _bn_data()
    boml_ho, inner_grad, query, shared, _ = _build_bn(d)
    (_, beta_steps), (_, gamma_steps) = boml_ho.outergradient.per_step_bn
    grads = {v.op.name: g for g, v in boml_ho.outergradient.outer_grads_and_vars()}
    assert sorted(grads) == ["bn0_offset", "bn0_offset_per_step", "bn0_scale", "bn0_scale_per_step", "xW"]
    adapted_T, adapted_5 = boml_ho.adapted(query), boml_ho.adapted(query, T=5)
    session.run(tf.global_variables_initializer())
    np.testing.assert_array_equal(session.run(beta_steps), np.tile(d["beta"], [T, 1]))
    np.testing.assert_array_equal(session.run(gamma_steps), np.tile(d["gamma"], [T, 1]))
    rng = np.random.RandomState(0)
    betas, gammas = d["beta"] + 0.3 * rng.randn(T, 2), d["gamma"] + 0.3 * rng.randn(T, 2)
    beta_steps.load(betas, session)
    gamma_steps.load(gammas, session)
    hg = session.run(grads, boml_ho.outergradient.feed_dict(0))
    rates = [LR] * T

    def objective(W=d["W"], bs=betas, gs=gammas):
        final = _np_unroll(W, d, bs, gs, rates, T)
        return _np_loss(final, d["Xq"], d["bq"], bs[-1], gs[-1])  # the query after step T uses row T - 1

    assert not np.any(hg["bn0_offset"]) and not np.any(hg["bn0_scale"])  # no objective reads the shared ones
    assert toys.relative_error(hg["xW"], toys.central_difference(objective, d["W"])) < 1e-6
    assert toys.relative_error(hg["bn0_offset_per_step"],
                               toys.central_difference(lambda v: objective(bs=v), betas)) < 1e-6
    assert toys.relative_error(hg["bn0_scale_per_step"],
                               toys.central_difference(lambda v: objective(gs=v), gammas)) < 1e-6
    # Evaluation adapts with the per-step parameters too; steps beyond T reuse the last row.
    np.testing.assert_allclose(session.run(adapted_T)[0], objective(), rtol=1e-10)
    five = _np_loss(_np_unroll(d["W"], d, betas, gammas, [LR] * T, 5), d["Xq"], d["bq"], betas[-1], gammas[-1])
    np.testing.assert_allclose(session.run(adapted_5)[0], five, rtol=1e-10)


@pytest.mark.parametrize("options,match", [
    ({"per_step_bn_weights": True}, "per_step_bn_weights=True found no batch-norm parameter"),
    ({"per_step_bn_statistics": True}, "per_step_bn_statistics=True found no batch-norm layer"),
    ({"per_step_bn_statistics": True, "bn_momentum": 1.0}, "bn_momentum must be a number in \\[0, 1\\); received 1.0"),
    ({"per_step_bn_statistics": "on"}, "per_step_bn_statistics must be True or False"),
])
def test_per_step_batch_norm_needs_batch_norm_and_good_settings(options, match):
    x = extension.get_outerparameter("x", np.zeros(2))
    theta = tf.get_variable("theta", initializer=tf.zeros([2], tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "MAML++")
    inner_grad = boml_ho.ll_problem(tf.reduce_sum(theta ** 2), 0.1, T, var_list=[theta], initial_state=[x])
    with pytest.raises(InvalidArgumentError, match=match):
        boml_ho.ul_problem(tf.reduce_sum(theta ** 2), 1e-3, inner_grad, **options)


@pytest.mark.parametrize("threshold", [16, 1])  # evaluation unrolled in Python, or one tf.while_loop
def test_lslr_step_sizes_are_used_by_evaluation(session, threshold):
    d = toys.make_maml_data(seed=11)
    x = extension.get_outerparameter("x", d["x"])
    theta = tf.get_variable("theta", initializer=tf.zeros([len(d["x"])], tf.float64), trainable=False)

    def loss(X, b):
        return 0.5 * tf.reduce_sum(tf.square(tf.tanh(tf.linalg.matvec(tf.constant(X), theta)) - tf.constant(b)))

    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "MAML++")
    inner_grad = boml_ho.ll_problem(loss(d["X"], d["b"]), LR, T, var_list=[theta], initial_state=[x],
                                    while_loop_threshold=threshold)
    query = loss(d["Xq"], d["bq"])
    boml_ho.ul_problem(query, 1e-3, inner_grad, meta_param=[x], learn_step_sizes=True)
    adapted = {steps: boml_ho.adapted(query, T=steps) for steps in (2, T, 5)}
    session.run(tf.global_variables_initializer())
    rates = np.array([[0.5], [0.05], [0.25]])
    boml_ho.outergradient.step_sizes.load(rates, session)

    def explicit(steps):
        theta_t = np.array(d["x"], dtype=float)
        for t in range(1, steps + 1):
            theta_t = theta_t - rates[min(t, T) - 1, 0] * toys.maml_grad(theta_t, d["X"], d["b"])
        return toys.maml_loss(theta_t, d["Xq"], d["bq"])

    for steps, tensor in adapted.items():
        np.testing.assert_allclose(session.run(tensor)[0], explicit(steps), rtol=1e-10)
    plain = toys.maml_loss(toys.maml_unroll(d["x"], d, T, LR)[0], d["Xq"], d["bq"])
    assert abs(explicit(T) - plain) > 1e-3  # the learned step sizes matter


def _build_quadratic(**ul_options):
    x = extension.get_outerparameter("x", np.array([1.0, -2.0]))
    theta = tf.get_variable("theta", initializer=tf.zeros([2], tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "MAML++")
    inner_grad = boml_ho.ll_problem(tf.reduce_sum(theta ** 2), 0.1, 1, var_list=[theta], initial_state=[x])
    boml_ho.ul_problem(tf.reduce_sum((theta - 1.0) ** 2), 0.01, inner_grad, outer_objective_optimizer="SGD",
                       **ul_options)
    return boml_ho, x


def test_cosine_meta_learning_rate_follows_the_formula_and_drives_the_update(session):
    period, lr0, lr_min = 8, 0.01, 1e-4
    boml_ho, x = _build_quadratic(meta_lr_schedule="cosine", meta_lr_min=lr_min, meta_lr_period=period)
    run = boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    for k in (0, 2, 4, 7, 8, 30):
        boml_ho.global_step.load(k, session)
        expected = lr_min + (lr0 - lr_min) * (1 + np.cos(np.pi * min(k, period) / period)) / 2
        assert session.run(boml_ho.meta_learning_rate) == pytest.approx(expected, rel=1e-12)
    assert session.run(boml_ho.meta_learning_rate) == pytest.approx(lr_min, rel=1e-12)  # k=30 > P: stays at min
    boml_ho.global_step.load(3, session)
    boml_ho.sync_step(session)
    # One SGD meta-step with lr_3: theta_1 = 0.8 x, F = |0.8 x - 1|^2, dF/dx = 1.6 (0.8 x - 1).
    before = session.run(x)
    run(session=session)
    expected_lr = lr_min + (lr0 - lr_min) * (1 + np.cos(np.pi * 3 / period)) / 2
    np.testing.assert_allclose(session.run(x), before - expected_lr * 1.6 * (0.8 * before - 1.0), rtol=1e-12)


@pytest.mark.parametrize("options,error,match", [
    ({"meta_lr_schedule": "step"}, UnknownNameError, "Unknown meta_lr_schedule 'step'; allowed"),
    ({"meta_lr_schedule": "cosine"}, InvalidArgumentError, "needs meta_lr_period"),
    ({"meta_lr_schedule": "cosine", "meta_lr_period": 5, "meta_lr_min": 0.5}, InvalidArgumentError,
     "meta_lr_min must be a number between 0 and meta_learning_rate=0.01; received 0.5"),
    ({"meta_lr_schedule": "cosine", "meta_lr_period": 5, "mlr_decay": 0.1}, InvalidCombinationError,
     "mlr_decay is the rate of the inverse-time schedule"),
    ({"meta_lr_period": 5}, InvalidCombinationError, "settings of meta_lr_schedule='cosine'"),
])
def test_bad_meta_lr_schedules_are_refused(options, error, match):
    with pytest.raises(error, match=match):
        _build_quadratic(**options)


def _np_grad_fixed(W, X, b, beta, gamma, mean, var):
    """d loss / d W when the batch norm uses fixed (running) statistics."""
    y, _, _ = _np_bn(X @ W, beta, gamma, mean, var)
    dy = (np.tanh(y) - b) * (1 - np.tanh(y) ** 2)
    return X.T @ (dy * gamma / np.sqrt(var + EPS))


@pytest.mark.parametrize("bnwb", [False, True])
def test_per_step_batch_norm_statistics_are_moving_averages_used_at_evaluation(session, bnwb):
    d, m, steps = _bn_data(seed=5), 0.9, 2
    boml_ho, _, query, (offset, scale), xW = _build_bn(
        d, steps, 0.05, outer_objective_optimizer="SGD", per_step_bn_statistics=True, bn_momentum=m,
        per_step_bn_weights=bnwb)
    run = boml_ho.aggregate_all()
    (stats,) = boml_ho.outergradient.statistics
    if bnwb:  # the offset and scale of each step (row t - 1), moved by the meta-update row by row
        (_, offset), (_, scale) = boml_ho.outergradient.per_step_bn
    else:
        offset, scale = tf.tile(offset[None], [steps, 1]), tf.tile(scale[None], [steps, 1])
    adapted = {n: boml_ho.adapted(query, T=n) for n in (steps, 3)}
    session.run(tf.global_variables_initializer())
    mean, var = np.zeros([steps + 1, 2]), np.ones([steps + 1, 2])
    for _ in range(2):
        w, beta, gamma = session.run([xW, offset, scale])  # the meta-update moves all three
        rows = []
        for t in range(steps):  # the support pass of step t + 1 at theta_t, then the query at theta_T
            h = d["X"] @ w
            rows.append((h.mean(0), h.var(0)))
            w = w - LR * _np_grad(w, d["X"], d["b"], beta[t], gamma[t])
        rows.append(((d["Xq"] @ w).mean(0), (d["Xq"] @ w).var(0)))
        mean = m * mean + (1 - m) * np.array([r[0] for r in rows])
        var = m * var + (1 - m) * np.array([r[1] for r in rows])
        run(session=session)
        np.testing.assert_allclose(session.run(stats.mean), mean, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(session.run(stats.variance), var, rtol=1e-10)
    w0, beta, gamma = session.run([xW, offset, scale])
    for n, tensor in adapted.items():
        w = w0
        for t in range(1, n + 1):
            row = min(t, steps) - 1
            w = w - LR * _np_grad_fixed(w, d["X"], d["b"], beta[row], gamma[row], mean[row], var[row])
        expected = _np_loss(w, d["Xq"], d["bq"], beta[-1], gamma[-1], (mean[steps], var[steps]))
        np.testing.assert_allclose(session.run(tensor)[0], expected, rtol=1e-10)
    batch_stats = _np_loss(_np_unroll(w0, d, beta, gamma, [LR] * steps, steps), d["Xq"], d["bq"], beta[-1], gamma[-1])
    assert abs(session.run(adapted[steps])[0] - batch_stats) > 1e-3  # the running statistics matter


def test_per_step_batch_norm_statistics_refuse_a_second_ul_problem():
    d = _bn_data()
    offset = extension.get_outerparameter("bn0_offset", d["beta"])
    scale = extension.get_outerparameter("bn0_scale", d["gamma"])
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "MAML++")
    for task in range(2):
        W = tf.get_variable(f"W{task}", initializer=tf.constant(d["W"]), trainable=False)
        loss = tf.reduce_sum(tf.tanh(batch_norm(tf.constant(d["X"]) @ W, offset, scale)) ** 2)
        inner_grad = boml_ho.ll_problem(loss, LR, T, var_list=[W])
        if task == 1:
            with pytest.raises(InvalidArgumentError, match="records the batch-norm layers of one ul_problem"):
                boml_ho.ul_problem(loss, 1e-3, inner_grad, per_step_bn_statistics=True)
        else:
            boml_ho.ul_problem(loss, 1e-3, inner_grad, per_step_bn_statistics=True)


@pytest.mark.parametrize("settings,match", [
    (dict(algorithm="maml", per_step_bn_statistics=True), "are settings of outer_method='MAML\\+\\+'"),
    (dict(algorithm="maml++", bn_momentum=1.0), "bn_momentum must be in \\[0, 1\\)"),
    (dict(algorithm="maml++", learn_step_sizes=True, learn_lr=True), "Use one of the two"),
    (dict(algorithm="maml", meta_lr_min=1e-5), "meta_lr_min is the cosine schedule's final meta_lr"),
    (dict(algorithm="maml", meta_lr_schedule="cosine", meta_lr=1e-3, meta_lr_min=1e-2), "must not exceed meta_lr"),
    (dict(algorithm="maml", meta_lr_schedule="linear"), "Unknown meta_lr_schedule 'linear'"),
])
def test_workflow_refuses_bad_maml_plus_plus_and_schedule_settings(settings, match):
    from boml import workflow

    with pytest.raises((InvalidArgumentError, UnknownNameError), match=match):
        workflow.Config(**settings).validate()
    config = workflow.Config(algorithm="maml++", per_step_bn_statistics=True, meta_lr_schedule="cosine",
                             meta_lr_min=1e-5).validate()
    assert (config.per_step_bn_statistics, config.meta_lr_schedule, config.bn_momentum) == (True, "cosine", 0.9)
