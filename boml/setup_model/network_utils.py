"""Layers of the boml networks, and the original ``network_utils`` names.

The layers are plain ``tf.compat.v1`` graph code (no ``tf.contrib``, no Keras layers), so that boml's
engine can re-evaluate a network's output with substituted inputs and parameters: :func:`conv2d`,
:func:`batch_norm`, :func:`flatten`, :func:`conv_block`, :func:`conv_block_t`, :func:`conv_block_warp`,
:func:`residual_block`, :func:`leaky_relu` and :func:`spatial_output_size`.

The other pieces the original kept here live in modules of their own and are re-exported, so
``network_utils.X`` keeps working:

* initializers (:mod:`boml.setup_model.initializers`): ``GlorotUniform``, ``glorot_uniform``,
  ``as_initializer``;
* meta-parameter creators and parameter dicts (:mod:`boml.setup_model.parameters`): ``get_conv_weight``,
  ``get_bias_weight``, ``get_warp_weight``, ``get_warp_bias``, ``get_identity``, ``get_batch_norm_params``,
  ``block_model_shapes``, ``create_block_model_parameters``, ``filter_vars``, ``ordered``;
* argument checks (:mod:`boml.setup_model.checks`): ``check_image_input``, ``cast_input``,
  ``check_param_dict``, ``parse_norm``, ``check_conv_config``, ``check_dim_output``;
* numpy helpers (:mod:`boml.helpers`): ``as_list``, ``as_tuple_or_list``, ``maybe_call``, ``maybe_get``,
  ``flatten_list``, ``name_from_vars``, ``name_from_dict``, ``get_rand_state``, ``half_int``,
  ``mean_std_ci``, ``is_positive_int``.
"""
import collections
import weakref

import numpy as np
import tensorflow.compat.v1 as tf

from boml.errors import ShapeError
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
from boml.setup_model.checks import (  # noqa: F401 - re-exported for compatibility
    cast_input,
    check_conv_config,
    check_dim_output,
    check_image_input,
    check_param_dict,
    parse_norm,
)
from boml.setup_model.initializers import GlorotUniform, as_initializer, glorot_uniform  # noqa: F401
from boml.setup_model.parameters import (  # noqa: F401 - re-exported for compatibility
    block_model_shapes,
    create_block_model_parameters,
    filter_vars,
    get_batch_norm_params,
    get_bias_weight,
    get_conv_weight,
    get_identity,
    get_warp_bias,
    get_warp_weight,
    ordered,
)

BATCH_NORM_EPSILON = 1e-3
"""Variance epsilon of :func:`batch_norm` (the value of the original BOML layers)."""

BatchNormLayer = collections.namedtuple("BatchNormLayer", ["input", "output", "offset", "scale", "epsilon"])
BatchNormLayer.__doc__ = """One :func:`batch_norm` call: its input and output tensors, offset, scale and epsilon."""
_BATCH_NORM_LAYERS = weakref.WeakKeyDictionary()


def batch_norm_layers(graph=None):
    """The :func:`batch_norm` calls built in ``graph`` (default: the default graph), in creation order.

    MAML++'s per-step running statistics read their inputs and replace their outputs at evaluation.
    """
    return list(_BATCH_NORM_LAYERS.get(graph or tf.get_default_graph(), []))


def leaky_relu(x, alpha=0.2, name="leaky_relu"):
    """``max(x, alpha * x)``."""
    return tf.maximum(x, alpha * x, name=name)


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
    are kept here. Every call is recorded (:func:`batch_norm_layers`): MAML++'s
    ``per_step_bn_statistics`` accumulates per-step running statistics of these
    layers and normalizes with them at evaluation.

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
        else:
            axes = list(range(x.shape.ndims - 1)) if x.shape.ndims is not None else [0, 1, 2]
            mean = tf.reduce_mean(x, axes, name="mean")
            variance = tf.reduce_mean(tf.square(x - mean), axes, name="variance")
            output = tf.nn.batch_normalization(x, mean, variance, offset, scale, epsilon)
    _BATCH_NORM_LAYERS.setdefault(tf.get_default_graph(), []).append(
        BatchNormLayer(input=x, output=output, offset=offset, scale=scale, epsilon=epsilon))
    return output


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
