"""The per-task dynamics contract between the lower and the upper strategies.

A lower strategy (``inner_method``) turns the user's inner objective into one
``TaskDynamics`` object per task; every upper strategy (``outer_method``) is
written against this object only::

    state_0, slots_0 = dynamics.initial_state(), dynamics.initial_slots(state_0)
    state_t, slots_t = dynamics.step(t, state_{t-1}, slots_{t-1}, dynamics.hyperparameters)
    trajectory        = dynamics.unroll(T, truncate=K)
    residual(y)       = grad_y f(x, y)          (the optimality condition, for Implicit)

``step`` is a pure tensor function: it computes the strategy's direction
``d_t`` (the gradient of the inner objective, regularizers included, or BDA's
aggregated gradient), multiplies it by the MT-net mask, and hands it to the inner
optimizer's pure update rule with the (possibly learned) step sizes.

A lower strategy may carry a ``StepPlan`` (``strategy.step_plan``, set by MAML++): per-step step sizes
(LSLR) and per-step replacements of meta-parameters (per-step batch norm). Step ``t`` of training and of
evaluation then uses row ``min(t, T) - 1`` of each (a longer evaluation reuses the last row), and the
objectives evaluated after step ``t`` (``outer_value(state, t)``) see the replacements of row ``t``.
"""
import collections
import math

import tensorflow.compat.v1 as tf

from boml.substitute import Substitution

__all__ = ["TaskDynamics", "Trajectory", "StepHyperparameters", "StepPlan", "RunningStatistics"]

Trajectory = collections.namedtuple(
    "Trajectory", ["initial", "final", "previous", "slots", "previous_slots", "states", "slot_states"])
Trajectory.__doc__ = """Result of unrolling the lower-level dynamics of one task.

Attributes:
    initial: list of tensors, the state y_0.
    final: list of tensors, the state y_T.
    previous: y_{T-1} (None unless ``keep_previous``).
    slots: optimizer slots after the last step.
    previous_slots: the slots before the last step (None unless ``keep_previous``).
    states: [y_0, ..., y_T] (None unless ``keep_states``).
    slot_states: [s_0, ..., s_T] (None unless ``keep_states``).
"""

StepPlan = collections.namedtuple("StepPlan", ["T", "step_sizes", "replacements", "statistics"],
                                  defaults=((),))
StepPlan.__doc__ = """Per-step hyperparameters of a lower strategy (MAML++'s LSLR and per-step batch norm).

Attributes:
    T: the number of rows (the training T); step ``t`` uses row ``min(t, T) - 1``.
    step_sizes: ``[T, n]`` step sizes (one per step and task variable), or None.
    replacements: ``(parameter, per_step)`` pairs: at step ``t`` every read of ``parameter`` is replaced by
        ``per_step[row]`` (``per_step`` has shape ``[T] + parameter.shape``).
    statistics: ``RunningStatistics`` of the batch-norm layers; at evaluation (``training=False``) each layer
        normalizes with them instead of its batch's statistics: row ``min(t, T) - 1`` in the support pass of
        step ``t``, row ``T`` in the tensors evaluated after the last step (``query=True``).
"""

RunningStatistics = collections.namedtuple("RunningStatistics", ["mean", "variance", "support", "query"])
RunningStatistics.__doc__ = """Per-step running statistics of the batch-norm layers sharing one offset (one block).

Attributes:
    mean, variance: ``[T + 1, C]`` variables.
    support: the ``BatchNormLayer`` calls of the inner objective (support pass).
    query: those of the upper objective (query pass).
"""

StepHyperparameters = collections.namedtuple("StepHyperparameters", ["learning_rates", "masks", "coefficients"])
StepHyperparameters.__doc__ = """The hyperparameters of one step, as task-local tensors.

Attributes:
    learning_rates: one step size per state tensor (scalar or shaped like it).
    masks: MT-net update masks, one per state tensor, or None.
    coefficients: strategy-specific tensors (BDA: ``{"alpha", "s", "t"}``), or an empty dict.
"""


def _zeros_for_none(grads, like):
    return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, like)]


class TaskDynamics:
    """The lower-level dynamical system of one task.

    Built by ``BOMLInnerGrad.task_dynamics``; do not construct it directly.

    Args:
        strategy: the lower strategy (supplies ``direction``/``potential``, the
            optimizer, T and the step hyperparameters).
        task: the ``TaskProgram`` of this task.
        outer_objective: the upper-level objective ``F`` (on the task variables).
        training: True for meta-training (random MT-net masks), False for evaluation.

    Attributes:
        T: the number of inner steps.
        hyperparameters: the task's ``StepHyperparameters``.
        meta_params, meta_locals: the meta-parameters and their task-local copies
            (hypergradients are taken against ``meta_locals``).
    """

    def __init__(self, strategy, task, outer_objective=None, training=True):
        self._strategy = strategy
        self._task = task
        self.T = strategy.T
        self.training = training
        self.first_order = strategy.first_order
        self._optimizer = strategy.optimizer
        self.inner_objective = task.local(strategy.inner_objective)
        self.lower_outer_objective = task.local(strategy.outer_objective)
        self.outer_objective = (task.local(outer_objective) if outer_objective is not None
                                else self.lower_outer_objective)
        self.hyperparameters = strategy.step_hyperparameters(task, training)
        self._starts = list(strategy.initial_state)
        self._values = {}
        self.plan = getattr(strategy, "step_plan", None)
        self._statistics = tuple(self.plan.statistics) if self.plan is not None and not training else ()
        self._originals = {}
        if self._statistics:
            for original, local in ((strategy.inner_objective, self.inner_objective),
                                    (outer_objective, self.outer_objective)):
                if original is not None:
                    self._originals[local.ref()] = original

    # ----------------------------------------------------------------------------- views
    @property
    def meta_params(self):
        return list(self._task.meta_params)

    @property
    def meta_locals(self):
        return self._task.meta_locals

    def local(self, tensors):
        """``task.local(tensors)`` (a list), remembering the originals (evaluation with running statistics)."""
        result = self._task.local(list(tensors))
        for original, local in zip(tensors, result):
            self._originals[local.ref()] = original
        return result

    def at_state(self, local_tensors, state, t=None, query=False):
        """Evaluates task-local tensors at ``state`` (with the step plan's replacements of step ``t``).

        ``query``: the tensors are evaluated after the steps (the running statistics' row ``T``).
        """
        single = not isinstance(local_tensors, (list, tuple))
        items = [local_tensors] if single else list(local_tensors)
        if self._statistics and items and all(x.ref() in self._originals for x in items):
            result = self._with_running_statistics([self._originals[x.ref()] for x in items], state, t, query)
            return result[0] if single else result
        pairs = self.step_replacements(t)
        if not pairs:
            return self._task.at_state(local_tensors, state)
        return Substitution(list(zip(self._task.state_proxies, state)) + pairs)(local_tensors)

    def _with_running_statistics(self, originals, state, t, query):
        """The original tensors at ``state``, every batch-norm layer normalizing with the running statistics."""
        pairs = list(zip(self._task.state_vars, state))
        pairs += [(param, tf.gather(self._task.local(per_step), self._row(t)))
                  for param, per_step in self.plan.replacements]
        row = self.plan.T if query or t is None else self._row(t)
        for layer, stats in self._layers(query):
            view = self._task.view(pairs)
            x = view(layer.input)
            dtype = x.dtype.base_dtype
            offset, scale = (None if v is None else tf.cast(view(tf.convert_to_tensor(v)), dtype)
                             for v in (layer.offset, layer.scale))
            mean, variance = (tf.cast(tf.gather(v, row), dtype) for v in (stats.mean, stats.variance))
            out = tf.nn.batch_normalization(x, mean, variance, offset, scale, layer.epsilon)
            pairs.append((layer.output, tf.cast(out, layer.output.dtype.base_dtype)))
        return self._task.view(pairs)(originals)

    def _layers(self, query):
        """``(layer, statistics)`` in creation order: the support layers, and the query ones when ``query``."""
        layers = [(layer, stats) for stats in self._statistics
                  for layer in tuple(stats.support) + (tuple(stats.query) if query else ())]
        order = {id(layer): index for index, layer in enumerate(_all_layers())}
        return sorted(layers, key=lambda item: order.get(id(item[0]), 0))

    # ----------------------------------------------------------------------------- per-step plan
    def _row(self, t):
        """Row ``min(t, T) - 1`` of the step plan (``t`` None: the last row)."""
        if t is None:
            return self.plan.T - 1
        if isinstance(t, int):
            return min(t, self.plan.T) - 1
        return tf.minimum(tf.cast(t, tf.int32), self.plan.T) - 1

    def step_replacements(self, t=None):
        """The ``(local parameter, local per-step row)`` pairs of step ``t`` (empty without a plan)."""
        if self.plan is None or not self.plan.replacements:
            return []
        row = self._row(t)
        locals_by_ref = {p.ref(): local for p, local in zip(self.meta_params, self.meta_locals)}
        pairs = []
        for param, per_step in self.plan.replacements:
            key = locals_by_ref.get(param.ref(), param)
            pairs.append((key, tf.gather(self._task.local(per_step), row)))
        return pairs

    def hyperparameters_at(self, t, hyperparameters=None):
        """The hyperparameters of step ``t``: the plan's step sizes of that step, if it has any."""
        hyperparameters = hyperparameters or self.hyperparameters
        if self.plan is None or self.plan.step_sizes is None:
            return hyperparameters
        rates = tf.gather(self._task.local(self.plan.step_sizes), self._row(t))
        dtypes = [r.dtype.base_dtype for r in hyperparameters.learning_rates]
        return hyperparameters._replace(learning_rates=[tf.cast(rates[i], d) for i, d in enumerate(dtypes)])

    def initializing_index(self, param):
        """Index of the state tensor whose episode start is the meta-parameter ``param``, or None."""
        for index, start in enumerate(self._starts):
            if start is param or (hasattr(start, "ref") and hasattr(param, "ref") and start.ref() == param.ref()):
                return index
        return None

    # ----------------------------------------------------------------------------- values
    def _value(self, which, tensor, state, t):
        if not self._statistics and (self.plan is None or not self.plan.replacements):
            t = None  # no per-step replacements: the value is the same at every step
        key = (which, t if t is None or isinstance(t, int) else t.ref(), tuple(s.ref() for s in state))
        if key not in self._values:
            self._values[key] = self.at_state(tensor, state, t)
        return self._values[key]

    def inner_value(self, state, t=None):
        """The inner objective ``f`` at ``state`` (built once per state; ``t``: see ``at_state``)."""
        return self._value("inner", self.inner_objective, state, t)

    def outer_value(self, state, t=None):
        """The upper objective ``F`` at ``state`` (built once per state; ``t``: see ``at_state``)."""
        return self._value("outer", self.outer_objective, state, t)

    def gradient(self, value, state):
        """``d value / d state`` (zeros where it does not depend on it)."""
        return _zeros_for_none(tf.gradients(value, state), state)

    def residual(self, state):
        """The optimality condition of the lower problem: ``grad_y f(x, y)`` at ``state``.

        Implicit differentiation assumes it vanishes at the approximate solution.
        """
        return self.gradient(self.inner_value(state), state)

    # ----------------------------------------------------------------------------- one step
    def initial_state(self):
        """The state at the start of the episode (``y_0``)."""
        return [tf.convert_to_tensor(self._task.local(start)) for start in self._starts]

    def initial_slots(self, state):
        """The optimizer slots before the first step."""
        return list(self._optimizer.init_slots(state))

    def direction(self, t, state, hyperparameters=None):
        """The strategy's raw direction ``d_t`` at ``state`` (before mask and optimizer)."""
        return self._strategy.direction(self, t, state, hyperparameters or self.hyperparameters)

    def potential(self, t, state, hyperparameters=None):
        """A scalar whose gradient w.r.t. the state is ``direction`` (DARTS' finite differences)."""
        return self._strategy.potential(self, t, state, hyperparameters or self.hyperparameters)

    def apply_direction(self, t, state, slots, direction, hyperparameters=None, stop_direction=None):
        """The step given its direction: first-order cut, MT-net mask, then the inner optimizer.

        Args:
            t: 1-based step index (python int or int tensor).
            state, slots: lists of tensors before the step.
            direction: list of tensors, one per state tensor.
            hyperparameters: default ``self.hyperparameters``.
            stop_direction: treat the direction as a constant (default: the
                strategy's ``first_order``).

        Returns:
            ``(new_state, new_slots)``.
        """
        hyperparameters = hyperparameters or self.hyperparameters
        if self.first_order if stop_direction is None else stop_direction:
            direction = [tf.stop_gradient(d) for d in direction]
        if hyperparameters.masks is not None:
            direction = [d * m for d, m in zip(direction, hyperparameters.masks)]
        new_state, new_slots = self._optimizer.step(state, direction, slots, t, hyperparameters.learning_rates)
        return list(new_state), list(new_slots)

    def step(self, t, state, slots, hyperparameters=None):
        """One step ``(y_t, s_t) = Phi_t(y_{t-1}, s_{t-1}; hyperparameters)`` (pure)."""
        hyperparameters = hyperparameters or self.hyperparameters_at(t)
        return self.apply_direction(t, state, slots, self.direction(t, state, hyperparameters), hyperparameters)

    # ----------------------------------------------------------------------------- T steps
    def unroll(self, T=None, truncate=-1, differentiable=True, keep_previous=False, keep_states=False):
        """Builds the T steps of the dynamics.

        Strategies that need every intermediate state (``keep_states``) or that
        declare ``unroll_in_python`` are unrolled in Python (the graph grows with
        T); the others run in one ``tf.while_loop``.

        Args:
            T: number of steps (default ``self.T``).
            truncate: K >= 0 keeps gradients through the last K steps only (the
                state and slots before them are constants); -1 keeps all.
            differentiable: if False the whole trajectory is a constant.
            keep_previous: also return ``y_{T-1}`` and its slots.
            keep_states: also return every state and slot list.

        Returns:
            A ``Trajectory``.
        """
        T = self.T if T is None else T
        y0 = self.initial_state()
        if not differentiable:
            y0 = [tf.stop_gradient(v) for v in y0]
        slots0 = self.initial_slots(y0)
        cut = truncate is not None and 0 <= truncate < T
        stop = None if differentiable else (lambda values: [tf.stop_gradient(v) for v in values])

        def transition(step, state, slots):
            return self._transition(step, state, slots, constant=stop is not None)

        if self._strategy.unroll_in_python or keep_states:
            state, slots = y0, slots0
            states, slot_states, previous, previous_slots = [y0], [slots0], None, None
            for step in range(1, T + 1):
                if cut and step <= T - truncate + 1:
                    state, slots = [tf.stop_gradient(v) for v in state], [tf.stop_gradient(s) for s in slots]
                previous, previous_slots = state, slots
                state, slots = transition(step, state, slots)
                states.append(state)
                slot_states.append(slots)
            if cut and truncate == 0:
                state = [tf.stop_gradient(v) for v in state]
        elif cut:
            # The first T-K steps are constants for the hypergradient: a loop of their own whose outputs
            # are cut, so the reverse pass keeps nothing of them.
            states = slot_states = None
            head = T - truncate
            state, slots, previous, previous_slots = _while_loop(transition, y0, slots0, 1, head, keep_previous)
            state, slots = [tf.stop_gradient(v) for v in state], [tf.stop_gradient(s) for s in slots]
            if keep_previous:
                previous = [tf.stop_gradient(v) for v in previous]
                previous_slots = [tf.stop_gradient(s) for s in previous_slots]
            if truncate > 0:
                state, slots, previous, previous_slots = _while_loop(transition, state, slots, head + 1, T,
                                                                     keep_previous)
        else:
            states = slot_states = None
            state, slots, previous, previous_slots = _while_loop(transition, y0, slots0, 1, T, keep_previous)
        if stop:
            state, slots = stop(state), stop(slots)
        keep = keep_previous or keep_states
        return Trajectory(initial=y0, final=list(state), previous=list(previous) if keep else None,
                          slots=list(slots), previous_slots=list(previous_slots) if keep else None,
                          states=states if keep_states else None, slot_states=slot_states if keep_states else None)


    # ----------------------------------------------------------------------------- hypergradient
    def reverse_hypergradients(self, truncate=-1, recompute_every=None):
        """``dF(x, y_T(x))/dx`` (against ``meta_locals``) back-propagated through the T steps, and ``y_T``.

        Without ``recompute_every`` this is ``tf.gradients`` of ``outer_value(unroll(truncate).final)``:
        TensorFlow's reverse pass keeps every step's intermediates (memory linear in T). With
        ``recompute_every=K`` (gradient checkpointing) the forward pass keeps only the state and slots
        every K steps (the checkpoints ``c_0, c_K, ...``); the reverse pass then recomputes one segment
        ``c_{j} -> c_{j+K}`` at a time and pulls the adjoint through it::

            a_T = dF/dy_T,   a_j = a_{j+K} d c_{j+K} / d c_j,
            dF/dx = dF/dx|_direct + sum_j a_{j+K} d c_{j+K} / dx|_{c_j fixed} + a_0 d c_0 / dx

        which is the same sum as the plain reverse pass (Griewank & Walther, "Algorithm 799: revolve",
        ACM TOMS 2000; Chen et al., "Training Deep Nets with Sublinear Memory Cost", 2016). Memory:
        about T/K checkpoints plus one segment's intermediates (``K = sqrt(T)`` minimizes it); time: one
        more forward pass. Each segment is recomputed only once the adjoint of the next one exists, so
        the segments' intermediates are never alive together.

        Args:
            truncate: as in ``unroll`` (TRHG: only the last K steps are back-propagated).
            recompute_every: None, a positive segment length, or ``"sqrt"`` (the square root of the
                number of back-propagated steps, rounded up).

        Returns:
            ``(hypergradients, final_state)``: a list aligned with ``meta_locals`` (None where a
            parameter has no influence) and ``y_T``.
        """
        if recompute_every is None:
            final = self.unroll(truncate=truncate).final
            return tf.gradients(self.outer_value(final), self.meta_locals), final
        T = self.T
        first = T - truncate + 1 if truncate is not None and 0 <= truncate < T else 1
        every = _segment_length(recompute_every, T - first + 1)
        python = self._strategy.unroll_in_python
        y0 = self.initial_state()
        slots0 = self.initial_slots(y0)
        if first > 1:
            state, slots = self._constant_steps(y0, slots0, 1, first - 1, python)
        else:
            state, slots = _stopped(y0), _stopped(slots0)
        segments = [(begin + 1, min(begin + every, T)) for begin in range(first - 1, T, every)]
        if python:
            final, final_slots, backward = self._python_segments(state, slots, segments)
        else:
            final, final_slots, backward = self._looped_segments(state, slots, first, every, len(segments))
        outer = self.outer_value(final)
        grads = tf.gradients(outer, self.meta_locals)
        adjoint = _zeros_for_none(tf.gradients(outer, final), final) + [tf.zeros_like(s) for s in final_slots]
        adjoint, segment_grads = backward(adjoint)
        grads = add_gradients(grads, segment_grads)
        if first == 1:
            grads = add_gradients(grads, tf.gradients(list(y0) + list(slots0), self.meta_locals, grad_ys=adjoint))
        return grads, list(final)

    def _segment_adjoint(self, start, adjoint, first, last, python):
        """Recomputes steps ``first..last`` from ``start`` (state + slots) once ``adjoint`` exists, and pulls
        ``adjoint`` (of the segment's end) back: ``(adjoint of start, contributions to the hypergradients)``."""
        with tf.control_dependencies(adjoint):
            start = [tf.identity(v) for v in start]
        n = len(self._starts)
        end_state, end_slots = self._steps(start[:n], start[n:], first, last, python)
        back = tf.gradients(end_state + end_slots, start + list(self.meta_locals), grad_ys=list(adjoint))
        return _zeros_for_none(back[:len(start)], start), back[len(start):]

    def _python_segments(self, state, slots, segments):
        """The checkpoints and backward pass of segments unrolled in Python (a graph linear in T)."""
        checkpoints = [list(state) + list(slots)]
        for first, last in segments:
            state, slots = self._constant_steps(state, slots, first, last, True)
            checkpoints.append(state + slots)

        def backward(adjoint):
            grads = [None] * len(self.meta_locals)
            for (first, last), start in reversed(list(zip(segments, checkpoints))):
                adjoint, contribution = self._segment_adjoint(start, adjoint, first, last, True)
                grads = add_gradients(grads, contribution)
            return adjoint, grads

        return state, slots, backward

    def _looped_segments(self, state, slots, first, every, count):
        """The checkpoints and backward pass as two ``tf.while_loop`` over the ``count`` segments of ``every``
        steps from step ``first`` (the graph does not grow with T): the forward loop writes the start of each
        segment into ``TensorArray`` s, the backward loop runs the segments in reverse, one at a time."""
        start = list(state) + list(slots)
        n, size = len(state), len(start)
        T = self.T

        def bounds(index):
            begin = first + index * every
            return begin, tf.minimum(begin + every - 1, T)

        def forward_body(index, *flat):
            values, arrays = list(flat[:size]), list(flat[size:])
            arrays = [a.write(index, v) for a, v in zip(arrays, values)]
            begin, end = bounds(index)
            new_state, new_slots = self._constant_steps(values[:n], values[n:], begin, end, False)
            return [index + 1] + new_state + new_slots + arrays

        arrays = [tf.TensorArray(v.dtype, size=count, element_shape=v.shape) for v in start]
        result = tf.while_loop(lambda index, *_: index < count, forward_body, [tf.constant(0)] + start + arrays,
                               maximum_iterations=count, name="recompute_checkpoints")
        final, arrays = _stopped(result[1:1 + size]), list(result[1 + size:])
        unused = []

        def backward(adjoint):
            def backward_body(index, *flat):
                incoming, sums = list(flat[:size]), list(flat[size:])
                begin, end = bounds(index)
                checkpoint = [a.read(index) for a in arrays]
                for value, reference in zip(checkpoint, start):
                    value.set_shape(reference.shape)
                outgoing, contribution = self._segment_adjoint(checkpoint, incoming, begin, end, False)
                unused[:] = [g is None for g in contribution]
                sums = [total if g is None else total + tf.convert_to_tensor(g) for total, g in zip(sums, contribution)]
                return [index - 1] + outgoing + sums

            sums = [tf.zeros_like(v) for v in self.meta_locals]
            result = tf.while_loop(lambda index, *_: index >= 0, backward_body,
                                   [tf.constant(count - 1)] + list(adjoint) + sums, maximum_iterations=count,
                                   parallel_iterations=1, name="recompute_segments")
            grads = [None if none else g for none, g in zip(unused, result[1 + size:])]
            return list(result[1:1 + size]), grads

        return final[:n], final[n:], backward

    def _transition(self, step, state, slots, constant=False):
        """Step ``step`` with that step's hyperparameters; ``constant``: its direction is a constant."""
        hyper = self.hyperparameters_at(step)
        return self.apply_direction(step, state, slots, self.direction(step, state, hyper), hyper,
                                    stop_direction=True if constant else None)

    def _steps(self, state, slots, first, last, python, constant=False):
        """Steps ``first..last`` (at least one) from ``(state, slots)``, unrolled in Python or one ``tf.while_loop``."""
        def transition(step, current, current_slots):
            return self._transition(step, current, current_slots, constant)

        if python:
            for step in range(first, last + 1):
                state, slots = transition(step, state, slots)
            return list(state), list(slots)
        state, slots, _, _ = _while_loop(transition, list(state), list(slots), first, last, False)
        return state, slots

    def _constant_steps(self, state, slots, first, last, python):
        """``_steps`` whose inputs and outputs are constants (checkpoints no gradient may flow through)."""
        state, slots = self._steps(_stopped(state), _stopped(slots), first, last, python, constant=True)
        return _stopped(state), _stopped(slots)


def _stopped(tensors):
    return [tf.stop_gradient(v) for v in tensors]


def add_gradients(first, second):
    """Elementwise sum of two gradient lists where None means zero."""
    return [a if b is None else b if a is None else a + b for a, b in zip(first, second)]


def _segment_length(recompute_every, steps):
    """The segment length of ``recompute_every`` for ``steps`` back-propagated steps (at least 1)."""
    if recompute_every == "sqrt":
        return max(1, math.ceil(math.sqrt(steps)))
    return int(recompute_every)


def _all_layers():
    from boml.setup_model.network_utils import batch_norm_layers

    return batch_norm_layers()


def _while_loop(transition, state, slots, first, last, keep_previous):
    """Steps ``first..last`` (1-based, inclusive) as one ``tf.while_loop``.

    Returns:
        ``(state, slots, previous, previous_slots)``; the last two are the values
        before the last step when ``keep_previous``, else None.
    """
    n, m = len(state), len(slots)

    def body(step, *flat):
        current, current_slots = list(flat[:n]), list(flat[n:n + m])
        new_state, new_slots = transition(step, current, current_slots)
        kept = (current + current_slots) if keep_previous else []
        return [step + 1] + list(new_state) + list(new_slots) + kept

    kept = (list(state) + list(slots)) if keep_previous else []
    loop_vars = [tf.convert_to_tensor(first)] + list(state) + list(slots) + kept
    result = tf.while_loop(lambda step, *_: step <= last, body, loop_vars, maximum_iterations=last - first + 1,
                           name="lower_dynamics")
    if keep_previous:
        previous = list(result[1 + n + m:1 + 2 * n + m])
        previous_slots = list(result[1 + 2 * n + m:])
    else:
        previous = previous_slots = None
    return list(result[1:1 + n]), list(result[1 + n:1 + n + m]), previous, previous_slots
