"""The extension surface of boml: registries, graph collections and outer parameters.

Strategies, optimizers and networks are found by name in the registries below,
so a user can add one without editing boml::

    @boml.extension.register_upper_iter("MyHG")
    class MyOuterGrad(boml.upper_iter.BOMLOuterGrad):
        ...

    boml.BOMLOptimizer("MetaFeat", "Trad", "MyHG")   # after allowing the pair

Graph collections (``GraphKeys.METAPARAMETERS`` ...) are filled for
compatibility with the original BOML scripts; boml itself passes explicit lists.
"""
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError, UnknownNameError, describe_allowed


class GraphKeys(tf.GraphKeys):
    """Collection names used by boml in addition to TensorFlow's own."""

    METAPARAMETERS = "meta_parameters"
    MODELPARAMETERS = "model_parameters"
    LAGRANGIAN_MULTIPLIERS = "lagrangian_multipliers"
    OUTERGRADIENTS = "outer_gradients"
    DARTS_DERIVATIVES = "darts_derivatives"
    #: The original's collection of forward-mode tangents (boml's Forward keeps them in the loop carry).
    ZS = "zs"


METAPARAMETERS_COLLECTIONS = [GraphKeys.METAPARAMETERS, GraphKeys.GLOBAL_VARIABLES]


class Registry:
    """A name -> object table with clear errors.

    Args:
        kind: what the entries are, used in error messages ("lower strategy").
    """

    def __init__(self, kind):
        self._kind = kind
        self._entries = {}

    @property
    def kind(self):
        return self._kind

    def register(self, name, obj=None, overwrite=False):
        """Registers ``obj`` under ``name``; usable as a decorator when ``obj`` is None.

        Raises:
            InvalidArgumentError: ``name`` is taken (and ``overwrite`` is False) or
                ``obj`` is not callable.
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(
                f"A {self._kind} name must be a non-empty string; received {name!r}."
            )

        def _store(value):
            if not callable(value):
                raise InvalidArgumentError(
                    f"A {self._kind} must be a class or a callable; received {value!r} for {name!r}."
                )
            if name in self._entries and not overwrite:
                raise InvalidArgumentError(
                    f"The {self._kind} {name!r} is already registered "
                    f"({self._entries[name]!r}). Choose another name or pass overwrite=True."
                )
            self._entries[name] = value
            return value

        return _store if obj is None else _store(obj)

    def get(self, name):
        """Returns the entry for ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered; the message lists the names.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(
                f"Unknown {self._kind} {name!r}. Registered: {describe_allowed(self._entries)}. "
                f"Register a new one with boml.extension.register_* first."
            ) from None

    def unregister(self, name):
        self._entries.pop(name, None)

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def __iter__(self):
        return iter(sorted(self._entries))


LOWER_ITERS = Registry("lower strategy (inner_method)")
UPPER_ITERS = Registry("upper strategy (outer_method)")
OPTIMIZERS = Registry("inner optimizer")
NETWORKS = Registry("network")


def register_lower_iter(name, overwrite=False):
    """Decorator registering a ``BOMLInnerGrad`` subclass as an ``inner_method``."""
    return LOWER_ITERS.register(name, overwrite=overwrite)


def register_upper_iter(name, overwrite=False):
    """Decorator registering a ``BOMLOuterGrad`` subclass as an ``outer_method``."""
    return UPPER_ITERS.register(name, overwrite=overwrite)


def register_optimizer(name, overwrite=False):
    """Decorator registering a ``BOMLOpt`` subclass as an inner optimizer name."""
    return OPTIMIZERS.register(name, overwrite=overwrite)


def register_network(name, overwrite=False):
    """Decorator registering a network factory under a name such as ``"OmniglotMetaInitV1"``."""
    return NETWORKS.register(name, overwrite=overwrite)


def remove_from_collection(key, *variables):
    """Removes ``variables`` from the graph collection ``key`` (missing ones are ignored)."""
    collection = tf.get_collection_ref(key)
    ids = {id(v) for v in variables}
    collection[:] = [v for v in collection if id(v) not in ids]


def get_outerparameter(name, initializer=None, shape=None, dtype=None, collections=None,
                       scalar=False, constraint=None):
    """Creates an outer (meta) parameter: a non-trainable variable in ``METAPARAMETERS``.

    Mirrors ``tf.get_variable``. Outer parameters are updated only by the outer
    optimizer built in ``BOMLOptimizer.aggregate_all``.

    Args:
        name: variable name.
        initializer: initial value (tensor, array or number) or initializer.
        shape: shape, needed when ``initializer`` is an initializer object.
        dtype: data type (default: from ``initializer``, else float32).
        collections: extra collections besides METAPARAMETERS and GLOBAL_VARIABLES.
        scalar: if True, one scalar variable per element is created and the
            stacked tensor returned (each element is then its own outer parameter).
        constraint: optional projection applied after each outer update.

    Returns:
        The variable (or the stacked tensor when ``scalar`` is True).
    """
    all_collections = list(METAPARAMETERS_COLLECTIONS) + list(collections or [])
    if scalar:
        import numpy as np

        values = np.asarray(initializer if initializer is not None else np.zeros(shape))
        with tf.variable_scope(name + "_components"):
            elements = [
                tf.get_variable(f"{'_'.join(map(str, index)) or '0'}", initializer=tf.constant(value, dtype=dtype),
                                trainable=False, collections=all_collections, constraint=constraint)
                for index, value in np.ndenumerate(values)
            ]
        return tf.reshape(tf.stack(elements), values.shape)
    if initializer is not None and not callable(initializer) and shape is None:
        initializer = tf.convert_to_tensor(initializer, dtype=dtype)
        dtype = initializer.dtype
    return tf.get_variable(name, shape=shape, dtype=dtype, initializer=initializer, trainable=False,
                           collections=all_collections, constraint=constraint)


def outer_parameters(scope=None):
    """Variables in the ``METAPARAMETERS`` collection (optionally under ``scope``)."""
    return tf.get_collection(GraphKeys.METAPARAMETERS, scope=scope)


def hypergradients(scope=None):
    """Aggregated hypergradient tensors added by ``aggregate_all``."""
    return tf.get_collection(GraphKeys.OUTERGRADIENTS, scope=scope)


def lagrangian_multipliers(scope=None):
    """Kept for API compatibility: boml's Reverse keeps no multiplier variables."""
    return tf.get_collection(GraphKeys.LAGRANGIAN_MULTIPLIERS, scope=scope)
