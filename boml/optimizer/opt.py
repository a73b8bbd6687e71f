"""Base class of boml's differentiable inner optimizers.

An inner optimizer in boml is a *pure update rule*: ``step`` maps the current
parameters, their gradients and the optimizer state ("slots") to the next
parameters and the next state, using only tensor operations. The same rule is
used twice:

* by the lower-level strategies (``boml.lower_iter``), which unroll ``step``
  over T iterations inside the graph so that hypergradients can flow through
  the whole trajectory;
* by ``minimize`` / ``apply_gradients``, the stateful path kept for
  compatibility with the original BOML, which stores the state in variables
  and returns an update op together with the ``dynamics`` (variable -> next
  value) that it assigns.

Because both paths call the same ``step``, the op that runs and the graph that
is differentiated can never disagree. As in the original, ``BOMLOpt`` is a
subclass of ``tf.compat.v1.train.Optimizer`` (``isinstance`` checks,
``compute_gradients``, ``get_slot``, ``variables`` work), but its ``minimize``
and ``apply_gradients`` return ``(update_op, dynamics)`` instead of the op alone.
"""
import collections
import math
import numbers

import numpy as np
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError

__all__ = ["BOMLOpt", "safe_sqrt", "validate_learning_rate", "validate_unit_interval",
           "validate_positive"]


# --------------------------------------------------------------------- helpers
# ``tf.compat.v1.Variable`` is not a base class of resource variables; the v2 class is the
# common base of resource and reference variables.
_VARIABLE_TYPES = (tf.compat.v2.Variable, tf.Variable)


def _is_variable(value):
    return isinstance(value, _VARIABLE_TYPES)


def _is_tensor_like(value):
    """True for graph tensors and variables (values only known at run time)."""
    return isinstance(value, tf.Tensor) or _is_variable(value) or tf.is_tensor(value)


def _is_real_number(value):
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _format_value(value):
    """Short, readable rendering of a hyperparameter for ``__str__``."""
    if _is_variable(value):
        return f"<variable {value.name}>"
    if _is_tensor_like(value):
        return f"<tensor {value.name}>" if hasattr(value, "name") else "<tensor>"
    if isinstance(value, np.ndarray):
        return f"<array shape={value.shape}>"
    return repr(float(value)) if _is_real_number(value) else repr(value)


def validate_learning_rate(value, owner):
    """Checks a learning rate given to an optimizer constructor.

    Python and numpy numbers must be finite and non-negative; numpy arrays must be
    element-wise finite and non-negative; tensors and variables are accepted
    unchecked (their value is only known when the graph runs).

    Args:
        value: the learning rate received.
        owner: the optimizer class name, used in the error message.

    Returns:
        ``value`` unchanged.

    Raises:
        InvalidArgumentError: the value is not a number, array, tensor or variable,
            or it is negative or not finite.
    """
    if _is_tensor_like(value):
        return value
    if isinstance(value, np.ndarray) and value.ndim > 0:
        if not np.issubdtype(value.dtype, np.floating) and not np.issubdtype(value.dtype, np.integer):
            raise InvalidArgumentError(
                f"{owner}: learning_rate must be numeric; received an array of dtype {value.dtype}. "
                f"Pass a non-negative float, a numeric array, a tensor or a variable.")
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise InvalidArgumentError(
                f"{owner}: learning_rate must be finite and >= 0 element-wise; received {value!r}. "
                f"Use non-negative finite step sizes.")
        return value
    if not _is_real_number(value):
        raise InvalidArgumentError(
            f"{owner}: learning_rate must be a non-negative number, a tensor or a variable; "
            f"received {value!r} of type {type(value).__name__}. Pass e.g. learning_rate=0.1.")
    if not math.isfinite(float(value)) or value < 0:
        raise InvalidArgumentError(
            f"{owner}: learning_rate must be a finite number >= 0; received {value!r}. "
            f"Pass a non-negative step size such as 0.1.")
    return value


def validate_unit_interval(value, argument, owner):
    """Checks that a python number lies in ``[0, 1)`` (momentum, Adam betas).

    Tensors and variables are accepted unchecked.

    Raises:
        InvalidArgumentError: ``value`` is not a number or lies outside ``[0, 1)``.
    """
    if _is_tensor_like(value):
        return value
    if not _is_real_number(value):
        raise InvalidArgumentError(
            f"{owner}: {argument} must be a number in [0, 1), a tensor or a variable; received "
            f"{value!r} of type {type(value).__name__}. Pass a float such as 0.9.")
    if not (0.0 <= float(value) < 1.0):
        raise InvalidArgumentError(
            f"{owner}: {argument} must lie in [0, 1); received {value!r}. "
            f"Choose a value such as 0.9 (1 or more makes the recursion diverge).")
    return value


def validate_positive(value, argument, owner):
    """Checks that a python number is finite and strictly positive (Adam's epsilon).

    Tensors and variables are accepted unchecked.

    Raises:
        InvalidArgumentError: ``value`` is not a number or is not finite and > 0.
    """
    if _is_tensor_like(value):
        return value
    if not _is_real_number(value):
        raise InvalidArgumentError(
            f"{owner}: {argument} must be a positive number, a tensor or a variable; received "
            f"{value!r} of type {type(value).__name__}. Pass a float such as 1e-8.")
    if not math.isfinite(float(value)) or value <= 0:
        raise InvalidArgumentError(
            f"{owner}: {argument} must be a finite number > 0; received {value!r}. "
            f"Pass a small positive value such as 1e-8.")
    return value


def as_dtype(value, dtype):
    """Converts a hyperparameter (number, array, tensor or variable) to ``dtype``.

    Python numbers are converted directly to ``dtype`` (no float32 detour), so
    float64 problems keep full precision.
    """
    if _is_tensor_like(value):
        value = tf.convert_to_tensor(value)
        return value if value.dtype.base_dtype == dtype else tf.cast(value, dtype)
    return tf.constant(value, dtype=dtype)


def safe_sqrt(x):
    """Square root whose gradient is 0 (instead of infinite) where ``x <= 0``.

    The forward value equals ``tf.sqrt(x)`` everywhere. The derivative of the
    square root is ``1 / (2 sqrt(x))``, infinite at 0; back-propagating through
    ``tf.sqrt`` at an exact zero yields ``0 * inf = NaN``, which would poison the
    hypergradients of Adam whenever a gradient entry is exactly zero. Here the
    differentiable branch only ever sees strictly positive inputs (the "double
    where" trick) and the branch used at ``x <= 0`` is cut from the gradient.

    Args:
        x: a floating tensor.

    Returns:
        ``sqrt(x)``, with gradient ``1 / (2 sqrt(x))`` where ``x > 0`` and 0 elsewhere.
    """
    x = tf.convert_to_tensor(x)
    positive = x > 0
    safe_input = tf.where(positive, x, tf.ones_like(x))
    return tf.where(positive, tf.sqrt(safe_input), tf.stop_gradient(tf.sqrt(x)))


# ------------------------------------------------------------------ base class
class BOMLOpt(tf.train.Optimizer):
    """Base class of the differentiable inner optimizers (a ``tf.compat.v1.train.Optimizer``).

    Subclasses implement two pure tensor functions:

    * ``init_slots(params)``: the optimizer state before the first update;
    * ``step(params, grads, slots, step, learning_rates)``: one update.

    Slot layout convention: the slots are grouped by kind, in the order of
    ``slot_names``, and each group holds one tensor per parameter in the order
    of ``params``. For Adam (``slot_names = ("m", "v")``) and params
    ``[w, b]`` the slots are ``[m_w, m_b, v_w, v_b]``. The base ``init_slots``
    returns zeros in that layout.

    Args:
        learning_rate: step size: a non-negative python number, a numpy array, a
            tensor or a variable (tensors are not checked).
        name: name used for the ops and the slot variables of ``minimize``.
        use_locking: passed to the assign ops of ``minimize``/``apply_gradients``.

    Raises:
        InvalidArgumentError: the learning rate is negative, not finite or not a
            number/tensor, ``name`` is not a non-empty string or ``use_locking``
            is not a boolean.
    """

    #: Names of the slot kinds, one slot per parameter for each kind.
    slot_names = ()
    #: Short name used by ``__str__`` (the registry name of the built-in classes).
    display_name = "BOMLOpt"

    def __init__(self, learning_rate, name, use_locking=False):
        owner = type(self).__name__
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(
                f"{owner}: name must be a non-empty string; received {name!r}. "
                f"Pass e.g. name='{owner}'.")
        if not isinstance(use_locking, bool):
            raise InvalidArgumentError(
                f"{owner}: use_locking must be True or False; received {use_locking!r}. Pass a boolean.")
        super().__init__(use_locking=use_locking, name=name)
        self._learning_rate = validate_learning_rate(learning_rate, owner)
        self._name = name
        # slot kind -> {variable.ref(): slot variable} of the last minimize/apply_gradients per variable.
        self._state_slots = collections.OrderedDict()
        self._state_variables = []

    # ---------------------------------------------------------------- properties
    @property
    def learning_rate(self):
        """The learning rate as given to the constructor (number, tensor or variable)."""
        return self._learning_rate

    @property
    def name(self):
        return self._name

    @property
    def learning_rate_tensor(self):
        """The learning rate as a tensor (a constant for a python number)."""
        return tf.convert_to_tensor(self._learning_rate)

    @property
    def optimizer_params_tensor(self):
        """The hyperparameters (learning rate first, then as in ``__str__``) as tensors."""
        return [tf.convert_to_tensor(value) for _, value in self._hyperparameters()
                if not isinstance(value, (bool, np.bool_))]

    def _hyperparameters(self):
        """Ordered (label, value) pairs shown by ``__str__``; extended by subclasses."""
        return [("lr", self._learning_rate)]

    def __str__(self):
        inner = ", ".join(f"{label}={_format_value(value)}" for label, value in self._hyperparameters())
        return f"{self.display_name}({inner})"

    __repr__ = __str__

    # --------------------------------------------------------------- pure rule
    def init_slots(self, params):
        """The optimizer state at step 0: zeros, laid out as described in the class doc.

        Args:
            params: list of parameter tensors.

        Returns:
            A flat list of ``len(slot_names) * len(params)`` tensors (possibly empty),
            each shaped and typed like its parameter.
        """
        params = list(params)
        return [tf.zeros_like(p) for _ in self.slot_names for p in params]

    def step(self, params, grads, slots, step, learning_rates=None):
        """One update of the rule, as a pure tensor function.

        Creates no variable and no assign op, so it can be unrolled inside a
        ``tf.while_loop`` and differentiated.

        Args:
            params: list of parameter tensors.
            grads: list of gradient tensors, one per parameter (same shapes).
            slots: the flat list returned by ``init_slots`` or by the previous ``step``.
            step: scalar (python int, int or float tensor): the 1-based index of this
                update (used by Adam's bias correction).
            learning_rates: None to use ``self.learning_rate`` for every parameter, or
                a list with one entry per parameter, each a scalar or a tensor shaped
                like the parameter (Meta-SGD per-element step sizes, applied
                element-wise).

        Returns:
            ``(new_params, new_slots)``: two lists of tensors.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement step().")

    # ------------------------------------------------------- argument checking
    def _prepare(self, params, grads, slots, learning_rates):
        """Validates the arguments of ``step`` and returns the per-parameter learning rates."""
        owner = type(self).__name__
        params, grads, slots = list(params), list(grads), list(slots)
        if len(grads) != len(params):
            raise InvalidArgumentError(
                f"{owner}.step: got {len(params)} params but {len(grads)} grads. "
                f"Pass exactly one gradient per parameter, in the same order.")
        for index, grad in enumerate(grads):
            if grad is None:
                raise InvalidArgumentError(
                    f"{owner}.step: the gradient of parameter #{index} "
                    f"({getattr(params[index], 'name', params[index])}) is None. "
                    f"Replace it by zeros or drop the parameter from the list.")
        expected = len(self.slot_names) * len(params)
        if len(slots) != expected:
            raise InvalidArgumentError(
                f"{owner}.step: expected {expected} slots ({len(self.slot_names)} per parameter: "
                f"{list(self.slot_names)}) for {len(params)} params, received {len(slots)}. "
                f"Pass the list returned by init_slots() or by the previous step().")
        params = [tf.convert_to_tensor(p) for p in params]
        grads = [tf.convert_to_tensor(g) for g in grads]
        slots = [tf.convert_to_tensor(s) for s in slots]
        if learning_rates is None:
            rates = [as_dtype(self._learning_rate, p.dtype.base_dtype) for p in params]
        else:
            learning_rates = list(learning_rates)
            if len(learning_rates) != len(params):
                raise InvalidArgumentError(
                    f"{owner}.step: got {len(learning_rates)} learning_rates for {len(params)} params. "
                    f"Pass one learning rate (scalar or shaped like the parameter) per parameter, "
                    f"or None to use the optimizer's learning rate.")
            rates = [as_dtype(r, p.dtype.base_dtype) for r, p in zip(learning_rates, params)]
        return params, grads, slots, rates

    # ------------------------------------------------------ stateful (compat)
    def minimize(self, loss_inner, var_list=None, global_step=None, gate_gradients=tf.train.Optimizer.GATE_OP,
                 aggregation_method=None, colocate_gradients_with_ops=False, name=None, grad_loss=None):
        """Builds one stateful update of ``var_list`` that decreases ``loss_inner``.

        Compatibility path of the original BOML (same signature as
        ``tf.compat.v1.train.Optimizer.minimize``, but two results). The gradients
        come from ``compute_gradients``; the optimizer state is stored in new
        non-trainable variables (collection ``GLOBAL_VARIABLES`` only): one slot
        variable per slot and an int32 step counter (starting at 0), created
        afresh by each call.

        Args:
            loss_inner: scalar loss tensor.
            var_list: variables to update (default: ``tf.trainable_variables()``).
            global_step: optional variable incremented by 1 by the update op (it is
                not part of ``dynamics``).
            gate_gradients: as in ``tf.compat.v1.train.Optimizer.compute_gradients``.
            aggregation_method: idem.
            colocate_gradients_with_ops: idem.
            grad_loss: idem.
            name: name scope of the created ops (default: the optimizer's name).

        Returns:
            ``(update_op, dynamics)``: ``dynamics`` is an ``OrderedDict`` mapping each
            state variable (the parameters, then the slot variables, then the step
            counter) to its next value; ``update_op`` assigns all of them at once
            (every next value is computed from the values before the update).

        Raises:
            InvalidArgumentError: ``var_list`` is empty or a variable gets no gradient.
        """
        var_list = self._resolve_var_list(var_list)
        with tf.name_scope(name or self._name):
            pairs = self.compute_gradients(loss_inner, var_list=var_list, gate_gradients=gate_gradients,
                                           aggregation_method=aggregation_method,
                                           colocate_gradients_with_ops=colocate_gradients_with_ops,
                                           grad_loss=grad_loss)
        for grad, var in pairs:
            if grad is None:
                raise InvalidArgumentError(
                    f"{type(self).__name__}.minimize: the loss {getattr(loss_inner, 'name', loss_inner)} "
                    f"has no gradient with respect to the variable {var.name}. Remove it from var_list "
                    f"or make the loss depend on it.")
        return self.apply_gradients(pairs, global_step=global_step, name=name)

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        """Stateful update from given gradients; see ``minimize`` for the outputs.

        Args:
            grads_and_vars: list of ``(gradient, variable)`` pairs.
            global_step: optional variable incremented by 1 by the update op.
            name: name scope of the created ops (default: the optimizer's name).

        Returns:
            ``(update_op, dynamics)`` as in ``minimize``.

        Raises:
            InvalidArgumentError: the list is empty, an entry is not a pair, a
                gradient is None or an entry is not a variable.
        """
        owner = type(self).__name__
        pairs = list(grads_and_vars)
        if not pairs:
            raise InvalidArgumentError(
                f"{owner}.apply_gradients: received no (gradient, variable) pairs. "
                f"Pass at least one pair.")
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InvalidArgumentError(
                    f"{owner}.apply_gradients: every entry must be a (gradient, variable) pair; "
                    f"received {pair!r}.")
            grad, var = pair
            if not _is_variable(var):
                raise InvalidArgumentError(
                    f"{owner}.apply_gradients: {var!r} is not a tf.Variable; only variables can be "
                    f"updated by the stateful path. Use step() for plain tensors.")
            if grad is None:
                raise InvalidArgumentError(
                    f"{owner}.apply_gradients: the gradient of the variable {var.name} is None. "
                    f"Drop the variable or provide a gradient.")
        grads = [g for g, _ in pairs]
        var_list = [v for _, v in pairs]

        slot_vars, counter = self._create_state(var_list)
        with tf.name_scope(name or self._name):
            # Read every piece of state once; the next values are all functions of these reads.
            params_now = [tf.identity(v.value()) for v in var_list]
            slots_now = [tf.identity(s.value()) for s in slot_vars]
            counter_now = tf.identity(counter.value())
            step = counter_now + 1
            new_params, new_slots = self.step(params_now, grads, slots_now, step)
            new_values = list(new_params) + list(new_slots) + [step]
            state_vars = list(var_list) + list(slot_vars) + [counter]
            dynamics = collections.OrderedDict(zip(state_vars, new_values))
            # No assign may run before every read above (and the gradient computation) is done.
            with tf.control_dependencies(new_values):
                assigns = [tf.assign(var, value, use_locking=self._use_locking) for var, value in dynamics.items()]
                if global_step is not None:
                    assigns.append(tf.assign_add(global_step, tf.ones([], global_step.dtype.base_dtype)))
            update_op = tf.group(*assigns, name="update")
        return update_op, dynamics

    # ----------------------------------------------------------------- helpers
    def _resolve_var_list(self, var_list):
        if var_list is None:
            var_list = tf.trainable_variables()
        var_list = list(var_list)
        if not var_list:
            raise InvalidArgumentError(
                f"{type(self).__name__}.minimize: var_list is empty (and the graph has no trainable "
                f"variables). Pass the variables to update.")
        return var_list

    def _create_state(self, var_list):
        """Creates the slot variables (zeros, from ``init_slots``) and the step counter."""
        with tf.init_scope():
            zeros = []
            for var in var_list:
                shape = var.shape
                if shape.is_fully_defined():
                    zeros.append(tf.zeros(shape, dtype=var.dtype.base_dtype))
                else:
                    zeros.append(tf.zeros_like(var.initial_value))
            initial_slots = self.init_slots(zeros)
            n = len(var_list)
            slot_vars = []
            for index, initial in enumerate(initial_slots):
                var = var_list[index % n] if n else None
                kind = self.slot_names[index // n] if n and index // n < len(self.slot_names) else f"slot{index}"
                base = var.op.name if var is not None else self._name
                slot_vars.append(tf.Variable(initial, trainable=False, name=f"{base}/{self._name}_{kind}",
                                             collections=[tf.GraphKeys.GLOBAL_VARIABLES]))
            counter = tf.Variable(0, dtype=tf.int32, trainable=False, name=f"{self._name}_step",
                                  collections=[tf.GraphKeys.GLOBAL_VARIABLES])
        for index, slot in enumerate(slot_vars):
            group = index // len(var_list)
            kind = self.slot_names[group] if group < len(self.slot_names) else f"slot{index}"
            self._state_slots.setdefault(kind, collections.OrderedDict())[var_list[index % len(var_list)].ref()] = slot
        self._state_variables.extend(slot_vars + [counter])
        return slot_vars, counter

    # ------------------------------------------------- tf.train.Optimizer API
    def get_slot_names(self):
        """The slot kinds (``slot_names``), as ``tf.compat.v1.train.Optimizer.get_slot_names``."""
        return list(self.slot_names)

    def get_slot(self, var, name):
        """The slot variable ``name`` of ``var`` created by the last ``minimize``/``apply_gradients`` on it.

        Returns:
            The variable, or None if ``var`` has no such slot (as in TensorFlow).
        """
        return self._state_slots.get(name, {}).get(var.ref())

    def variables(self):
        """Every state variable created by ``minimize``/``apply_gradients`` (slots and step counters)."""
        return list(self._state_variables)
