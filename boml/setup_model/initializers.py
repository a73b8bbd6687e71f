"""Weight initializers of the boml networks: Glorot/Xavier uniform and the normalization of initializer arguments."""
import numbers

import numpy as np
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError

__all__ = ["GlorotUniform", "glorot_uniform", "as_initializer"]


class GlorotUniform:
    """Glorot/Xavier uniform initializer: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``.

    For a convolution kernel ``[k_h, k_w, c_in, c_out]`` the fans are
    ``k_h * k_w * c_in`` and ``k_h * k_w * c_out`` (the ``xavier_initializer_conv2d``
    of ``tf.contrib`` used by the original BOML); for a matrix ``[n_in, n_out]``
    they are ``n_in`` and ``n_out``.

    Args:
        seed: optional operation seed (the graph seed still applies).
        dtype: default data type when the caller gives none.

    Reference:
        Glorot & Bengio, "Understanding the difficulty of training deep
        feedforward neural networks", AISTATS 2010.
    """

    def __init__(self, seed=None, dtype=tf.float32):
        self.seed = seed
        self.dtype = tf.as_dtype(dtype)

    @staticmethod
    def fans(shape):
        shape = [int(d) for d in shape]
        if not shape:
            return 1, 1
        if len(shape) == 1:
            return shape[0], shape[0]
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        return receptive * shape[-2], receptive * shape[-1]

    def __call__(self, shape, dtype=None, partition_info=None):  # pylint: disable=unused-argument
        dtype = tf.as_dtype(dtype or self.dtype).base_dtype
        if not dtype.is_floating:
            raise InvalidArgumentError(
                f"GlorotUniform initializes floating-point variables only; received dtype {dtype.name}. "
                "Use tf.float32 or tf.float64."
            )
        fan_in, fan_out = self.fans(shape)
        limit = float(np.sqrt(6.0 / max(1, fan_in + fan_out)))
        return tf.random_uniform(shape, -limit, limit, dtype=dtype, seed=self.seed)

    def get_config(self):
        return {"seed": self.seed, "dtype": self.dtype.name}


def glorot_uniform(seed=None, dtype=tf.float32):
    """Returns a :class:`GlorotUniform` initializer (the default conv and output initializer)."""
    return GlorotUniform(seed=seed, dtype=dtype)


def as_initializer(initializer, default=None, what="initializer"):
    """Normalizes an initializer argument.

    Accepts None (gives ``default``, itself normalized), an initializer class
    such as ``tf.zeros_initializer`` (instantiated with no arguments), an
    initializer instance or any callable ``(shape, dtype=..., partition_info=...)``,
    or a number / array (a constant initializer).

    Raises:
        InvalidArgumentError: ``initializer`` is none of these.
    """
    if initializer is None:
        return None if default is None else as_initializer(default, what=what)
    if isinstance(initializer, type):
        return initializer()
    if callable(initializer):
        return initializer
    if isinstance(initializer, (numbers.Number, np.ndarray, list, tuple)):
        return tf.constant_initializer(initializer)
    raise InvalidArgumentError(
        f"{what} must be None, an initializer class or instance, a callable or a constant; "
        f"received {initializer!r} of type {type(initializer).__name__}."
    )
