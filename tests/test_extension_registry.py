"""boml.extension: the name registries and the meta-parameter collection as the facade uses them."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors, extension


def test_registry_lists_its_names_and_refuses_unknown_ones():
    registry = extension.Registry("widget")
    with pytest.raises(errors.InvalidArgumentError, match="A widget name must be a non-empty string; received ''"):
        registry.register("", lambda: 0)
    registry.register("b", lambda: 0)
    registry.register("a")(lambda: 1)  # as a decorator
    assert list(registry) == ["a", "b"] and "a" in registry and registry.get("a")() == 1
    with pytest.raises(errors.UnknownNameError) as info:
        registry.get("c")
    assert str(info.value).startswith("Unknown widget 'c'. Registered: 'a', 'b'.")
    assert "register_*" in str(info.value)
    registry.unregister("a")
    registry.unregister("missing")  # nothing to remove: no error
    assert registry.names() == ["b"]


def _problem_with_scalar_rates():
    """f = sum_i (y_i - r_i)^2 / 2 with r a scalar=True outer parameter (one variable per entry),
    F = sum_i (y_i - 1)^2 / 2; one SGD step of size 1 gives y_1 = r and dF/dr_i = r_i - 1."""
    rates = extension.get_outerparameter("rates", np.array([[0.1, 0.2], [0.3, 0.4]]), scalar=True)
    y = tf.get_variable("y", initializer=tf.zeros([2, 2], tf.float64), trainable=False)
    boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
    inner = boml_ho.ll_problem(0.5 * tf.reduce_sum(tf.square(y - rates)), 1.0, 1, var_list=[y])
    return boml_ho, inner, rates, y


def test_scalar_outer_parameters_are_learned_entry_by_entry(session):
    boml_ho, inner, rates, y = _problem_with_scalar_rates()
    components = extension.outer_parameters(scope="rates_components")
    assert len(components) == 4 and all(v.shape.as_list() == [] for v in components)
    boml_ho.ul_problem(0.5 * tf.reduce_sum(tf.square(y - 1.0)), 0.1, inner)  # meta_param: the collection
    boml_ho.aggregate_all()
    assert [v for _, v in boml_ho.hypergradients] == components
    assert len(extension.hypergradients()) == 4  # aggregate_all fills the OUTERGRADIENTS collection
    session.run(tf.global_variables_initializer())
    np.testing.assert_allclose(session.run(rates), [[0.1, 0.2], [0.3, 0.4]])
    np.testing.assert_allclose(session.run([g for g, _ in boml_ho.hypergradients]), [-0.9, -0.8, -0.7, -0.6])


def test_a_parameter_removed_from_the_collection_is_not_learned(session):
    boml_ho, inner, rates, y = _problem_with_scalar_rates()
    first = extension.outer_parameters(scope="rates_components")[0]
    extension.remove_from_collection(extension.GraphKeys.METAPARAMETERS, first)
    extension.remove_from_collection(extension.GraphKeys.METAPARAMETERS, tf.constant(0.0))  # not in it: ignored
    assert first not in extension.outer_parameters() and len(extension.outer_parameters()) == 3
    boml_ho.ul_problem(0.5 * tf.reduce_sum(tf.square(y - 1.0)), 0.1, inner, outer_objective_optimizer="SGD")
    boml_ho.aggregate_all()
    session.run(tf.global_variables_initializer())
    boml_ho.run(session=session)
    np.testing.assert_allclose(session.run(rates), [[0.1, 0.2 + 0.1 * 0.8], [0.3 + 0.1 * 0.7, 0.4 + 0.1 * 0.6]],
                               rtol=1e-7)  # float32 meta learning rate
