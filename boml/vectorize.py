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
    from tensorflow.python.framework import op_callbacks as _op_callbacks
    from tensorflow.python.framework import ops as _ops
    from tensorflow.python.framework import tensor_util as _tensor_util
    from tensorflow.python.ops.parallel_for import control_flow_ops as _loops
except ImportError:  # pragma: no cover - depends on the TensorFlow build
    _loops = _ops = None

__all__ = ["VectorizationError", "vectorized_group", "vectorized_tasks"]


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


def vectorized_tasks(body, elements, tasks, output_dtypes, group_size=None):
    """``body`` applied to every task's slice of ``elements``, vectorized over the tasks.

    Args:
        body: ``list of per-task tensors -> list of tensors`` (one task's outputs).
        elements: tensors with a leading task axis.
        tasks: the number of tasks (the length of the task axis; an int or a scalar tensor).
        output_dtypes: the dtypes of ``body``'s outputs.
        group_size: tasks computed at once, in consecutive groups (a ``tf.map_fn`` over the
            groups, each group vectorized): ``tasks`` must be a multiple of it. None, or at
            least ``tasks``: all tasks at once. Memory grows with the group, kernel launches
            shrink with it.

    Returns:
        The list of ``body``'s outputs, each with a leading task axis.

    Raises:
        VectorizationError: ``pfor`` is unavailable, or an operation of the body has no
            vectorization rule (the caller then maps the tasks one at a time). Errors raised
            by ``body`` itself propagate unchanged.
    """
    if _loops is None or not rules_available():
        raise VectorizationError("TensorFlow's pfor converter is not available in this TensorFlow build.")
    if group_size is None or not isinstance(tasks, int) or group_size >= tasks:
        return _vectorized(body, elements, tasks)
    if tasks % group_size:
        raise VectorizationError(f"{tasks} tasks cannot be split into groups of {group_size}.")
    groups = tasks // group_size

    def split(tensor):
        grouped = tf.reshape(tensor, tf.concat([[groups, group_size], tf.shape(tensor)[1:]], 0))
        grouped.set_shape([groups, group_size] + tensor.shape.as_list()[1:])
        return grouped

    @tf.autograph.experimental.do_not_convert
    def per_group(group):
        return _vectorized(body, list(group), group_size)

    outputs = tf.map_fn(per_group, [split(e) for e in elements], parallel_iterations=1, name="task_groups",
                        fn_output_signature=[tf.TensorSpec(None, dtype) for dtype in output_dtypes])
    return [tf.reshape(o, tf.concat([[tasks], tf.shape(o)[2:]], 0)) for o in outputs]


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


def _vectorized(body, elements, tasks):
    """``vectorized_tasks`` for one group: every task at once."""
    traced = []

    @tf.autograph.experimental.do_not_convert
    def loop_fn(index):
        outputs = body([tf.gather(e, index) for e in elements])
        traced.append(True)
        return outputs

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("CRITICAL")  # pfor logs a failed conversion as an error; the caller reports it once
    try:
        with side_by_side_rules(), _shared_constants():
            return list(_loops.pfor(loop_fn, tasks, fallback_to_while_loop=False))
    except (ValueError, TypeError, NotImplementedError, tf.errors.OpError) as error:
        if not traced:  # the body itself failed: not a vectorization problem.
            raise
        raise VectorizationError(f"The task body cannot be vectorized: {error}") from error
    finally:
        logger.setLevel(level)
