"""Data hyper-cleaning (``examples/hyper_cleaning.py``), small CI version: few examples and steps, on
MNIST-layout files written here and on the real MNIST (skipped when absent).

The full benchmark is ``python examples/hyper_cleaning.py``; the tests import the example's functions."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import data_trees
from boml.errors import DataError, InvalidArgumentError, MissingDataError, UnknownNameError

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "hyper_cleaning.py")


def _example():
    spec = importlib.util.spec_from_file_location("hyper_cleaning_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hyperclean = _example()


@pytest.fixture(params=["generated", "real"])
def small_data(request, tmp_path_factory):
    """400 training (half corrupted), 400 validation examples: separable generated digits, or real MNIST."""
    if request.param == "real":
        folder = request.getfixturevalue("real_data")("mnist")
        n_test = 1000
    else:
        folder = str(tmp_path_factory.mktemp("generated") / "mnist")
        data_trees.write_mnist(folder, n_train=1000, n_test=300)
        n_test = 300
    return hyperclean.prepare_data(folder, n_train=400, n_valid=400, n_test=n_test, seed=3)


def test_prepare_data_corrupts_half_of_the_labels_with_another_class(small_data):
    data = small_data
    assert data.x_train.shape == (400, 784) and data.x_valid.shape == (400, 784) and data.x_test.shape[1] == 784
    assert data.corrupted.sum() == 200
    noisy = data.y_train.argmax(1)
    assert np.all(noisy[data.corrupted] != data.clean_labels[data.corrupted])
    assert np.all(noisy[~data.corrupted] == data.clean_labels[~data.corrupted])
    np.testing.assert_allclose(data.y_train.sum(1), 1.0)


def test_prepare_data_checks_its_arguments(mnist_folder):
    with pytest.raises(InvalidArgumentError, match="corruption"):
        hyperclean.prepare_data("/nonexistent", corruption=1.5)
    with pytest.raises(InvalidArgumentError, match="n_test"):
        hyperclean.prepare_data("/nonexistent", n_test=20000)
    with pytest.raises(DataError, match="has only 300 images; n_train \\+ n_valid = 400"):
        hyperclean.prepare_data(mnist_folder[0], n_train=200, n_valid=200)


def test_example_reads_mnist_from_the_datasets_folder(empty_datasets_folder, tmp_path, capsys):
    assert hyperclean.main(["--methods", "baseline", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert os.path.join(empty_datasets_folder, "mnist") in err and "python -m boml data fetch mnist" in err
    with pytest.raises(MissingDataError):
        hyperclean.prepare_data()
    root = tmp_path / "datasets"
    data_trees.write_mnist(str(root / "mnist"), n_train=200, n_test=100)
    root_of_repo = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    env = {**os.environ, "DATASETS_FOLDER": str(root), "CI": "",
           "PYTHONPATH": root_of_repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, EXAMPLE, "--methods", "baseline", "--quiet", "--n-train", "100",
                             "--n-valid", "100", "--n-test", "100", "--final-T", "20"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "baseline" in result.stdout and "failed" not in result.stdout


def test_rhg_pushes_corrupted_weights_below_clean_ones(small_data):
    config = hyperclean.CleaningConfig(T=30, inner_lr=0.1, hyper_iterations=15, meta_lr=0.05, final_T=100)
    cleaner = hyperclean.HyperCleaner(small_data, "RHG", config)
    try:
        start = cleaner.step()["outer_loss"]
        for _ in range(config.hyper_iterations - 1):
            last = cleaner.step()["outer_loss"]
        weights = cleaner.current_weights()
    finally:
        cleaner.close()
    assert last < start
    assert weights.min() >= 0.0 and weights.max() <= 1.0
    corrupted, clean = weights[small_data.corrupted], weights[~small_data.corrupted]
    assert corrupted.mean() < clean.mean() - 0.2
    assert np.median(corrupted) < np.median(clean)
    # "weight below the clean median" detects the corrupted examples much better than chance.
    assert hyperclean.detection_scores(weights, small_data.corrupted, np.median(clean))["f1"] > 0.7


def test_unknown_method_is_rejected(small_data):
    with pytest.raises(UnknownNameError, match="RHG"):
        hyperclean.HyperCleaner(small_data, "Nope")


def test_detection_scores():
    weights = np.array([0.0, 0.0, 0.5, 1.0, 0.0005])
    corrupted = np.array([True, False, True, False, True])
    scores = hyperclean.detection_scores(weights, corrupted)
    assert scores["flagged"] == 3
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    with pytest.raises(InvalidArgumentError):
        hyperclean.detection_scores(weights, corrupted[:3])


def test_projection_onto_box_and_l1_ball(session):
    values = np.array([-0.5, 0.2, 0.7, 1.8, 0.9])
    box = session.run(hyperclean.project_weights(tf.constant(values)))
    np.testing.assert_allclose(box, np.clip(values, 0, 1))
    ball = session.run(hyperclean.project_weights(tf.constant(values), radius=2.0))
    # clip(v - tau, 0, 1) with sum 2: tau = 0.3 gives [0, 0, 0.4, 1, 0.6].
    np.testing.assert_allclose(ball, [0.0, 0.0, 0.4, 1.0, 0.6], atol=1e-9)
    inside = session.run(hyperclean.project_weights(tf.constant(values), radius=10.0))
    np.testing.assert_allclose(inside, np.clip(values, 0, 1))


def test_config_is_validated():
    with pytest.raises(InvalidArgumentError, match="initial_weight"):
        hyperclean.CleaningConfig(initial_weight=2.0)
    with pytest.raises(InvalidArgumentError, match="T must be a positive integer"):
        hyperclean.CleaningConfig().replace(T=0)


# ------------------------------------------------------------------ Neumann and FixedPoint (Implicit solvers)
def _tiny_problem(n=24, dim=5, seed=1):
    """A random float64 cleaning problem small enough for a numpy re-implementation."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 10, size=3 * n)
    one_hot = np.eye(10)[labels]
    x = rng.randn(3 * n, dim)
    corrupted = np.zeros(n, dtype=bool)
    corrupted[::2] = True
    return hyperclean.CleaningData(x_train=x[:n], y_train=one_hot[:n], clean_labels=labels[:n], corrupted=corrupted,
                                   x_valid=x[n:2 * n], y_valid=one_hot[n:2 * n], x_test=x[2 * n:],
                                   y_test=one_hot[2 * n:])


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _numpy_hypergradient(data, config, method):
    """The first hypergradient of ``method``, in numpy: heavy-ball dynamics from 0, then the solver by hand."""
    x, y, lam = data.x_train, data.y_train, np.full(data.n_train, config.initial_weight)
    n = data.n_train
    W, b = np.zeros((x.shape[1], 10)), np.zeros(10)
    mW, mb = np.zeros_like(W), np.zeros_like(b)
    lr, mu = config.inner_lr, config.inner_momentum
    for _ in range(config.T):  # m <- mu m + grad f, w <- w - lr m
        r = (lam / n)[:, None] * (_softmax(x @ W + b) - y)
        mW, mb = mu * mW + x.T @ r, mu * mb + r.sum(0)
        W, b = W - lr * mW, b - lr * mb
    p = _softmax(x @ W + b)
    r_valid = (_softmax(data.x_valid @ W + b) - data.y_valid) / data.x_valid.shape[0]
    grad_F = [data.x_valid.T @ r_valid, r_valid.sum(0)]

    def hessian(v):  # Hessian of f = mean_i lam_i CE_i at (W, b) times v
        s = x @ v[0] + v[1]
        dp = (lam / n)[:, None] * (p * s - p * (p * s).sum(1, keepdims=True))
        return [x.T @ dp, dp.sum(0)]

    def per_example(q):  # grad_w CE_i . q for every i
        return ((p - y) * (x @ q[0] + q[1])).sum(1)

    if method == "Neumann":  # q = sum_{j<=K} (I - alpha H)^j alpha grad F
        alpha = config.neumann_alpha
        v = [alpha * g for g in grad_F]
        q = list(v)
        for _ in range(config.neumann_terms):
            hv = hessian(v)
            v = [a - alpha * h for a, h in zip(v, hv)]
            q = [a + c for a, c in zip(q, v)]
        return -per_example(q) / n
    # FixedPoint on z = (w, m): w' = w - lr (mu m + g(w)), m' = mu m + g(w); q <- (grad F, 0) + J^T q.
    qw, qm = list(grad_F), [np.zeros_like(W), np.zeros_like(b)]
    for _ in range(config.fixed_point_max_iter):
        hw, hm = hessian(qw), hessian(qm)
        qw, qm = ([g + a - lr * h + k for g, a, h, k in zip(grad_F, qw, hw, hm)],
                  [-lr * mu * a + mu * c for a, c in zip(qw, qm)])
    return per_example([c - lr * a for a, c in zip(qw, qm)]) / n


@pytest.mark.parametrize("method", ["Neumann", "FixedPoint"])
def test_neumann_and_fixed_point_hypergradients_match_numpy(method):
    """The options reach the solver: K=3 terms with alpha=0.3 (not the inner step 0.1), 4 fixed-point products."""
    data = _tiny_problem()
    config = hyperclean.CleaningConfig(T=15, hyper_iterations=1, final_T=5, dtype="float64", neumann_terms=3,
                                       neumann_alpha=0.3, fixed_point_max_iter=4, fixed_point_tolerance=0.0)
    cleaner = hyperclean.HyperCleaner(data, method, config)
    try:
        (hypergradient, _), = cleaner.boml_ho.hypergradients
        value = cleaner.session.run(hypergradient, cleaner.boml_ho.outergradient.feed_dict(0))
        records = list(cleaner.boml_ho.outergradient.monitor._records)  # run() would move them to last_records
    finally:
        cleaner.close()
    expected = _numpy_hypergradient(data, config, method)
    assert np.abs(expected).max() > 1e-4  # not trivially zero
    np.testing.assert_allclose(value, expected, rtol=1e-7, atol=1e-12)
    assert records[-1]["iterations"] == (3 if method == "Neumann" else 4)


def test_neumann_and_fixed_point_options_are_checked(capsys):
    with pytest.raises(InvalidArgumentError, match="neumann_alpha"):
        hyperclean.CleaningConfig(neumann_alpha=-1.0)
    with pytest.raises(InvalidArgumentError, match="fixed_point_max_iter"):
        hyperclean.CleaningConfig(fixed_point_max_iter=0)
    with pytest.raises(InvalidArgumentError, match="solver_failure"):
        hyperclean.CleaningConfig(solver_failure="loud")
    assert hyperclean.main(["--methods", "Neumann", "--neumann-terms", "-2", "--quiet"]) == 2
    assert "neumann_terms must be an integer >= 0; received -2" in capsys.readouterr().err
