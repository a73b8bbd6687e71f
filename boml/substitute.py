"""Re-evaluating graph tensors with some of their inputs replaced.

This is the mechanism that lets boml accept the original BOML API, where the
user builds ``inner_objective`` and ``outer_objective`` as ordinary tensors on
variables and placeholders, and still run the whole lower-level dynamics inside
one graph: the objective is re-built ("substituted") with the task variables
replaced by the state of step ``t``, the placeholders replaced by one task's
slice of a batched episode, and the meta-parameters replaced by local reads
that gradients can be taken against.

Only the operations that depend on a replaced input are copied; everything else
is shared with the original graph (or captured, inside a loop body).
"""
import tensorflow as _tf2
import tensorflow.compat.v1 as tf

from boml.errors import ShapeError, UnsupportedGraphError

# Operations that cannot be copied safely: they mutate state or call functions
# whose bodies would also need substituting.
_UNSUPPORTED_OP_TYPES = {
    "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp", "Assign", "AssignAdd", "AssignSub",
    "While", "StatelessWhile", "If", "StatelessIf", "PartitionedCall", "StatefulPartitionedCall",
    "Enter", "Exit", "Merge", "Switch", "NextIteration", "ResourceGather",
}
_DROPPED_ATTRS = {"_class"}


def _is_variable(obj):
    return isinstance(obj, _tf2.Variable)


class Substitution:
    """A set of replacements ``original -> new value`` that can be applied to tensors.

    Keys are tensors (for example placeholders or previously substituted
    tensors) or variables; replacing a variable replaces every read of it.

    Args:
        pairs: iterable of ``(key, value)`` pairs, or a dict keyed by variables.
    """

    def __init__(self, pairs=()):
        self._tensors = {}
        self._handles = {}
        self.update(pairs)

    def update(self, pairs):
        items = pairs.items() if isinstance(pairs, dict) else pairs
        for key, value in items:
            if _is_variable(key):
                if hasattr(key, "handle"):
                    self._handles[key.handle.ref()] = (key, value)
                else:  # reference variable (tf.disable_v2_behavior): replace its snapshot and ref.
                    self._tensors[key.value().ref()] = (key.value(), value)
                    self._tensors[key._ref().ref()] = (key._ref(), value)  # pylint: disable=protected-access
            elif isinstance(key, tf.Tensor):
                self._tensors[key.ref()] = (key, value)
            else:
                raise UnsupportedGraphError(
                    f"Only tensors and variables can be substituted; received a key of type {type(key).__name__}."
                )
        return self

    def __len__(self):
        return len(self._tensors) + len(self._handles)

    def _replacement(self, tensor):
        """The new value for ``tensor`` if it is replaced directly, else None."""
        entry = self._tensors.get(tensor.ref())
        if entry is not None:
            return _checked(entry[0], entry[1])
        op = tensor.op
        if op.type == "ReadVariableOp":
            entry = self._handles.get(op.inputs[0].ref())
            if entry is not None:
                return _checked(tensor, entry[1], entry[0].name)
        return None

    def _is_replaced(self, tensor):
        if tensor.ref() in self._tensors:
            return True
        return tensor.op.type == "ReadVariableOp" and tensor.op.inputs[0].ref() in self._handles

    def __call__(self, tensors):
        """Returns ``tensors`` re-built with the replacements applied.

        Args:
            tensors: a tensor or a list of tensors (None entries pass through).

        Returns:
            A tensor or a list, matching the input.

        Raises:
            UnsupportedGraphError: an operation on the path cannot be copied.
            ShapeError: a replacement is incompatible with the tensor it replaces.
        """
        single = isinstance(tensors, tf.Tensor) or tensors is None
        items = [tensors] if single else list(tensors)
        results = self._apply([t if t is None or isinstance(t, tf.Tensor) else tf.convert_to_tensor(t)
                               for t in items])
        return results[0] if single else results

    def _apply(self, outputs):
        depends = {}
        order = []
        for root in outputs:
            if root is None or self._is_replaced(root):
                continue
            stack = [(root.op, False)]
            while stack:
                op, expanded = stack.pop()
                if expanded:
                    flag = any(self._is_replaced(t) or depends.get(t.op, False) for t in op.inputs)
                    flag = flag or any(depends.get(c, False) for c in op.control_inputs)
                    depends[op] = flag
                    if flag:
                        order.append(op)
                    continue
                if op in depends:
                    continue
                depends[op] = False
                stack.append((op, True))
                for t in op.inputs:
                    if not self._is_replaced(t) and t.op not in depends:
                        stack.append((t.op, False))
                for c in op.control_inputs:
                    if c not in depends:
                        stack.append((c, False))

        graph = tf.get_default_graph()
        copies = {}

        def new_value(t):
            replaced = self._replacement(t)
            if replaced is not None:
                return replaced
            return copies.get(t.ref(), t)

        copied_ops = {}
        for op in order:
            if op.type in _UNSUPPORTED_OP_TYPES:
                raise UnsupportedGraphError(
                    f"The objective depends on the operation {op.name!r} of type {op.type}, which boml cannot "
                    f"re-evaluate per task and per inner step (it mutates state or calls a function). "
                    f"Build objectives from plain tensor operations on the model output, without assign ops, "
                    f"tf.function or control flow."
                )
            inputs = [new_value(t) for t in op.inputs]
            attrs = {k: v for k, v in op.node_def.attr.items() if k not in _DROPPED_ATTRS}
            control = [copied_ops.get(c, c) for c in op.control_inputs]
            control = [c for c in control if c.graph is graph]
            with tf.control_dependencies(control or None):
                new_op = graph._create_op_internal(  # pylint: disable=protected-access
                    op.type, inputs, [t.dtype for t in op.outputs], name=op.name.rsplit("/", 1)[-1],
                    attrs=attrs, op_def=op.op_def)
            copied_ops[op] = new_op
            for old, new in zip(op.outputs, new_op.outputs):
                copies[old.ref()] = new
        return [None if t is None else new_value(t) for t in outputs]


def _checked(original, value, what=None):
    value = tf.convert_to_tensor(value)
    if value.dtype.base_dtype != original.dtype.base_dtype:
        if value.dtype.is_floating and original.dtype.is_floating:
            value = tf.cast(value, original.dtype)
        else:
            raise ShapeError(
                f"Cannot substitute {what or original.name} ({original.dtype.name}) with a "
                f"{value.dtype.name} tensor; the data types must match."
            )
    if not value.shape.is_compatible_with(original.shape):
        raise ShapeError(
            f"Cannot substitute {what or original.name} of shape {original.shape} with a tensor of shape "
            f"{value.shape}. Feed or build per-task tensors with the shape of the original placeholder or variable."
        )
    return value


def substitute(tensors, pairs):
    """Re-builds ``tensors`` with the replacements ``pairs`` applied (see ``Substitution``)."""
    return Substitution(pairs)(tensors)
