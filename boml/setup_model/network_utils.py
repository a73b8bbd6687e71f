"""Building blocks shared by the boml networks.

Everything here is plain ``tf.compat.v1`` graph code (no ``tf.contrib``, no
Keras layers), so that boml's engine can re-evaluate a network's output with
substituted inputs and parameters:

* initializers: :class:`GlorotUniform` (Xavier uniform, Glorot & Bengio 2010)
  and :func:`as_initializer`;
* meta-parameter creators: :func:`get_conv_weight`, :func:`get_bias_weight`,
  :func:`get_warp_weight`, :func:`get_warp_bias`, :func:`get_identity`,
  :func:`get_batch_norm_params` (all through
  :func:`boml.extension.get_outerparameter`);
* layers: :func:`conv2d`, :func:`batch_norm`, :func:`conv_block`,
  :func:`conv_block_t`, :func:`conv_block_warp`, :func:`flatten`;
* small helpers kept from the original BOML ``network_utils`` (``as_list``,
  ``maybe_call``, ``filter_vars``, ``mean_std_ci`` ...).
"""
import numbers
from collections import OrderedDict

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError, ShapeError
from boml.helpers import (  # noqa: F401 - the original network_utils names, defined once in boml.helpers
    as_list,
    as_tuple_or_list,
    flatten_list,
    get_rand_state,
    half_int,
    is_positive_int,
    maybe_call,
    maybe_get,
    mean_std_ci,
    name_from_dict,
    name_from_vars,
)

BATCH_NORM_EPSILON = 1e-3
"""Variance epsilon of :func:`batch_norm` (the value of the original BOML layers)."""


def filter_vars(var_name, scope=None):
    """Global variables whose name (without ``:0``) ends with ``var_name``, optionally under ``scope``."""
    return [v for v in tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES, scope=scope)
            if v.name.split(":")[0].endswith(var_name)]


def leaky_relu(x, alpha=0.2, name="leaky_relu"):
    """``max(x, alpha * x)``."""
    return tf.maximum(x, alpha * x, name=name)


# -------------------------------------------------------------------------------- initializers
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


# ---------------------------------------------------------------------- meta-parameter creators
def _dtype_of(net):
    return getattr(net, "datatype", tf.float32)


def _extra_collections(net):
    return as_list(getattr(net, "meta_collections", None))


def get_conv_weight(net, i, initializer, c_in=None, c_out=None):
    """Creates the meta-parameter ``conv{i}`` of shape ``[kernel, kernel, c_in, c_out]``.

    ``c_in`` defaults to the input channels for block 0 and to ``dim_hidden[i-1]``
    otherwise; ``c_out`` defaults to ``dim_hidden[i]``.
    """
    c_in = c_in if c_in is not None else (net.channels if i == 0 else net.dim_hidden[i - 1])
    c_out = c_out if c_out is not None else net.dim_hidden[i]
    return extension.get_outerparameter(
        f"conv{i}", initializer=as_initializer(initializer, GlorotUniform),
        shape=[net.kernel, net.kernel, c_in, c_out], dtype=_dtype_of(net), collections=_extra_collections(net))


def get_bias_weight(net, i, initializer=None):
    """Creates the meta-parameter ``bias{i}`` of shape ``[dim_hidden[i]]`` (zeros by default)."""
    return extension.get_outerparameter(
        f"bias{i}", initializer=as_initializer(initializer, tf.zeros_initializer), shape=[net.dim_hidden[i]],
        dtype=_dtype_of(net), collections=_extra_collections(net))


def get_warp_weight(net, i, initializer):
    """Creates the warp-layer kernel ``conv{i}_z`` of shape ``[kernel, kernel, d_i, d_i]``.

    The warp layer follows the task convolution, so it maps ``d_i`` channels to
    ``d_i`` channels (the original used ``d_{i-1}`` as input width, which only
    worked because all widths were equal).
    """
    d = net.dim_hidden[i]
    return extension.get_outerparameter(
        f"conv{i}_z", initializer=as_initializer(initializer, GlorotUniform),
        shape=[net.kernel, net.kernel, d, d], dtype=_dtype_of(net), collections=_extra_collections(net))


def get_warp_bias(net, i, initializer=None):
    """Creates the warp-layer bias ``bias{i}_z`` of shape ``[d_i]`` (zeros by default)."""
    return extension.get_outerparameter(
        f"bias{i}_z", initializer=as_initializer(initializer, tf.zeros_initializer), shape=[net.dim_hidden[i]],
        dtype=_dtype_of(net), collections=_extra_collections(net))


def get_identity(dim, name, conv=True, dtype=tf.float32, collections=None):
    """Creates a meta-parameter initialized to the identity: ``[1, 1, dim, dim]`` if ``conv`` else ``[dim, dim]``."""
    eye = np.eye(dim, dtype=tf.as_dtype(dtype).as_numpy_dtype)
    if conv:
        eye = eye.reshape((1, 1, dim, dim))
    return extension.get_outerparameter(name, initializer=eye, dtype=dtype, collections=collections)


def block_model_shapes(net):
    """``{key: shape}`` of the meta-only parameters of a conv-4's blocks.

    Per block ``i`` of width ``d``: the T-layer ``conv{i}_z`` ``[1, 1, d, d]``
    (``use_t``) or the warp layer ``conv{i}_z`` ``[k, k, d, d]`` and
    ``bias{i}_z`` (``use_warp``), then ``bn{i}_offset`` and ``bn{i}_scale``
    unless ``norm`` is None.
    """
    shapes = OrderedDict()
    for i, d in enumerate(net.dim_hidden):
        if net.use_t:
            shapes[f"conv{i}_z"] = [1, 1, d, d]
        elif net.use_warp:
            shapes[f"conv{i}_z"] = [net.kernel, net.kernel, d, d]
            shapes[f"bias{i}_z"] = [d]
        if net.norm is not None:
            shapes[f"bn{i}_offset"] = [d]
            shapes[f"bn{i}_scale"] = [d]
    return shapes


def create_block_model_parameters(net, identity_collections=None):
    """Creates the parameters of ``block_model_shapes`` (T-layers start at the identity)."""
    params = OrderedDict()
    for i, d in enumerate(net.dim_hidden):
        if net.use_t:
            params[f"conv{i}_z"] = get_identity(d, f"conv{i}_z", conv=True, dtype=net.datatype,
                                                collections=identity_collections)
        elif net.use_warp:
            params[f"conv{i}_z"] = get_warp_weight(net, i, net.conv_initializer)
            params[f"bias{i}_z"] = get_warp_bias(net, i, net.bias_initializer)
        if net.norm is not None:
            params[f"bn{i}_offset"], params[f"bn{i}_scale"] = get_batch_norm_params(net, i)
    return params


def get_batch_norm_params(net, i, channels=None):
    """Creates the batch-norm meta-parameters ``bn{i}_offset`` (beta, zeros) and ``bn{i}_scale`` (gamma, ones).

    Returns:
        ``(offset, scale)``, each of shape ``[channels]`` (default ``dim_hidden[i]``).
    """
    channels = channels if channels is not None else net.dim_hidden[i]
    dtype, extra = _dtype_of(net), _extra_collections(net)
    offset = extension.get_outerparameter(f"bn{i}_offset", initializer=tf.zeros_initializer(), shape=[channels],
                                          dtype=dtype, collections=extra)
    scale = extension.get_outerparameter(f"bn{i}_scale", initializer=tf.ones_initializer(), shape=[channels],
                                         dtype=dtype, collections=extra)
    return offset, scale


# ----------------------------------------------------------------------------------- layers
def conv2d(x, weight, stride=1, padding="SAME", name=None):
    """2-D convolution (NHWC) with a square ``stride``."""
    return tf.nn.conv2d(x, weight, strides=[1, stride, stride, 1], padding=padding, name=name)


def batch_norm(x, offset=None, scale=None, epsilon=BATCH_NORM_EPSILON, name="batch_norm"):
    """Batch normalization with the statistics of the current batch.

    ``y = scale * (x - mean) / sqrt(var + epsilon) + offset`` where ``mean`` and
    ``var`` are taken over every axis but the last (channels). As in the
    original BOML (``is_training=True`` always) the batch statistics are used at
    training and at test time (transductive batch norm); no moving averages
    are kept.

    Rank-4 float32 inputs with an offset and a scale use the fused kernel
    (``tf.nn.fused_batch_norm``), whose second derivatives are exact. Otherwise
    (float64, or no offset/scale) the moments are written out (mean of squared
    deviations) instead of calling ``tf.nn.moments``, whose variance stops the
    gradient through the mean: that is exact for first derivatives but not for
    the second-order derivatives that MAML-style meta-gradients take through
    the inner loop.

    Args:
        x: tensor ``[..., C]``.
        offset: ``[C]`` tensor (beta) or None.
        scale: ``[C]`` tensor (gamma) or None.
        epsilon: variance epsilon.
        name: name scope.
    """
    with tf.name_scope(name):
        if (x.shape.ndims == 4 and offset is not None and scale is not None
                and x.dtype.base_dtype in (tf.float32, tf.float16, tf.bfloat16)):
            # The fused kernel is faster and its second derivatives are exact (tested).
            output, _, _ = tf.nn.fused_batch_norm(x, tf.cast(scale, tf.float32), tf.cast(offset, tf.float32),
                                                  epsilon=epsilon, is_training=True)
            return output
        axes = list(range(x.shape.ndims - 1)) if x.shape.ndims is not None else [0, 1, 2]
        mean = tf.reduce_mean(x, axes, name="mean")
        variance = tf.reduce_mean(tf.square(x - mean), axes, name="variance")
        return tf.nn.batch_normalization(x, mean, variance, offset, scale, epsilon)


def flatten(x, name="flatten"):
    """Reshapes ``[batch, d1, d2, ...]`` to ``[batch, d1*d2*...]``; the non-batch dims must be known.

    Raises:
        ShapeError: a non-batch dimension is unknown.
    """
    dims = x.shape.as_list()[1:] if x.shape.ndims is not None else None
    if dims is None or any(d is None for d in dims):
        raise ShapeError(
            f"Cannot flatten a tensor of shape {x.shape}: every dimension but the batch one must be known. "
            "Give the input placeholder a static height, width and channel count."
        )
    return tf.reshape(x, [-1, int(np.prod(dims))], name=name)


def _block(net, x, cweight, bweight, zweight=None, zbias=None, offset=None, scale=None):
    """conv (+bias) -> [T or warp layer] -> [batch norm] -> activation -> [2x2 max pool]."""
    stride = 1 if getattr(net, "max_pool", False) else 2
    out = conv2d(x, cweight, stride=stride)
    if bweight is not None:
        out = out + bweight
    if zweight is not None:
        out = conv2d(out, zweight, stride=1)  # T-layer (1x1) or warp layer (kxk)
        if zbias is not None:
            out = out + zbias
    if getattr(net, "norm", None) is not None:
        out = batch_norm(out, offset, scale)
    activation = getattr(net, "activation", None)
    if activation is not None:
        out = activation(out)
    if getattr(net, "max_pool", False):
        out = tf.nn.max_pool2d(out, ksize=2, strides=2, padding="VALID")
    return out


def conv_block(net, cweight, bweight=None, offset=None, scale=None, inputs=None):
    """A plain block on ``net.out`` (or ``inputs``): conv (stride 2, or 1 + max pool) + bias, BN, activation."""
    return _block(net, net.out if inputs is None else inputs, cweight, bweight, offset=offset, scale=scale)


def conv_block_t(net, conv_weight, conv_bias, zweight, offset=None, scale=None, inputs=None):
    """A block with a meta-learned 1x1 "T" transform after the task convolution (MT-net / T-net).

    Reference:
        Lee & Choi, "Gradient-Based Meta-Learning with Learned Layerwise
        Metric and Subspace", ICML 2018.
    """
    return _block(net, net.out if inputs is None else inputs, conv_weight, conv_bias, zweight,
                  offset=offset, scale=scale)


def conv_block_warp(net, cweight, bweight, zweight, zbias, offset=None, scale=None, inputs=None):
    """A block with a meta-learned warp convolution (``zweight`` + ``zbias``) after the task convolution.

    Reference:
        Flennerhag et al., "Meta-Learning with Warped Gradient Descent", ICLR 2020.
    """
    return _block(net, net.out if inputs is None else inputs, cweight, bweight, zweight, zbias,
                  offset=offset, scale=scale)


def spatial_output_size(size, n_blocks, max_pool):
    """Height (or width) after ``n_blocks`` blocks: ``ceil(s/2)`` per strided SAME conv, ``floor(s/2)`` per max pool."""
    if size is None:
        return None
    for _ in range(n_blocks):
        size = size // 2 if max_pool else (size + 1) // 2
    return size


# ------------------------------------------------------------------------------- validation
def check_image_input(_input, channels, what):
    """Validates a rank-4 NHWC input and returns its channel count.

    Raises:
        ShapeError: the input is not rank 4, its channel count is unknown and
            ``channels`` is None, or it disagrees with ``channels``.
    """
    shape = _input.shape
    if shape.ndims != 4:
        raise ShapeError(
            f"{what} expects a rank-4 NHWC image batch [batch, height, width, channels]; received a tensor of "
            f"shape {shape}. Reshape the input (for example to [-1, 28, 28, 1] for Omniglot)."
        )
    last = shape.as_list()[-1]
    if channels is not None:
        if not is_positive_int(channels):
            raise InvalidArgumentError(f"channels must be a positive integer or None; received {channels!r}.")
        if last is not None and last != channels:
            raise ShapeError(
                f"{what} was given channels={channels} but its input has {last} channels (shape {shape}). "
                "Pass channels=None to take the count from the input, or feed a matching input."
            )
        return int(channels)
    if last is None:
        raise ShapeError(
            f"{what} cannot infer the channel count: the input's last dimension is unknown (shape {shape}). "
            "Give the placeholder a static channel dimension or pass channels=..."
        )
    return int(last)


def cast_input(x, dtype):
    """``x`` converted to ``dtype`` (inputs fed as float64 data into a float32 net, and conversely)."""
    x = tf.convert_to_tensor(x)
    return x if x.dtype.base_dtype == tf.as_dtype(dtype) else tf.cast(x, dtype)


def check_param_dict(params, expected_shapes, what, hint, dtype=None):
    """Checks that ``params`` has every key of ``expected_shapes`` with a compatible static shape.

    Raises:
        InvalidArgumentError: keys are missing, or an entry's dtype is not ``dtype`` (when given).
        ShapeError: a shape is incompatible.
    """
    missing = [k for k in expected_shapes if k not in params]
    if missing:
        raise InvalidArgumentError(
            f"The {what} lacks the entries {missing}; it has {list(params)}. {hint}"
        )
    for key, shape in expected_shapes.items():
        actual = tf.TensorShape(params[key].shape)
        if not actual.is_compatible_with(tf.TensorShape(shape)):
            raise ShapeError(
                f"The {what} entry {key!r} has shape {actual}; this network needs {list(shape)}. {hint}"
            )
        if dtype is not None and params[key].dtype.base_dtype != tf.as_dtype(dtype).base_dtype:
            raise InvalidArgumentError(
                f"The {what} entry {key!r} has dtype {params[key].dtype.base_dtype.name}; this network was built "
                f"with data_type={tf.as_dtype(dtype).name}. Pass the same data_type as the network that owns it."
            )


def ordered(params):
    """A fresh OrderedDict copy of ``params`` (None gives an empty one)."""
    return OrderedDict(params) if params else OrderedDict()


# ------------------------------------------------------------------ conv-net configuration
_BATCH_NORM_NAMES = {"batch_norm", "batchnorm", "bn"}


def parse_norm(norm):
    """Normalizes the ``norm`` argument: returns ``"batch_norm"`` or None.

    Accepts None, ``"None"``/``"none"``, ``"batch_norm"`` (any case) and the
    function :func:`batch_norm` itself.

    Raises:
        InvalidArgumentError: anything else.
    """
    if norm is None or norm is False:
        return None
    if norm is batch_norm:
        return "batch_norm"
    if isinstance(norm, str):
        key = norm.strip().lower()
        if key in ("none", ""):
            return None
        if key in _BATCH_NORM_NAMES:
            return "batch_norm"
    raise InvalidArgumentError(
        f"norm must be 'batch_norm' or None; received {norm!r}. boml's conv nets support only "
        "(transductive) batch normalization; pass norm=None to disable it."
    )


def check_conv_config(what, dim_hidden, kernel, use_t, use_warp, data_type, activation):
    """Validates the common arguments of the 4-block conv nets; returns ``(dim_hidden list, dtype)``.

    Raises:
        InvalidArgumentError: a value is not allowed.
    """
    hidden = list(dim_hidden) if isinstance(dim_hidden, (list, tuple)) else None
    if not hidden or not all(is_positive_int(d) for d in hidden):
        raise InvalidArgumentError(
            f"{what}: dim_hidden must be a non-empty list of positive integers (filters per block); "
            f"received {dim_hidden!r}. Example: dim_hidden=(64, 64, 64, 64)."
        )
    if not is_positive_int(kernel):
        raise InvalidArgumentError(f"{what}: kernel must be a positive integer; received {kernel!r}.")
    if use_t and use_warp:
        raise InvalidArgumentError(
            f"{what}: use_t=True and use_warp=True cannot be combined; received both. Choose T-layers "
            "(MT-net) or warp layers (WarpGrad)."
        )
    try:
        dtype = tf.as_dtype(data_type).base_dtype
    except TypeError:
        dtype = None
    if dtype is None or not dtype.is_floating:
        raise InvalidArgumentError(
            f"{what}: data_type must be a floating-point dtype (tf.float32 or tf.float64); received {data_type!r}."
        )
    if activation is not None and not callable(activation):
        raise InvalidArgumentError(
            f"{what}: activation must be a callable such as tf.nn.relu, or None; received {activation!r}."
        )
    return [int(d) for d in hidden], dtype


def check_dim_output(what, dim_output):
    """Returns ``(dims list, N)`` for ``dim_output`` given as an int or a sequence ending with an int.

    Raises:
        InvalidArgumentError: ``dim_output`` is not a positive integer (or a sequence ending with one).
    """
    dims = list(as_tuple_or_list(dim_output)) if dim_output is not None else []
    if not dims or not is_positive_int(dims[-1]):
        raise InvalidArgumentError(
            f"{what}: dim_output must be a positive integer (the number of classes N); received {dim_output!r}."
        )
    return dims, int(dims[-1])


# ------------------------------------------------------------------ residual (V2) helpers
def residual_block(x, skip_weight, conv_weights, skip_bias=None, conv_biases=None, norm_params=None,
                   activation=None, name="residual_block"):
    """A residual block of the V2 networks, followed by a 2x2 max pool (stride 2, SAME).

    ``out = max_pool(skip(x) + main(x))`` where ``skip`` is the 1x1 convolution
    ``skip_weight`` (+ ``skip_bias``) and ``main`` chains, for each kernel of
    ``conv_weights``: convolution (stride 1, SAME) -> optional bias ->
    optional :func:`batch_norm` with the matching ``(offset, scale)`` of
    ``norm_params`` -> ``activation``. Every operation has exact second
    derivatives, so MAML-style meta-gradients can be taken through it.

    Args:
        x: NHWC input.
        skip_weight: ``[1, 1, c_in, c_out]`` kernel of the skip connection.
        conv_weights: list of ``[k, k, c, c_out]`` kernels of the main path.
        skip_bias: optional ``[c_out]`` bias of the skip connection.
        conv_biases: optional list (same length as ``conv_weights``) of biases or None.
        norm_params: optional list of ``(offset, scale)`` pairs, one per convolution.
        activation: nonlinearity after each normalized convolution (None: linear).
        name: name scope.

    Returns:
        The pooled block output, ``ceil(h/2) x ceil(w/2) x c_out``.
    """
    with tf.name_scope(name):
        skip = conv2d(x, skip_weight, name="skip")
        if skip_bias is not None:
            skip = skip + skip_bias
        h = x
        for j, weight in enumerate(conv_weights):
            h = conv2d(h, weight, name=f"conv{j}")
            if conv_biases is not None and conv_biases[j] is not None:
                h = h + conv_biases[j]
            if norm_params is not None:
                h = batch_norm(h, norm_params[j][0], norm_params[j][1], name=f"batch_norm{j}")
            if activation is not None:
                h = activation(h)
        return tf.nn.max_pool2d(tf.add(skip, h, name="sum"), ksize=2, strides=2, padding="SAME")
