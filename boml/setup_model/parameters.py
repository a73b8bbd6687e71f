"""Meta-parameter creators and parameter-dict helpers of the conv networks.

Every creator goes through :func:`boml.extension.get_outerparameter`, so the variables are
meta-parameters named as in the original BOML (``conv{i}``, ``bias{i}``, ``conv{i}_z``, ``bias{i}_z``)
plus boml's batch-norm parameters ``bn{i}_offset``/``bn{i}_scale``.
"""
from collections import OrderedDict

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.helpers import as_list
from boml.setup_model.initializers import GlorotUniform, as_initializer

__all__ = ["get_conv_weight", "get_bias_weight", "get_warp_weight", "get_warp_bias", "get_identity",
           "block_model_shapes", "create_block_model_parameters", "get_batch_norm_params", "filter_vars", "ordered"]


def _dtype_of(net):
    return getattr(net, "datatype", tf.float32)


def _extra_collections(net):
    return as_list(getattr(net, "meta_collections", None))


def _net_parameter(net, name, shape, initializer, default):
    """A meta-parameter of ``net``'s dtype and extra collections (``default`` initializer when None)."""
    return extension.get_outerparameter(name, initializer=as_initializer(initializer, default), shape=shape,
                                        dtype=_dtype_of(net), collections=_extra_collections(net))


def get_conv_weight(net, i, initializer, c_in=None, c_out=None):
    """Creates the meta-parameter ``conv{i}`` of shape ``[kernel, kernel, c_in, c_out]``.

    Args:
        net: the network (its ``kernel``, ``channels``, ``dim_hidden``, dtype and collections are used).
        i: the block index.
        initializer: an initializer argument (see ``as_initializer``); None gives Glorot uniform.
        c_in: input channels (default: the input's for block 0, ``dim_hidden[i-1]`` otherwise).
        c_out: output channels (default ``dim_hidden[i]``).

    Returns:
        The variable.
    """
    c_in = c_in if c_in is not None else (net.channels if i == 0 else net.dim_hidden[i - 1])
    c_out = c_out if c_out is not None else net.dim_hidden[i]
    return _net_parameter(net, f"conv{i}", [net.kernel, net.kernel, c_in, c_out], initializer, GlorotUniform)


def get_bias_weight(net, i, initializer=None):
    """Creates the meta-parameter ``bias{i}`` of shape ``[dim_hidden[i]]`` (zeros by default)."""
    return _net_parameter(net, f"bias{i}", [net.dim_hidden[i]], initializer, tf.zeros_initializer)


def get_warp_weight(net, i, initializer):
    """Creates the warp-layer kernel ``conv{i}_z`` of shape ``[kernel, kernel, d_i, d_i]``.

    The warp layer follows the task convolution, so it maps ``d_i`` channels to
    ``d_i`` channels (the original used ``d_{i-1}`` as input width, which only
    worked because all widths were equal).
    """
    d = net.dim_hidden[i]
    return _net_parameter(net, f"conv{i}_z", [net.kernel, net.kernel, d, d], initializer, GlorotUniform)


def get_warp_bias(net, i, initializer=None):
    """Creates the warp-layer bias ``bias{i}_z`` of shape ``[d_i]`` (zeros by default)."""
    return _net_parameter(net, f"bias{i}_z", [net.dim_hidden[i]], initializer, tf.zeros_initializer)


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



def filter_vars(var_name, scope=None):
    """Global variables whose name (without ``:0``) ends with ``var_name``, optionally under ``scope``."""
    return [v for v in tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES, scope=scope)
            if v.name.split(":")[0].endswith(var_name)]


def ordered(params):
    """A fresh OrderedDict copy of ``params`` (None gives an empty one)."""
    return OrderedDict(params) if params else OrderedDict()
