"""Bad input gets a typed exception saying what was wrong, what was received and what is allowed."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors, extension
from boml.substitute import substitute

import bilevel_toys as toys


def _small_dataset():
    return boml.meta_synthetic(num_classes=2, examples_train=1, examples_test=2, image_shape=(8, 8, 1),
                               n_classes=(6, 2, 2), examples_per_class=6)


@pytest.mark.parametrize("triple", [("MetaInit", "Trad", "Reverse"), ("MetaFeat", "Simple", "Simple"),
                                    ("MetaFeat", "Aggr", "Implicit"), ("Meta", "Simple", "Simple"),
                                    ("MetaFeat", "Trad", "Nope")])
def test_forbidden_combinations_list_the_allowed_ones(triple):
    with pytest.raises(errors.InvalidCombinationError) as info:
        boml.BOMLOptimizer(*triple)
    message = str(info.value)
    assert "MetaFeat/Trad/Reverse" in message and "MetaInit/Simple/Simple" in message
    assert isinstance(info.value, ValueError)


def test_truncation_only_with_reverse():
    with pytest.raises(errors.InvalidArgumentError, match="truncate_iter=2"):
        boml.BOMLOptimizer("MetaFeat", "Trad", "Implicit", truncate_iter=2)
    with pytest.raises(errors.InvalidArgumentError, match="received -3"):
        boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse", truncate_iter=-3)


def test_unknown_registry_name_lists_registered_names():
    with pytest.raises(errors.UnknownNameError) as info:
        extension.UPPER_ITERS.get("Backwards")
    assert "Reverse" in str(info.value) and "Backwards" in str(info.value)


def test_unknown_inner_optimizer():
    d = toys.make_data()
    with pytest.raises(errors.UnknownNameError, match="Adagrad"):
        toys.build_toy(d, optimizer="Adagrad")


def test_unknown_meta_model_and_outer_optimizer():
    dataset = _small_dataset()
    ex = boml.BOMLExperiment(dataset)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    with pytest.raises(errors.UnknownNameError, match="V7"):
        boml_ho.meta_learner(ex.x, dataset, meta_model="V7")
    meta = boml_ho.meta_learner(ex.x, dataset, meta_model="v1", dim_hidden=(4,))
    ex.model = boml_ho.base_learner(ex.x, meta)
    loss = boml.utils.cross_entropy(ex.model.out, ex.y)
    inner_grad = boml_ho.ll_problem(loss, 0.1, 1, experiment=ex)
    with pytest.raises(errors.UnknownNameError, match="RMSProp"):
        boml_ho.ul_problem(loss, 0.01, inner_grad, outer_objective_optimizer="RMSProp")


def test_run_before_aggregate_all_and_build_after_it(session):
    d = toys.make_data()
    boml_ho, inner_grad, _ = toys.build_toy(d)
    with pytest.raises(errors.NotFinalizedError, match="aggregate_all"):
        boml_ho.run(session=session)
    boml_ho.aggregate_all()
    with pytest.raises(errors.PhaseError, match="after aggregate_all"):
        boml_ho.ul_problem(inner_grad.outer_objective, 0.01, inner_grad)


def test_aggregate_all_without_ul_problem():
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    with pytest.raises(errors.PhaseError, match="ul_problem"):
        boml_ho.aggregate_all()


def test_detached_meta_parameter_is_named():
    d = toys.make_data()
    unused = extension.get_outerparameter("unused_hyper", np.ones(3))
    with pytest.raises(errors.DetachedOuterParameterError, match="unused_hyper"):
        toys.build_toy(d)
    assert unused is not None


def test_learned_learning_rate_is_refused_under_implicit():
    # Implicit gives a learned step size no hypergradient: the combination is refused by the strategy's declaration.
    d = toys.make_data()
    X, b = tf.constant(d["X"]), tf.constant(d["b"])
    W = extension.get_outerparameter("W", d["W"])
    y = tf.get_variable("y", initializer=tf.zeros([d["k"]], tf.float64), trainable=False)
    loss = tf.reduce_sum(tf.square(tf.linalg.matvec(tf.matmul(X, W), y) - b)) + tf.reduce_sum(y * y)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Implicit")
    inner_grad = boml_ho.ll_problem(loss, 0.1, 3, var_list=[y], learn_lr=True)
    with pytest.raises(errors.InvalidCombinationError, match="learned step size"):
        boml_ho.ul_problem(loss, 0.01, inner_grad, meta_param=tf.get_collection(extension.GraphKeys.METAPARAMETERS))


@pytest.mark.parametrize("kwargs,match", [({"T": 0}, "T"), ({"T": 2.5}, "T"), ({"lr": -1.0}, "learning_rate"),
                                          ({"lr": float("nan")}, "learning_rate")])
def test_bad_lower_level_settings(kwargs, match):
    d = toys.make_data()
    with pytest.raises(errors.InvalidArgumentError, match=match):
        toys.build_toy(d, **kwargs)


def test_aggr_needs_outer_objective():
    y = tf.get_variable("y", initializer=tf.zeros([2], tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Aggr", "Reverse")
    with pytest.raises(errors.InvalidArgumentError, match="outer_objective"):
        boml_ho.ll_problem(tf.reduce_sum(y * y), 0.1, 2, var_list=[y])


def test_empty_var_list():
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    with pytest.raises(errors.InvalidArgumentError, match="var_list"):
        boml_ho.ll_problem(tf.constant(1.0), 0.1, 2, var_list=[])
    with pytest.raises(errors.InvalidArgumentError, match="var_list"):
        boml_ho.ll_problem(tf.constant(1.0), 0.1, 2)


def test_wrong_episode_shapes_are_reported():
    dataset = _small_dataset()
    ex = boml.BOMLExperiment(dataset, meta_batch_size=2)
    other = boml.meta_synthetic(num_classes=3, examples_train=1, examples_test=2, image_shape=(8, 8, 1),
                                n_classes=(6, 2, 2), examples_per_class=6)
    with pytest.raises(errors.ShapeError, match="targets"):
        ex.feed_dicts(other.train.generate_batch(2, rand=0))
    bigger = boml.meta_synthetic(num_classes=2, examples_train=1, examples_test=2, image_shape=(9, 9, 1),
                                 n_classes=(6, 2, 2), examples_per_class=6)
    with pytest.raises(errors.ShapeError, match=r"\(9, 9, 1\)"):
        ex.feed_dicts(bigger.train.generate_batch(2, rand=0))
    with pytest.raises(errors.ShapeError, match="equal sizes"):
        mixed = dataset.train.generate_batch(1, rand=0) + [
            boml.meta_synthetic(num_classes=2, examples_train=2, examples_test=2, image_shape=(8, 8, 1),
                                n_classes=(6, 2, 2), examples_per_class=6).train.generate_datasets(rand=0)]
        ex.feed_dicts(mixed)


def test_loss_shape_mismatch():
    with pytest.raises(errors.ShapeError, match="one-hot"):
        boml.utils.cross_entropy(tf.zeros([4, 5]), tf.zeros([4, 3]))


def test_divergence_raises(session):
    d = toys.make_data()
    d["X"] = d["X"] * 30.0
    boml_ho, _, _ = toys.build_toy(d, T=400, lr=5.0)
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    with pytest.raises(errors.DivergenceError, match="non-finite"):
        boml_ho.run(session=session)


def test_eager_mode_is_refused_with_the_fix():
    import subprocess
    import sys

    code = ("import tensorflow as tf, boml\n"
            "try:\n    boml.BOMLOptimizer('MetaFeat', 'Trad', 'Reverse')\n"
            "except boml.errors.GraphModeError as e:\n    print('OK', e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "OK" in result.stdout and "disable_eager_execution" in result.stdout


def test_substitution_rejects_incompatible_and_stateful_inputs():
    x = tf.placeholder(tf.float32, [None, 3])
    y = tf.reduce_sum(x * 2.0)
    with pytest.raises(errors.ShapeError, match="shape"):
        substitute(y, [(x, tf.zeros([2, 4]))])
    _, looped = tf.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * 2.0), [0, x])
    with pytest.raises(errors.UnsupportedGraphError, match="While"):
        substitute(tf.reduce_sum(looped), [(x, tf.zeros([2, 3]))])
