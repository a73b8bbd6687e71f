"""The per-task view of the user's graph.

A ``TaskProgram`` re-expresses the objectives that the user built for one task
(on placeholders, meta-parameters and task variables) as functions of

* the task's data (a slice of a batched episode, or the placeholders themselves),
* local copies of the meta-parameters, against which hypergradients are taken,
* the lower-level state, given per inner step.

It is built inside the body of ``tf.map_fn`` for a batched experiment, so the
graph does not grow with the meta-batch size.
"""
import collections
import contextlib
import warnings

import tensorflow as _tf2
import tensorflow.compat.v1 as tf

from boml.distributed.placement import active_plan
from boml.errors import VectorizationWarning
from boml.substitute import Substitution
from boml.vectorize import VectorizationError, trace_task, vectorize_traced_task, vectorized_group
from boml.vectorize_rules import grouped_derivatives_available


def _ref(obj):
    return obj.ref()


class TaskProgram:
    """Objectives of one task as functions of data, meta-parameters and state.

    Args:
        data_pairs: ``(placeholder, task_value)`` pairs; empty when the
            placeholders are fed directly.
        meta_params: the meta-parameters (variables or tensors) whose
            hypergradients are wanted.
        state_vars: the task variables adapted by the lower level, in order.
        meta_values: optional tensors the local copies are read from (default: ``meta_params``),
            e.g. one copy per worker shard (``boml.distributed``).
    """

    def __init__(self, data_pairs, meta_params, state_vars, meta_values=None):
        self.meta_params = list(meta_params)
        self.state_vars = list(state_vars)
        self._meta_local = collections.OrderedDict()
        pairs = list(data_pairs)
        with tf.name_scope("meta_parameters"):
            for param, value in zip(self.meta_params, meta_values or self.meta_params):
                local = tf.identity(value, name=_short_name(param))
                self._meta_local[_ref(param)] = local
                pairs.append((param, local))
        with tf.name_scope("state_proxies"):  # identities: substitution keys must be distinct tensors
            self.state_proxies = [tf.identity(tf.zeros(v.shape, v.dtype.base_dtype), name=_short_name(v))
                                  for v in self.state_vars]
        pairs.extend(zip(self.state_vars, self.state_proxies))
        self._pairs = pairs
        self._data_view = Substitution(pairs)
        self._cache = {}

    @property
    def meta_locals(self):
        """Local tensors standing for ``meta_params`` (same order)."""
        return list(self._meta_local.values())

    def local(self, tensors):
        """Brings tensors built outside (objectives, learning rates...) into this task.

        The result depends on this task's data and local meta-parameters; when it
        depends on the lower-level state it does so through ``state_proxies``.
        """
        single = not isinstance(tensors, (list, tuple))
        items = [tensors] if single else list(tensors)
        out = []
        for item in items:
            if item is None:
                out.append(None)
                continue
            if isinstance(item, _tf2.Variable) and _ref(item) in self._meta_local:
                out.append(self._meta_local[_ref(item)])
                continue
            if isinstance(item, _tf2.Variable):
                item = item.read_value() if hasattr(item, "handle") else item.value()
            item = tf.convert_to_tensor(item)
            key = item.ref()
            if key not in self._cache:
                self._cache[key] = self._data_view(item)
            out.append(self._cache[key])
        return out[0] if single else out

    def view(self, extra_pairs):
        """A ``Substitution`` of the original graph: this task's replacements, then ``extra_pairs`` (which win)."""
        return Substitution(list(self._pairs) + list(extra_pairs))

    def at_state(self, local_tensors, state):
        """Evaluates tensors returned by ``local`` at the lower-level ``state``.

        Args:
            local_tensors: a tensor or list of tensors from ``local``.
            state: list of tensors, one per state variable.
        """
        return Substitution(zip(self.state_proxies, state))(local_tensors)


def _short_name(obj):
    return obj.name.split(":")[0].replace("/", "_")


def activation_bytes(graph, operations=None):
    """Bytes of the floating-point op outputs of ``graph`` whose shapes are static.

    Used on the body of the task map: an upper bound of what one task keeps alive (its
    forward activations, kept for its meta-gradient, and the gradients themselves). Nested
    function bodies (an inner ``tf.while_loop``) are not counted.

    Args:
        graph: a graph (the task map's body function).
        operations: count only these operations of ``graph`` (default: all).
    """
    total = 0
    for op in graph.get_operations() if operations is None else operations:
        for out in op.outputs:
            if out.dtype.is_floating and out.shape.is_fully_defined():
                total += out.shape.num_elements() * out.dtype.size
    return total


def concurrent_tasks(limit, per_task_bytes, budget_gb):
    """How many tasks the task map runs at once: ``limit``, fewer when their activations exceed the budget.

    Args:
        limit: the largest number (``parallel_iterations``).
        per_task_bytes: ``activation_bytes`` of the task body.
        budget_gb: GB (2**30 bytes) of estimated activations allowed at once, or None for no budget.

    Returns:
        ``min(limit, max(1, floor(budget / per_task_bytes)))`` (``limit`` without a budget).
    """
    if budget_gb is None or per_task_bytes <= 0:
        return limit
    return max(1, min(limit, int(budget_gb * 2 ** 30 // per_task_bytes)))


#: ``vectorize_tasks="auto"`` vectorizes only groups of tasks whose estimated activations
#: (``activation_bytes`` per task times the group) stay under this many GB: small tasks, whose
#: kernels are too small to fill the cores one task at a time. Measured here (docs/performance.rst):
#: the Omniglot conv-4 (0.18 GB per MAML task) runs in groups of 8 at 0.72-0.76x plain TensorFlow's time; the
#: MiniImageNet conv-4 (2.97 GB per MAML task) ran 1.6x slower vectorized, so it keeps the map.
AUTO_VECTORIZE_GB = 2.0


#: Op types of a ``tf.while_loop``: a task body with one is not vectorized by ``"auto"``.
_WHILE_OPS = ("While", "StatelessWhile")


def _has_while_loop(operations):
    """True when ``operations`` hold a ``tf.while_loop`` (Trad and Aggr's inner loops, long Simple ones)."""
    return any(op.type in _WHILE_OPS for op in operations)


def _vectorized_map(experiment, body, batch_values, training, parallel_iterations, memory_budget_gb,
                    sizes, loops, automatic):
    """The task map vectorized (``boml.vectorize``): ``(outputs, tasks computed at once)``.

    The body is traced once (``boml.vectorize.trace_task``); the group is then the largest
    divisor of the tasks up to ``parallel_iterations`` whose estimated activations (``sizes[-1]``
    per task, measured on that trace) fit the memory budget and, when ``automatic``,
    ``AUTO_VECTORIZE_GB``, and the trace is converted for it. When ``automatic``, a body with a
    ``tf.while_loop`` (``loops[-1]``) keeps the map: the activation estimate counts one pass
    of the loop's body, not the T steps it stores (all 32 Omniglot MAML tasks at T=20 peaked
    at 6.9 GB against 1.3 GB in the map), and ``pfor``'s conversion of a loop and its gradient
    loop takes 10-33 s to build (docs/performance.rst). Meta-training maps get a static task axis
    of ``experiment.meta_batch_size``, which ``experiment.check_training_feed`` then enforces
    (``fixed_task_count``).

    Raises:
        VectorizationError: no two tasks can be computed together (``parallel_iterations``, or
            the estimate against the budgets), or the body cannot be vectorized (the caller maps
            the tasks).
    """
    values = list(batch_values)
    fixed = training and values[0].shape[0] is None
    if fixed:
        values = [tf.ensure_shape(v, [experiment.meta_batch_size] + v.shape.as_list()[1:]) for v in values]
    tasks = values[0].shape[0] if values[0].shape[0] is not None else tf.shape(values[0])[0]
    budgets = {}  # what bounds the group: its name in messages -> GB
    if memory_budget_gb is not None:
        budgets[f"task_memory_budget={memory_budget_gb}"] = memory_budget_gb
    if automatic:
        budgets[f"vectorize_tasks='auto' (boml.task.AUTO_VECTORIZE_GB={AUTO_VECTORIZE_GB})"] = AUTO_VECTORIZE_GB
    if budgets and not isinstance(tasks, int):
        raise VectorizationError("the number of tasks is only known at run time, so the group cannot be chosen "
                                 "from the memory estimate.")
    group = vectorized_group(tasks, parallel_iterations)
    if group == 1:
        raise VectorizationError(f"parallel_iterations={parallel_iterations} allows no two of the {tasks} tasks "
                                 f"at once in equal groups.")
    traced = trace_task(body, values)
    if automatic and loops[-1]:
        raise VectorizationError(
            "the task body runs a tf.while_loop (the Trad and Aggr inner loops; Simple's from "
            "while_loop_threshold on), which vectorize_tasks='auto' leaves to the per-task map: the memory "
            "estimate does not see the steps the loop stores, and the converted loop takes many seconds to "
            "build (docs/performance.rst). Pass vectorize_tasks=True (--vectorize_tasks true) to vectorize it.")
    if automatic and not grouped_derivatives_available() and any(op.type == "Conv2D" for op in traced.operations):
        raise VectorizationError(
            "this TensorFlow runs its CPU kernels without oneDNN (TF_ENABLE_ONEDNN_OPTS=0, or a build without "
            "it), which cannot differentiate grouped convolutions: each task's derivatives would be kernels of "
            "their own, and the vectorized Omniglot MAML ran 1.67x slower than plain TensorFlow that way "
            "(docs/performance.rst), so vectorize_tasks='auto' keeps the per-task map. Pass vectorize_tasks=True "
            "(--vectorize_tasks true) to vectorize it anyway.")
    if budgets:
        limit = min(parallel_iterations or tasks, tasks)
        for budget in budgets.values():
            limit = concurrent_tasks(limit, sizes[-1], budget)
        group = vectorized_group(tasks, limit)
        if group == 1:
            raise VectorizationError(
                f"one task's activations are estimated at {sizes[-1] / 2 ** 30:.2f} GB, so "
                f"{' and '.join(budgets)} allows no two tasks at once.")
    outputs = vectorize_traced_task(traced, tasks, group)
    experiment.fixed_task_count = experiment.fixed_task_count or fixed
    return outputs, group or tasks


def _set_parallel_iterations(outputs, value):
    """Sets ``parallel_iterations`` of the ``tf.map_fn`` loop that produced ``outputs`` (before any run)."""
    from tensorflow.core.framework import attr_value_pb2

    pending, seen = [t.op for t in outputs], set()
    while pending:
        op = pending.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type in _WHILE_OPS:
            op._set_attr("parallel_iterations", attr_value_pb2.AttrValue(i=value))  # noqa: SLF001
            return
        pending.extend(t.op for t in op.inputs)
    raise RuntimeError("boml internal error: the task map's while loop was not found")


def map_over_tasks(experiment, meta_params, state_vars, task_fn, output_dtypes, parallel_iterations=None,
                   training=False, memory_budget_gb=None, report=None, vectorize=False):
    """Runs ``task_fn(task_program)`` for every task of ``experiment``.

    For an experiment whose placeholders carry a task axis (``meta_batch_size``
    given) the function is traced once inside ``tf.map_fn``, or, with ``vectorize``,
    traced once and vectorized over groups of tasks (``boml.vectorize``: every operation
    runs once for a whole group; the map is kept when no two tasks fit a group or the
    body cannot be vectorized); otherwise it is built once on the placeholders
    themselves. Inside ``boml.distributed.replicate``
    the tasks are split into one shard (one ``tf.map_fn``) per worker device.

    Args:
        experiment: a ``BOMLExperiment`` or None (objectives on plain tensors).
        meta_params: meta-parameters whose local copies the task sees.
        state_vars: the lower-level task variables.
        task_fn: ``TaskProgram -> list of tensors``.
        output_dtypes: the dtypes of ``task_fn``'s outputs, in order.
        parallel_iterations: tasks processed concurrently by ``tf.map_fn`` (at most); with
            ``vectorize``, the tasks computed at once (``boml.vectorize.vectorized_group``).
        training: the graph is fed meta-training episodes, whose sizes
            (``experiment.episode_sizes``, when known) are made static.
        memory_budget_gb: run fewer tasks at once (in the map or in a vectorized group) when
            their estimated activations (``activation_bytes`` of the task body, times the
            tasks) exceed this many GB (see ``concurrent_tasks``); None: ``parallel_iterations`` tasks.
        report: optional dict receiving ``"activation_bytes"`` (per task),
            ``"concurrent_tasks"`` (per map) and ``"vectorized"`` (whether the tasks run
            as one set of kernels; else ``"vectorization_error"`` says why not) of a
            batched experiment.
        vectorize: True: try the vectorized map first (a ``VectorizationWarning`` when the
            map is kept); ``"auto"``: the same for groups whose estimated activations fit
            ``AUTO_VECTORIZE_GB``, quietly the map otherwise (the report says why); False
            (default): ``tf.map_fn``.

    Returns:
        The list of outputs, each with a leading task axis.
    """
    batched = experiment is not None and getattr(experiment, "is_batched", False)
    plan = active_plan()
    if not batched:
        with plan.single_task_device() if plan else contextlib.nullcontext(), tf.name_scope("task"):
            outputs = task_fn(TaskProgram((), meta_params, state_vars))
        return [tf.expand_dims(o, 0) for o in outputs]
    placeholders = experiment.task_placeholders
    batches = experiment.batch_placeholders

    signature = [tf.TensorSpec(None, dtype) for dtype in output_dtypes]

    limit = parallel_iterations or 1

    def map_tasks(batch_values, meta_values=None):
        sizes, loops = [], []

        def body(elements):
            if training:
                elements = experiment.with_episode_shapes(elements)
            graph = tf.get_default_graph()
            before = len(graph.get_operations())
            outputs = list(task_fn(TaskProgram(zip(placeholders, elements), meta_params, state_vars, meta_values)))
            traced = graph.get_operations()[before:]
            sizes.append(activation_bytes(graph, traced))
            loops.append(_has_while_loop(traced))
            return outputs

        if vectorize:
            try:
                outputs, concurrent = _vectorized_map(experiment, body, batch_values, training, parallel_iterations,
                                                      memory_budget_gb, sizes, loops, vectorize == "auto")
            except VectorizationError as error:
                if report is not None:
                    report.update(vectorization_error=str(error))
                if vectorize is True:
                    warnings.warn(f"vectorize_tasks: the tasks run in the per-task map. {error}",
                                  VectorizationWarning, stacklevel=2)
            else:
                if report is not None:
                    report.update(activation_bytes=sizes[-1], concurrent_tasks=concurrent, vectorized=True)
                return outputs
        body = tf.autograph.experimental.do_not_convert(body)
        outputs = list(tf.map_fn(body, list(batch_values), fn_output_signature=signature,
                                 parallel_iterations=limit, name="tasks"))
        concurrent = concurrent_tasks(limit, sizes[-1], memory_budget_gb)
        if concurrent != limit:
            _set_parallel_iterations(outputs, concurrent)
        if report is not None:
            report.update(activation_bytes=sizes[-1], concurrent_tasks=concurrent, vectorized=False)
        return outputs

    if plan is not None:
        return plan.map(map_tasks, batches, experiment.meta_batch_size, meta_params)
    return map_tasks(batches)
