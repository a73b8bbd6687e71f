"""The ``pfor`` rules of the vectorized task map: the tasks' channels side by side.

TensorFlow's ``pfor`` converter (the machinery behind ``tf.vectorized_map``; Agarwal
and Ganichev, "Auto-Vectorizing TensorFlow Graphs: Jacobians, Auto-Batching and
Beyond", 2019) keeps every converted tensor with the tasks first,
``[tasks, a, b, c, C]``. It has no efficient rule for a convolution whose filters
differ per task (the adapted weights of MAML-family methods): it would run it one
task at a time. The rules here use the side-by-side layout ``[a, b, c, tasks * C]``
(task ``t``'s channel ``c`` at ``t * C + c``), in which

* a convolution of every task with its own filters (``[kh, kw, C, tasks * F]``) is one
  convolution with ``groups = tasks``, and so are its two derivatives
  (``Conv2DBackpropInput``, ``Conv2DBackpropFilter``); in float64, where the CPU has no
  grouped filter derivative, each group is its own convolution (in a ``tf.map_fn`` over the
  groups when their count is known at run time only, as inside a converted while loop), and
  so is each derivative when the CPU kernels run without oneDNN (``grouped_derivatives_available``);
* batch norm with batch statistics is one fused batch norm over ``tasks * C`` channels
  (a channel's statistics are its own task's);
* ``ZerosLike`` of a task-stacked ``TensorList`` (a while loop's gradient accumulator) is
  the list of zeros, stacked like its input (``pfor``'s rule has no variant form);
* elementwise ops, per-channel reductions, no-op reshapes and per-channel tiles are the
  same ops on the side-by-side tensors, so that a chain of rules transposes once where it
  enters the layout and once where it leaves (``_Layout``).

Every other op keeps ``pfor``'s own rule. The rules are installed only while the task
map converts its body (``side_by_side_rules``). ``pfor`` is private TensorFlow API
(``tensorflow.python.ops.parallel_for``); without it the task map keeps ``tf.map_fn``.
"""
import contextlib

import numpy as np
import tensorflow.compat.v1 as tf

try:  # private TensorFlow API: the task map falls back to tf.map_fn without it.
    from tensorflow.python.ops.parallel_for import pfor as _pfor
except ImportError:  # pragma: no cover - depends on the TensorFlow build
    _pfor = None

__all__ = ["grouped_derivatives_available", "side_by_side_rules", "rules_available"]


def rules_available():
    """True when this TensorFlow build has the ``pfor`` converter and its rule registry."""
    return _pfor is not None and hasattr(_pfor, "_pfor_converter_registry")


def grouped_derivatives_available():
    """True when this TensorFlow's CPU kernels differentiate grouped convolutions (oneDNN is on).

    Without oneDNN (``TF_ENABLE_ONEDNN_OPTS=0``, or a build without it) the CPU computes a grouped
    ``Conv2D`` but fails at run time on its ``Conv2DBackpropInput`` and ``Conv2DBackpropFilter``
    ("filter_size does not have enough elements"); the rules then compute one derivative per task.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # pragma: no cover - depends on the TensorFlow build
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _attributes(pfor_input):
    return {"strides": pfor_input.get_attr("strides"), "padding": _text(pfor_input.get_attr("padding")),
            "data_format": _text(pfor_input.get_attr("data_format")),
            "dilations": pfor_input.get_attr("dilations")}


def _dimensions(tensor, rank):
    """The ``rank`` dimensions of ``tensor``: Python ints where static, scalar tensors elsewhere."""
    dynamic = None
    dims = []
    for index, size in enumerate(tensor.shape.as_list() if tensor.shape.rank is not None else [None] * rank):
        if size is None:
            dynamic = tf.shape(tensor) if dynamic is None else dynamic
            size = dynamic[index]
        dims.append(size)
    return dims


def _shape(dimensions):
    """A shape operand: a plain list (one constant) when every dimension is static, else a ``tf.stack``."""
    return list(dimensions) if all(isinstance(d, int) for d in dimensions) else tf.stack(dimensions)


def _all_ones(*dimensions):
    return all(isinstance(d, int) and d == 1 for d in dimensions)


def _channels_side_by_side(stacked, tasks):
    """``[tasks, N, H, W, C] -> [N, H, W, tasks * C]`` (task ``b``'s channel ``c`` at ``b * C + c``).

    Also ``[tasks, kh, kw, C, F] -> [kh, kw, C, tasks * F]`` for filters; a pure reshape when
    ``N = H = W = 1``.
    """
    a, b, c, channels = _dimensions(stacked, 5)[1:]
    if _all_ones(a, b, c):
        return tf.reshape(stacked, [1, 1, 1, tasks * channels])
    return tf.reshape(tf.transpose(stacked, [1, 2, 3, 0, 4]), _shape([a, b, c, tasks * channels]))


def _tasks_first(side_by_side, tasks, channels):
    """Inverse of ``_channels_side_by_side``: ``[a, b, c, tasks * channels] -> [tasks, a, b, c, channels]``."""
    a, b, c = _dimensions(side_by_side, 4)[:3]
    if _all_ones(a, b, c):
        return tf.reshape(side_by_side, [tasks, 1, 1, 1, channels])
    return tf.transpose(tf.reshape(side_by_side, _shape([a, b, c, tasks, channels])), [3, 0, 1, 2, 4])


class _Layout:
    """The converted tensors that also exist side by side, so that a chain of rules transposes once.

    ``pfor`` keeps every converted tensor with the tasks first (``[tasks, a, b, c, C]``);
    the grouped convolutions and the batch norm over tasks x channels work on the
    side-by-side form ``[a, b, c, tasks * C]``. A rule that produces a side-by-side
    result records it here beside the tasks-first view it hands to ``pfor``, and a rule
    that needs the side-by-side form of a tensor finds it here instead of transposing it
    again.

    Most tasks-first views are never read (the next rule reads the side-by-side form). In
    ``graph``, the graph the conversion runs in, a view is therefore first a stand-in (one op,
    where the view is two); ``materialize`` builds the views that an op reads and rewires
    their readers. In other graphs (the bodies of converted while loops, finished before the
    conversion ends) a view is built at once.
    """

    def __init__(self, graph=None):
        self._side_by_side = {}
        self._graph = graph
        self._deferred = []

    def knows(self, stacked):
        return stacked.ref() in self._side_by_side

    def side_by_side(self, stacked, tasks):
        """The side-by-side form of a tasks-first rank-5 tensor (recorded, or computed once)."""
        key = stacked.ref()
        if key not in self._side_by_side:
            self._side_by_side[key] = _channels_side_by_side(stacked, tasks)
        return self._side_by_side[key]

    def tasks_first(self, side_by_side, tasks, channels):
        """The tasks-first view of a side-by-side result, recorded with it; wrapped for ``pfor``."""
        if self._graph is not None and tf.get_default_graph() is self._graph:
            # the side-by-side value itself under the tasks-first shape that pfor gives it: it is read only as a
            # control input (pfor's copy of the op's control edges) once materialize has rewired its readers
            stacked = tf.raw_ops.PlaceholderWithDefault(input=side_by_side, shape=tf.TensorShape(None),
                                                        name="deferred_tasks_first")
            self._deferred.append((stacked, side_by_side, tasks, channels))
        else:
            stacked = _tasks_first(side_by_side, tasks, channels)
        self._side_by_side[stacked.ref()] = side_by_side
        return _pfor.wrap(stacked, True)

    def materialize(self, outputs):
        """Builds the deferred views that an op or ``outputs`` reads; returns ``outputs`` with them."""
        wanted = {t.ref() for t in outputs}
        views = {}
        for placeholder, side_by_side, tasks, channels in self._deferred:
            readers = placeholder.consumers()
            if not readers and placeholder.ref() not in wanted:
                continue
            view = _tasks_first(side_by_side, tasks, channels)
            view.set_shape(placeholder.shape)
            for op in readers:
                for index, tensor in enumerate(op.inputs):
                    if tensor is placeholder:
                        op._update_input(index, view)  # noqa: SLF001 - rewiring an op not yet run
            views[placeholder.ref()] = view
        self._deferred = []
        return [views.get(t.ref(), t) for t in outputs]


_LAYOUT = _Layout()


def _output_channels(pfor_input, fallback):
    """The last dimension of the per-task operation's output (static when known, else ``fallback()``)."""
    size = pfor_input.op.outputs[0].shape.as_list()
    return size[-1] if size and size[-1] is not None else fallback()


def _grouped(op, groups, inputs, sizes=None, **attributes):
    """``op`` over ``groups`` channel groups: one grouped kernel, or one kernel per group.

    One kernel per group in float64 (the CPU has no grouped float64 kernel), and for the two
    derivatives when ``grouped_derivatives_available()`` is False.

    ``inputs`` are side by side (groups along the last axis); ``sizes``, for a derivative, are
    the grouped result's sizes (a list of ints when static, else a tensor).
    """
    if inputs[0].dtype != tf.float64 and (sizes is None or grouped_derivatives_available()):
        return op(*inputs, *([] if sizes is None else [sizes]), **attributes)
    if sizes is None:
        per_group = []
    elif isinstance(sizes, list):
        per_group = [sizes[:3] + [sizes[3] // groups]]
    else:
        per_group = [tf.concat([sizes[:3], sizes[3:] // groups], 0)]
    if not isinstance(groups, int):  # a count known at run time only (inside a converted while loop)
        return _per_group_map(lambda pieces: op(*pieces, *per_group, **attributes), groups, inputs)
    parts = [tf.split(t, groups, axis=-1) for t in inputs]
    return tf.concat([op(*pieces, *per_group, **attributes) for pieces in zip(*parts)], axis=-1)


def _per_group_map(kernel, groups, inputs):
    """``kernel`` on every channel group of the 4-D side-by-side ``inputs``, in a ``tf.map_fn`` over the groups."""

    def groups_first(tensor):
        shape = tf.shape(tensor)
        split = tf.reshape(tensor, tf.concat([shape[:3], [groups, shape[3] // groups]], 0))
        return tf.transpose(split, [3, 0, 1, 2, 4])

    results = tf.map_fn(kernel, [groups_first(t) for t in inputs], fn_output_signature=inputs[0].dtype)
    side_by_side = tf.transpose(results, [1, 2, 3, 0, 4])
    shape = tf.shape(side_by_side)
    return tf.reshape(side_by_side, tf.concat([shape[:3], [groups * shape[4]]], 0))


def _conv2d(pfor_input):
    """``Conv2D`` with per-task filters: a grouped convolution over the tasks."""
    if not pfor_input.input(1)[1]:
        return _STOCK["Conv2D"](pfor_input)
    pfor_input.stack_inputs(stack_indices=[0])
    images, filters = pfor_input.stacked_input(0), pfor_input.stacked_input(1)
    tasks = _tasks(pfor_input)
    result = _grouped(lambda x, f, **a: tf.nn.conv2d(x, f, **a), tasks,
                      [_LAYOUT.side_by_side(images, tasks), _LAYOUT.side_by_side(filters, tasks)],
                      **_attributes(pfor_input))
    channels = _output_channels(pfor_input, lambda: _dimensions(filters, 5)[-1])
    return [_LAYOUT.tasks_first(result, tasks, channels)]


def _grouped_derivative(pfor_input, operands, sizes_index, kernel, channels):
    """A convolution derivative over the tasks: the ``operands`` (input indices) side by side, sizes grouped.

    Args:
        pfor_input: the op's ``pfor`` input; its input 2 is the output gradient.
        operands: the two input indices the grouped kernel takes, in ``kernel``'s order.
        sizes_index: the input holding the per-task sizes of the result.
        kernel: ``(first, second, grouped_sizes, **attributes) -> side-by-side result``.
        channels: ``operands' tensors -> the result's per-task channels`` (when not static).
    """
    pfor_input.stack_inputs(stack_indices=[2])
    tasks = _tasks(pfor_input)
    sizes = pfor_input.unstacked_input(sizes_index)
    tensors = [pfor_input.stacked_input(i) for i in operands]
    static = tf.get_static_value(sizes)
    grouped = (tf.concat([sizes[:3], sizes[3:] * tasks], 0) if static is None or not isinstance(tasks, int)
               else [int(d) for d in static[:3]] + [int(static[3]) * tasks])
    result = _grouped(kernel, tasks, [_LAYOUT.side_by_side(t, tasks) for t in tensors], grouped,
                      **_attributes(pfor_input))
    return [_LAYOUT.tasks_first(result, tasks, _output_channels(pfor_input, lambda: channels(tensors)))]


def _conv2d_input_gradient(pfor_input):
    """``Conv2DBackpropInput`` with per-task filters: grouped, like the forward convolution."""
    if not pfor_input.input(1)[1]:
        return _STOCK["Conv2DBackpropInput"](pfor_input)
    return _grouped_derivative(pfor_input, (1, 2), 0,
                               lambda f, g, s, **a: tf.nn.conv2d_backprop_input(s, f, g, **a),
                               lambda tensors: _dimensions(tensors[0], 5)[-2])


def _conv2d_filter_gradient(pfor_input):
    """``Conv2DBackpropFilter`` with per-task inputs: the grouped filter derivative, one filter per task."""
    if not pfor_input.input(0)[1]:
        return _STOCK["Conv2DBackpropFilter"](pfor_input)
    return _grouped_derivative(pfor_input, (0, 2), 1,
                               lambda x, g, s, **a: tf.nn.conv2d_backprop_filter(x, s, g, **a),
                               lambda tensors: _dimensions(tensors[1], 5)[-1])


def _tasks(pfor_input):
    """The number of tasks converted at once (a Python int when static)."""
    length = pfor_input.pfor.loop_len_vector
    static = tf.get_static_value(length)
    return int(static[0]) if static is not None else length[0]


def _static_tasks(pfor_input):
    """The number of tasks as a Python int, or None when it is only known at run time."""
    tasks = _tasks(pfor_input)
    return tasks if isinstance(tasks, int) else None


def _per_task_shape(tensor):
    """The per-task static shape as a list, or None when not fully known."""
    return tensor.shape.as_list() if tensor.shape.is_fully_defined() else None


def _batch_norm(pfor_input):
    """``FusedBatchNormV3`` / ``FusedBatchNormGradV3`` (training, NHWC) over tasks x channels, side by side.

    A channel's statistics are over its own task's examples, so one fused batch norm over
    the ``tasks * C`` side-by-side channels is every task's batch norm; the per-channel
    inputs and outputs are the tasks' ``[tasks, C]`` values flattened in the same order.
    """
    op_type = pfor_input.op_type
    tasks = _static_tasks(pfor_input)
    if (tasks is None or not pfor_input.get_attr("is_training")
            or _text(pfor_input.get_attr("data_format")) != "NHWC"):
        return _STOCK[op_type](pfor_input)
    images = 2 if op_type == "FusedBatchNormGradV3" else 1  # y_backprop and x, or x
    pfor_input.stack_inputs(stack_indices=list(range(images)))
    inputs = [_LAYOUT.side_by_side(pfor_input.stacked_input(i), tasks) for i in range(images)]
    inputs += [_per_channel_side_by_side(pfor_input.input(i), tasks) for i in range(images, pfor_input.num_inputs)]
    outputs = _pfor._create_op(op_type, inputs, [t.dtype for t in pfor_input.outputs],  # noqa: SLF001
                               attrs=pfor_input.op.node_def.attr).outputs
    channels = pfor_input.op.inputs[images - 1].shape.as_list()[-1]
    return ([_LAYOUT.tasks_first(outputs[0], tasks, channels)]
            + [_pfor.wrap(tf.reshape(t, [tasks, -1]), True) for t in outputs[1:]])


def _per_channel_side_by_side(wrapped, tasks):
    """A per-channel batch-norm operand ``[C]`` as ``[tasks * C]``: a task's own, or one shared by all tasks.

    An empty operand (the unused population statistics of training) stays empty.
    """
    tensor, stacked, _ = wrapped
    if stacked:
        return tf.reshape(tensor, [-1])
    return tensor if tensor.shape.num_elements() == 0 else tf.tile(tensor, [tasks])


def _broadcast_side_by_side(wrapped, per_task, shape, tasks):
    """One operand of an elementwise op whose output has the per-task ``shape``, side by side (or None)."""
    tensor, stacked, _ = wrapped
    channels = shape[-1]
    if per_task == shape:
        return _LAYOUT.side_by_side(tensor, tasks) if stacked else tf.tile(tensor, [1, 1, 1, tasks])
    if int(np.prod(per_task)) == 1:  # a scalar per task
        return tf.repeat(tf.reshape(tensor, [tasks]), channels) if stacked else tensor
    if per_task[-1] == channels and all(d == 1 for d in per_task[:-1]):  # a per-channel vector
        flat = [1] * (len(per_task) - 1)
        if stacked:
            return tf.reshape(tensor, flat + [tasks * channels])
        return tf.tile(tf.reshape(tensor, flat + [channels]), [1] * len(flat) + [tasks])
    return None


def _elementwise(pfor_input):
    """An elementwise op on rank-4 per-task tensors, side by side when one operand already is."""
    op = pfor_input.op
    tasks = _static_tasks(pfor_input)
    shape = _per_task_shape(op.outputs[0])
    per_task = [_per_task_shape(t) for t in op.inputs]
    operands = [pfor_input.input(i) for i in range(pfor_input.num_inputs)]
    if (tasks is None or shape is None or len(shape) != 4 or any(p is None for p in per_task)
            or not any(w[1] and p == shape and _LAYOUT.knows(w[0]) for w, p in zip(operands, per_task))):
        return _STOCK[pfor_input.op_type](pfor_input)
    inputs = [_broadcast_side_by_side(w, p, shape, tasks) for w, p in zip(operands, per_task)]
    if any(t is None for t in inputs):
        return _STOCK[pfor_input.op_type](pfor_input)
    output = _pfor._create_op(pfor_input.op_type, inputs, [t.dtype for t in pfor_input.outputs],  # noqa: SLF001
                              attrs=op.node_def.attr).outputs[0]
    return [_LAYOUT.tasks_first(output, tasks, shape[-1])]


def _reduction(pfor_input):
    """``Sum`` / ``Mean`` of a side-by-side rank-4 per-task tensor over its first three axes (or all four)."""
    op = pfor_input.op
    tasks = _static_tasks(pfor_input)
    shape = _per_task_shape(op.inputs[0])
    axes = tf.get_static_value(op.inputs[1])
    tensor, stacked, _ = pfor_input.input(0)
    if tasks is None or shape is None or len(shape) != 4 or axes is None or not stacked or not _LAYOUT.knows(tensor):
        return _STOCK[pfor_input.op_type](pfor_input)
    axes = sorted({int(a) % 4 for a in np.atleast_1d(axes)})
    if not axes:  # a gradient's reduction over no axis
        return [_pfor.wrap(tensor, True)]
    if axes not in ([0, 1, 2], [0, 1, 2, 3]):
        return _STOCK[pfor_input.op_type](pfor_input)
    reduce = tf.reduce_sum if pfor_input.op_type == "Sum" else tf.reduce_mean
    keep = pfor_input.get_attr("keep_dims")
    channels = shape[-1]
    per_channel = reduce(_LAYOUT.side_by_side(tensor, tasks), [0, 1, 2], keepdims=keep)
    if axes == [0, 1, 2]:
        if keep:
            return [_LAYOUT.tasks_first(per_channel, tasks, channels)]
        return [_pfor.wrap(tf.reshape(per_channel, [tasks, channels]), True)]
    per_task = reduce(tf.reshape(per_channel, [tasks, channels]), 1)
    return [_pfor.wrap(tf.reshape(per_task, [tasks, 1, 1, 1, 1]) if keep else per_task, True)]


def _reshape(pfor_input):
    """``Reshape`` that keeps the per-task shape (a gradient's no-op reshape): the tensor as it is."""
    tensor, stacked, _ = pfor_input.input(0)
    shape = _per_task_shape(pfor_input.op.inputs[0])
    if stacked and _LAYOUT.knows(tensor) and shape is not None and _per_task_shape(pfor_input.op.outputs[0]) == shape:
        return [_pfor.wrap(tensor, True)]
    return _STOCK[pfor_input.op_type](pfor_input)


def _tile(pfor_input):
    """``Tile`` of a per-channel ``[1, 1, 1, C]`` (or per-task ``[1, 1, 1, 1]``) tensor over the first three axes."""
    op = pfor_input.op
    tasks = _static_tasks(pfor_input)
    source, shape = _per_task_shape(op.inputs[0]), _per_task_shape(op.outputs[0])
    multiples = tf.get_static_value(op.inputs[1])
    if (tasks is None or source is None or shape is None or len(shape) != 4 or multiples is None
            or source[:3] != [1, 1, 1] or source[3] not in (1, shape[3]) or list(multiples[:3]) != shape[:3]):
        return _STOCK[pfor_input.op_type](pfor_input)
    per_channel = _broadcast_side_by_side(pfor_input.input(0), source, [1, 1, 1, shape[3]], tasks)
    if per_channel is None or per_channel.shape.rank == 0:
        return _STOCK[pfor_input.op_type](pfor_input)
    per_channel = tf.reshape(per_channel, [1, 1, 1, -1])
    if per_channel.shape[-1] != tasks * shape[3]:  # an unstacked [1, 1, 1, 1]: one value for every channel
        per_channel = tf.tile(per_channel, [1, 1, 1, tasks * shape[3]])
    return [_LAYOUT.tasks_first(tf.tile(per_channel, shape[:3] + [1]), tasks, shape[3])]


def _bias_gradient(pfor_input):
    """``BiasAddGrad`` (NHWC): the per-channel sums of a side-by-side tensor, ``[tasks, C]``."""
    tensor, stacked, _ = pfor_input.input(0)
    tasks = _static_tasks(pfor_input)
    shape = _per_task_shape(pfor_input.op.inputs[0])
    if (tasks is None or shape is None or len(shape) != 4 or not stacked or not _LAYOUT.knows(tensor)
            or _text(pfor_input.get_attr("data_format")) != "NHWC"):
        return _STOCK[pfor_input.op_type](pfor_input)
    sums = tf.reduce_sum(_LAYOUT.side_by_side(tensor, tasks), [0, 1, 2])
    return [_pfor.wrap(tf.reshape(sums, [tasks, shape[3]]), True)]


def _zeros_like(pfor_input):
    """``ZerosLike``; of a task-stacked ``TensorList`` (a while loop's gradient accumulator), the list of zeros.

    ``pfor``'s own rule builds ``tf.zeros(shape, dtype)``, which has no variant form; a list
    stacked inside (every element with the task axis first) keeps that stacking in its zeros.
    """
    tensor, stacked, _ = pfor_input.input(0)
    if stacked and tensor.dtype == tf.variant and _pfor._is_variant_with_internal_stacking(tensor):  # noqa: SLF001
        return [_pfor.wrap(tf.zeros_like(tensor), True)]
    return _STOCK[pfor_input.op_type](pfor_input)


_ELEMENTWISE = ("AddV2", "Add", "Sub", "Mul", "RealDiv", "Neg", "Square", "SquaredDifference", "AddN", "Relu",
                "ReluGrad", "BiasAdd", "Identity", "StopGradient", "Tanh", "TanhGrad", "Rsqrt", "Sqrt")
_RULES = {"Conv2D": _conv2d, "Conv2DBackpropInput": _conv2d_input_gradient,
          "Conv2DBackpropFilter": _conv2d_filter_gradient, "FusedBatchNormV3": _batch_norm,
          "FusedBatchNormGradV3": _batch_norm, "Sum": _reduction, "Mean": _reduction, "Reshape": _reshape,
          "Tile": _tile, "BiasAddGrad": _bias_gradient, "ZerosLike": _zeros_like,
          **{name: _elementwise for name in _ELEMENTWISE}}
_STOCK = {}


@contextlib.contextmanager
def side_by_side_rules():
    """Installs the side-by-side rules in ``pfor`` for the duration of the block, then restores its own.

    Yields:
        A function of the converted outputs that builds the tasks-first views still deferred
        (``_Layout.materialize``): call it on the outputs of every conversion, inside the block.
    """
    registry = _pfor._pfor_converter_registry  # noqa: SLF001 - private TensorFlow API, see the module docstring
    rules = {name: rule for name, rule in _RULES.items() if name in registry}  # each refines a stock rule
    saved = {name: registry[name] for name in rules}
    _STOCK.update(saved)
    registry.update(rules)
    global _LAYOUT
    _LAYOUT = _Layout(tf.get_default_graph())
    try:
        yield _LAYOUT.materialize
    finally:
        _LAYOUT = _Layout()
        registry.update(saved)
