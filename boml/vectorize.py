"""The vectorized task map: ``parallel_iterations`` tasks of a meta-batch in one set of kernels.

With ``vectorize_tasks=True`` the task map (``boml.task.map_over_tasks``) traces the
per-task body once and converts it with TensorFlow's ``pfor`` (the machinery behind
``tf.vectorized_map``): every operation of the body, forward and derivatives alike,
becomes one operation over the tasks whose per-task slices compute what it computed
for one task, with boml's rules for convolutions with per-task filters, batch norm and
the ops between them (``boml.vectorize_rules``). The numbers are those of the per-task
``tf.map_fn``, with about 1/tasks as many kernel launches, which is most of what a
meta-iteration of small per-task networks costs on a CPU (docs/performance.rst).

When ``pfor`` is missing or cannot convert an operation of the body, ``vectorized_tasks``
raises ``VectorizationError`` and the task map keeps ``tf.map_fn``.
"""
import contextlib

import tensorflow.compat.v1 as tf

from boml.errors import BOMLError
from boml.vectorize_rules import rules_available, side_by_side_rules

try:  # private TensorFlow API, see boml.vectorize_rules
    from tensorflow.python.framework import func_graph as _func_graph
    from tensorflow.python.framework import op_callbacks as _op_callbacks
    from tensorflow.python.framework import ops as _ops
    from tensorflow.python.framework import tensor_util as _tensor_util
    from tensorflow.python.ops.parallel_for import pfor as _pfor
except ImportError:  # pragma: no cover - depends on the TensorFlow build
    _pfor = _ops = None

__all__ = ["TracedTask", "VectorizationError", "trace_task", "vectorize_traced_task", "vectorized_group",
           "vectorized_tasks"]


class VectorizationError(BOMLError):
    """The task body cannot be vectorized; the task map runs it with ``tf.map_fn`` instead."""


def vectorized_group(tasks, parallel_iterations):
    """Tasks the vectorized map computes at once: the largest divisor of ``tasks`` up to ``parallel_iterations``.

    Returns:
        None (all at once) when ``parallel_iterations`` is None or at least ``tasks``, or when
        ``tasks`` is only known at run time; else the group size (1: no two tasks together).
    """
    if parallel_iterations is None or not isinstance(tasks, int) or parallel_iterations >= tasks:
        return None
    return max(size for size in range(1, parallel_iterations + 1) if tasks % size == 0)


class TracedTask:
    """One task's body traced once (``trace_task``): the template that ``vectorize_traced_task`` converts.

    Attributes:
        index: the ``placeholder_with_default`` standing for the task's index in the batch.
        outputs: the body's outputs for the task at ``index``.
        operations: the operations of the trace (what the conversion rewrites).
        captures: ``(outer tensor, placeholder of the trace)`` pairs: what the trace reads from
            the graph it was traced for.
        control_captures: operations of that graph the trace ran after.
    """

    def __init__(self, index, outputs, operations, captures, control_captures):
        self.index, self.outputs, self.operations = index, outputs, operations
        self.captures, self.control_captures = captures, control_captures


def trace_task(body, elements):
    """Traces ``body`` once on the slice ``index`` of ``elements``, where ``index`` is a placeholder.

    The trace is made in a function graph of its own, which is never called: the conversion
    computes every output in the graph it runs in, and the trace does not enlarge the graph the
    session runs. It is traced once whatever group size is chosen from it afterwards. Errors
    raised by ``body`` propagate.

    Args:
        body: ``list of per-task tensors -> list of tensors`` (one task's outputs).
        elements: tensors with a leading task axis.

    Returns:
        A ``TracedTask``.
    """
    if _pfor is None or not rules_available():
        raise VectorizationError("TensorFlow's pfor converter is not available in this TensorFlow build.")
    # The converted ops are named after the trace's and inherit its colocation groups: the trace's names
    # must be unique in the outer graph (one trace per task shard of boml.distributed).
    scope = tf.get_default_graph().unique_name("task_template")
    template = _TemplateGraph("task_template")
    with template.as_default(), _shared_constants(), tf.name_scope(scope + "/"):
        index = tf.placeholder_with_default(0, shape=[], name="task")
        outputs = [tf.convert_to_tensor(o) for o in body([tf.gather(e, index) for e in elements])]
    return TracedTask(index, outputs, template.get_operations(), template.captures,
                      list(template._function_captures.control))  # noqa: SLF001


class _TemplateGraph(_func_graph.FuncGraph if _pfor is not None else object):
    """The function graph of a trace: small integer outer tensors of static value are copied, not captured.

    A captured tensor becomes a placeholder, whose value shape inference cannot see: the
    reduction axes and shapes the body reads from its graph would leave the trace's shapes
    unknown, and the conversion would emit their dynamic computation. Floating-point tensors
    are always captured (the body may differentiate with respect to them).
    """

    def capture(self, tensor, name=None, shape=None):
        if isinstance(tensor, tf.Tensor) and tensor.graph is not self and (tensor.dtype.is_integer
                                                                           or tensor.dtype == tf.bool):
            value = _tensor_util.constant_value(tensor)
            if value is None:
                value = _tensor_util.try_evaluate_constant(tensor)  # what shape inference computes there
            if value is not None and value.nbytes <= _SHARED_CONSTANT_BYTES:
                with self.as_default():
                    return tf.constant(value, tensor.dtype)
        return super().capture(tensor, name, shape)


def vectorize_traced_task(traced, tasks, group_size=None):
    """The outputs of ``traced`` for every task, vectorized over the tasks.

    Args:
        traced: a ``TracedTask`` of the elements whose leading axis holds ``tasks`` tasks.
        tasks: the number of tasks (an int or a scalar tensor).
        group_size: tasks computed at once, in consecutive groups (a ``tf.map_fn`` over the
            groups converts the same trace with the group's task indices): ``tasks`` must be a
            multiple of it. None, or at least ``tasks``: all tasks at once. Memory grows with
            the group, kernel launches shrink with it.

    Returns:
        The list of the outputs, each with a leading task axis.

    Raises:
        VectorizationError: an operation of the body has no vectorization rule (the caller
            then maps the tasks one at a time), or ``tasks`` is no multiple of ``group_size``.
    """
    if group_size is None or not isinstance(tasks, int) or group_size >= tasks:
        return _converted(traced, tasks)
    if tasks % group_size:
        raise VectorizationError(f"{tasks} tasks cannot be split into groups of {group_size}.")

    @tf.autograph.experimental.do_not_convert
    def per_group(group):
        return _converted(traced, group_size, group * group_size)

    outputs = tf.map_fn(per_group, tf.range(tasks // group_size), parallel_iterations=1, name="task_groups",
                        fn_output_signature=[tf.TensorSpec(None, o.dtype) for o in traced.outputs])
    return [tf.reshape(o, tf.concat([[tasks], tf.shape(o)[2:]], 0)) for o in outputs]


def vectorized_tasks(body, elements, tasks, group_size=None):
    """``body`` applied to every task's slice of ``elements``, vectorized over the tasks.

    ``trace_task`` then ``vectorize_traced_task``; see them for the arguments.

    Returns:
        The list of ``body``'s outputs, each with a leading task axis.

    Raises:
        VectorizationError: ``pfor`` is unavailable, or an operation of the body has no
            vectorization rule. Errors raised by ``body`` itself propagate unchanged.
    """
    return vectorize_traced_task(trace_task(body, elements), tasks, group_size)


#: Constants of at most this many bytes are shared by ``_shared_constants``.
_SHARED_CONSTANT_BYTES = 256


@contextlib.contextmanager
def _shared_constants():
    """Within the block, equal small graph constants are one ``Const`` op per graph.

    The traced body and ``pfor``'s conversion of it create about 10,000 constants for the
    Omniglot MAML meta-iteration, nearly all shapes, axes and permutations, of which about
    100 differ (docs/performance.rst): creating each op is most of what they cost to build.
    A constant is shared only where a new one would be created bare (no control
    dependencies, device, colocation, control-flow context or op callbacks), so the graph
    computes what it computed; code traced in the block must not use a new constant as a
    distinct tensor (a substitution key: ``TaskProgram.state_proxies`` are identities).
    ``ops._create_graph_constant`` is private TensorFlow API: without it the block shares
    nothing.
    """
    create = getattr(_ops, "_create_graph_constant", None)
    if create is None:  # pragma: no cover - depends on the TensorFlow build
        yield
        return
    shared = {}

    def shared_constant(value, dtype, shape, name, verify_shape, allow_broadcast):
        graph = _ops.get_default_graph()
        if (graph._current_control_dependencies() or len(graph._device_function_stack)  # noqa: SLF001
                or len(graph._colocation_stack) or graph._get_control_flow_context() is not None  # noqa: SLF001
                or _op_callbacks.should_invoke_op_callbacks()):
            return create(value, dtype, shape, name, verify_shape, allow_broadcast)
        proto = _tensor_util.make_tensor_proto(value, dtype=dtype, shape=shape, verify_shape=verify_shape,
                                                    allow_broadcast=allow_broadcast)
        if proto.ByteSize() > _SHARED_CONSTANT_BYTES:
            return create(value, dtype, shape, name, verify_shape, allow_broadcast)
        key = (graph, proto.SerializeToString(deterministic=True))
        if key not in shared:  # make_tensor_proto returns a TensorProto as it is: the proto is built once
            shared[key] = create(proto, dtype, shape, name, verify_shape, allow_broadcast)
        return shared[key]

    _ops._create_graph_constant = shared_constant  # noqa: SLF001
    try:
        yield
    finally:
        _ops._create_graph_constant = create  # noqa: SLF001


def _converted(traced, tasks, first=None):
    """``traced`` converted in the default graph for ``tasks`` tasks, from task ``first`` on (None: all)."""
    indices = None if first is None else first + tf.range(tasks)
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("CRITICAL")  # pfor logs a failed conversion as an error; the caller reports it once
    try:
        with side_by_side_rules() as materialize, _shared_constants(), \
                tf.control_dependencies(traced.control_captures):
            converter = _pfor.PFor(traced.index, tasks, traced.operations, fallback_to_while_loop=False,
                                   all_indices=indices)
            for outer, placeholder in traced.captures:  # loop invariant, read where the conversion runs
                converter._add_conversion(placeholder, _pfor.wrap(outer, False))  # noqa: SLF001
            for op in traced.operations:  # pfor would copy each small constant; shared, it is one op per graph
                if (op.type == "Const" and not op.control_inputs
                        and op.get_attr("value").ByteSize() <= _SHARED_CONSTANT_BYTES):
                    constant = tf.constant(op.get_attr("value"), op.outputs[0].dtype)
                    converter._add_conversion(op.outputs[0], _pfor.wrap(constant, False))  # noqa: SLF001
            return materialize([converter.convert(output) for output in traced.outputs])
    except (ValueError, TypeError, NotImplementedError, tf.errors.OpError) as error:
        raise VectorizationError(f"The task body cannot be vectorized: {error}") from error
    finally:
        logger.setLevel(level)
