"""Argument and input checks of the boml networks (typed errors that say what to pass)."""
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError, ShapeError
from boml.helpers import as_tuple_or_list, is_positive_int
from boml.setup_model.initializers import GlorotUniform, as_initializer

__all__ = ["check_image_input", "cast_input", "check_param_dict", "parse_norm", "check_conv_config",
           "check_dim_output", "configure_conv4", "conv4_output_size"]


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


_BATCH_NORM_NAMES = {"batch_norm", "batchnorm", "bn"}


def parse_norm(norm):
    """Normalizes the ``norm`` argument: returns ``"batch_norm"`` or None.

    Accepts None, ``"None"``/``"none"``, ``"batch_norm"`` (any case) and the
    function :func:`batch_norm` itself.

    Raises:
        InvalidArgumentError: anything else.
    """
    from boml.setup_model.network_utils import batch_norm  # the layers import this module

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


def configure_conv4(net, _input, what, dim_hidden, kernel, use_t, use_warp, data_type, activation, norm, channels,
                    max_pool, outer_method, conv_initializer):
    """Validates the arguments shared by the V1 conv-4 networks and stores them on ``net``.

    Sets ``dim_hidden``, ``datatype``, ``norm``, ``channels``, ``kernel``, ``max_pool``, ``use_t``,
    ``use_warp``, ``outer_method``, ``activation``, ``conv_initializer`` (Glorot uniform by default) and
    ``bias_initializer`` (zeros).

    Args:
        net: the network being built.
        _input: its NHWC input.
        what: the network's name for the error messages.
        dim_hidden, kernel, use_t, use_warp, data_type, activation: the constructor's arguments.
        norm, channels, max_pool, outer_method, conv_initializer: the constructor's arguments.

    Raises:
        InvalidArgumentError: an argument is not allowed (see :func:`check_conv_config`, :func:`parse_norm`).
        ShapeError: the input is not an NHWC batch matching ``channels``.
    """
    net.dim_hidden, net.datatype = check_conv_config(what, dim_hidden, kernel, use_t, use_warp, data_type, activation)
    net.norm = parse_norm(norm)
    net.channels = check_image_input(_input, channels, what)
    net.kernel = int(kernel)
    net.max_pool = bool(max_pool)
    net.use_t = bool(use_t)
    net.use_warp = bool(use_warp)
    net.outer_method = outer_method
    net.activation = activation
    net.conv_initializer = as_initializer(conv_initializer, GlorotUniform, "conv_initializer")
    net.bias_initializer = tf.zeros_initializer()


def conv4_output_size(net, _input, reason, advice):
    """Height and width of the output of ``net``'s last block, which ``net`` flattens.

    Args:
        net: a V1 conv-4 network (``dim_hidden`` and ``max_pool`` set).
        _input: its NHWC input.
        reason: why the size is needed, for the message (e.g. ``"flattens its last block"``).
        advice: what to do about an unknown size, for the message.

    Returns:
        ``(height, width)``.

    Raises:
        ShapeError: the input height or width is not static, or the blocks shrink the input below 1x1.
    """
    from boml.setup_model.network_utils import spatial_output_size  # the layers import this module

    what = type(net).__name__
    height, width = _input.shape.as_list()[1:3]
    n = len(net.dim_hidden)
    h = spatial_output_size(height, n, net.max_pool)
    w = spatial_output_size(width, n, net.max_pool)
    if h is None or w is None:
        raise ShapeError(
            f"{what} {reason}, so it needs a static input height and width; received an input of shape "
            f"{_input.shape}. {advice}"
        )
    if h < 1 or w < 1:
        blocks = "max-pooled blocks" if net.max_pool else "blocks"
        raise ShapeError(
            f"{what}: an input of shape {_input.shape} is too small for {n} {blocks} (it shrinks to {h}x{w}). "
            "Use larger images or fewer blocks."
        )
    return h, w
