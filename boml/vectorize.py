"""All tasks of a meta-batch in one set of kernels: the vectorized task map.

``boml.task.map_over_tasks`` traces the per-task body once. By default the body
is then vectorized with TensorFlow's ``pfor`` converter (the machinery behind
``tf.vectorized_map``, Agarwal and Ganichev, "Auto-Vectorizing TensorFlow
Graphs: Jacobians, Auto-Batching and Beyond", 2019): every operation of the
body, forward and derivatives alike, is replaced by one operation over all the
tasks, whose per-task slices compute what the operation computed for one task.
The result is the same numbers as a ``tf.map_fn`` over the tasks, with about
1/tasks as many kernel launches, which is what a meta-iteration of small
per-task networks pays for on a CPU (docs/performance.rst).

``pfor`` has no efficient rule for a convolution whose filters differ per task
(the adapted weights of MAML-family methods): it runs it in a while loop, one
task at a time. This module supplies the rule, a grouped convolution. With the
tasks' images side by side along the channel axis (task ``b``'s channel ``c``
at ``b * C + c``) and their filters likewise (``[kh, kw, C, tasks * F]``),
the convolution of every task with its own filters is one convolution with
``groups = tasks``; its two derivatives (``Conv2DBackpropInput`` and
``Conv2DBackpropFilter``) are grouped the same way. In float64, where the CPU
kernels have no grouped filter derivative, each group is its own convolution.

``pfor`` is private TensorFlow API (``tensorflow.python.ops.parallel_for``); when
it is missing, or cannot convert an operation of the body, the task map falls
back to ``tf.map_fn`` (``VectorizationError`` carries the reason).
"""
import contextlib

import tensorflow.compat.v1 as tf

from boml.errors import BOMLError

try:  # private TensorFlow API: the task map falls back to tf.map_fn without it.
    from tensorflow.python.ops.parallel_for import control_flow_ops as _loops
    from tensorflow.python.ops.parallel_for import pfor as _pfor
except ImportError:  # pragma: no cover - depends on the TensorFlow build
    _loops = _pfor = None

__all__ = ["VectorizationError", "vectorized_tasks", "grouped_convolution_rules"]

_CONVOLUTIONS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")


class VectorizationError(BOMLError):
    """The task body cannot be vectorized; the task map runs it with ``tf.map_fn`` instead."""


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _attributes(pfor_input):
    return {"strides": pfor_input.get_attr("strides"), "padding": _text(pfor_input.get_attr("padding")),
            "data_format": _text(pfor_input.get_attr("data_format")),
            "dilations": pfor_input.get_attr("dilations")}


def _dimensions(tensor):
    """The dimensions of ``tensor``: Python ints where static, scalar tensors elsewhere."""
    dynamic = None
    dims = []
    for index, size in enumerate(tensor.shape.as_list()):
        if size is None:
            dynamic = tf.shape(tensor) if dynamic is None else dynamic
            size = dynamic[index]
        dims.append(size)
    return dims


def _channels_side_by_side(stacked, tasks):
    """``[tasks, N, H, W, C] -> [N, H, W, tasks * C]`` (task ``b``'s channel ``c`` at ``b * C + c``).

    Also ``[tasks, kh, kw, C, F] -> [kh, kw, C, tasks * F]`` for filters. The sizes are
    explicit (no ``-1``), so that an empty group of tasks keeps its shape.
    """
    a, b, c, channels = _dimensions(stacked)[1:]
    return tf.reshape(tf.transpose(stacked, [1, 2, 3, 0, 4]), tf.stack([a, b, c, tasks * channels]))


def _tasks_first(side_by_side, tasks, channels):
    """Inverse of ``_channels_side_by_side``: ``[a, b, c, tasks * channels] -> [tasks, a, b, c, channels]``."""
    a, b, c = _dimensions(side_by_side)[:3]
    return tf.transpose(tf.reshape(side_by_side, tf.stack([a, b, c, tasks, channels])), [3, 0, 1, 2, 4])


def _output_channels(pfor_input, fallback):
    """The last dimension of the per-task operation's output (static when known, else ``fallback()``)."""
    size = pfor_input.op.outputs[0].shape.as_list()
    return size[-1] if size and size[-1] is not None else fallback()


def _grouped(op, groups, inputs, split_axes, sizes=None, **attributes):
    """``op`` over ``groups`` channel groups: one grouped kernel, or (float64) one kernel per group."""
    if inputs[0].dtype != tf.float64:
        return op(*inputs, sizes, **attributes) if sizes is not None else op(*inputs, **attributes)
    parts = [tf.split(t, groups, axis=axis) for t, axis in zip(inputs, split_axes)]
    outputs = []
    for pieces in zip(*parts):
        if sizes is None:
            outputs.append(op(*pieces, **attributes))
        else:
            outputs.append(op(*pieces, tf.concat([sizes[:3], sizes[3:] // groups], 0), **attributes))
    return tf.concat(outputs, axis=-1)


def _conv2d(pfor_input):
    """``Conv2D`` with per-task filters: a grouped convolution over the tasks."""
    if not pfor_input.input(1)[1]:
        return _STOCK["Conv2D"](pfor_input)
    pfor_input.stack_inputs(stack_indices=[0])
    images, filters = pfor_input.stacked_input(0), pfor_input.stacked_input(1)
    tasks = _tasks(pfor_input)
    result = _grouped(lambda x, f, **a: tf.nn.conv2d(x, f, **a), tasks,
                      [_channels_side_by_side(images, tasks), _channels_side_by_side(filters, tasks)], [-1, -1],
                      **_attributes(pfor_input))
    channels = _output_channels(pfor_input, lambda: _dimensions(filters)[-1])
    return [_pfor.wrap(_tasks_first(result, tasks, channels), True)]


def _conv2d_input_gradient(pfor_input):
    """``Conv2DBackpropInput`` with per-task filters: grouped, like the forward convolution."""
    if not pfor_input.input(1)[1]:
        return _STOCK["Conv2DBackpropInput"](pfor_input)
    pfor_input.stack_inputs(stack_indices=[2])
    sizes = pfor_input.unstacked_input(0)
    filters, output_gradient = pfor_input.stacked_input(1), pfor_input.stacked_input(2)
    tasks = _tasks(pfor_input)
    grouped_sizes = tf.concat([sizes[:3], sizes[3:] * tasks], 0)

    def kernel(f, g, s, **a):
        return tf.nn.conv2d_backprop_input(s, f, g, **a)

    result = _grouped(kernel, tasks,
                      [_channels_side_by_side(filters, tasks), _channels_side_by_side(output_gradient, tasks)],
                      [-1, -1], grouped_sizes, **_attributes(pfor_input))
    channels = _output_channels(pfor_input, lambda: _dimensions(filters)[-2])
    return [_pfor.wrap(_tasks_first(result, tasks, channels), True)]


def _conv2d_filter_gradient(pfor_input):
    """``Conv2DBackpropFilter`` with per-task inputs: the grouped filter derivative, one filter per task."""
    if not pfor_input.input(0)[1]:
        return _STOCK["Conv2DBackpropFilter"](pfor_input)
    pfor_input.stack_inputs(stack_indices=[2])
    images, sizes = pfor_input.stacked_input(0), pfor_input.unstacked_input(1)
    output_gradient = pfor_input.stacked_input(2)
    tasks = _tasks(pfor_input)
    grouped_sizes = tf.concat([sizes[:3], sizes[3:] * tasks], 0)

    def kernel(x, g, s, **a):
        return tf.nn.conv2d_backprop_filter(x, s, g, **a)

    result = _grouped(kernel, tasks,
                      [_channels_side_by_side(images, tasks), _channels_side_by_side(output_gradient, tasks)],
                      [-1, -1], grouped_sizes, **_attributes(pfor_input))
    channels = _output_channels(pfor_input, lambda: _dimensions(output_gradient)[-1])
    return [_pfor.wrap(_tasks_first(result, tasks, channels), True)]


def _tasks(pfor_input):
    """The number of tasks converted at once (a Python int when static)."""
    length = pfor_input.pfor.loop_len_vector
    static = tf.get_static_value(length)
    return int(static[0]) if static is not None else length[0]


_RULES = {"Conv2D": _conv2d, "Conv2DBackpropInput": _conv2d_input_gradient,
          "Conv2DBackpropFilter": _conv2d_filter_gradient}
_STOCK = {}


@contextlib.contextmanager
def grouped_convolution_rules():
    """Installs the grouped-convolution rules in ``pfor`` for the duration of the block, then restores its own."""
    registry = _pfor._pfor_converter_registry  # noqa: SLF001 - private TensorFlow API, see the module docstring
    saved = {name: registry.get(name) for name in _CONVOLUTIONS}
    _STOCK.update({name: rule for name, rule in saved.items() if rule is not None})
    registry.update(_RULES)
    try:
        yield
    finally:
        for name, rule in saved.items():
            if rule is None:
                registry.pop(name, None)
            else:
                registry[name] = rule


def vectorized_tasks(body, elements, tasks):
    """``body`` applied to every task's slice of ``elements``, vectorized over the tasks.

    Args:
        body: ``list of per-task tensors -> list of tensors`` (one task's outputs).
        elements: tensors with a leading task axis.
        tasks: the number of tasks (the length of the task axis; an int or a scalar tensor).
            All of them are computed at once.

    Returns:
        The list of ``body``'s outputs, each with a leading task axis.

    Raises:
        VectorizationError: ``pfor`` is unavailable, or an operation of the body has no
            vectorization rule (the caller then maps the tasks one at a time). Errors raised
            by ``body`` itself propagate unchanged.
    """
    if _loops is None or not hasattr(_pfor, "_pfor_converter_registry"):
        raise VectorizationError("TensorFlow's pfor converter is not available in this TensorFlow build.")
    traced = []

    @tf.autograph.experimental.do_not_convert
    def loop_fn(index):
        outputs = body([tf.gather(e, index) for e in elements])
        traced.append(True)
        return outputs

    try:
        with grouped_convolution_rules():
            return list(_loops.pfor(loop_fn, tasks, fallback_to_while_loop=False))
    except (ValueError, TypeError, NotImplementedError, tf.errors.OpError) as error:
        if not traced:  # the body itself failed: not a vectorization problem.
            raise
        raise VectorizationError(f"The task body cannot be vectorized: {error}") from error
