"""Lower-level strategies: the T-step dynamics that replace ``argmin_y f(x, y)``.

A lower strategy turns the user's inner objective into the dynamical system

    y_0 = Psi_0(x),    y_t = y_{t-1} - eta * d_t(x, y_{t-1})   (t = 1..T)

(for SGD; Momentum and Adam transform ``d_t`` the same way they transform a
gradient), where ``d_t`` is the *direction* of step ``t``. ``BOMLInnerGradTrad``
uses the gradient of the inner objective, ``BOMLInnerGradAggr`` (BDA) mixes it
with the gradient of the outer objective, ``BOMLInnerGradSimple`` is the MAML
inner loop.

The dynamics are built once, in the graph, per task: ``Trad`` and ``Aggr`` as a
``tf.while_loop`` (graph size independent of T), ``Simple`` unrolled in Python
(second-order MAML differentiates through every step).
"""
import collections

import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError

Trajectory = collections.namedtuple("Trajectory", ["initial", "final", "previous", "slots", "states"])
Trajectory.__doc__ = """Result of unrolling the lower-level dynamics for one task.

Attributes:
    initial: list of tensors, the state y_0.
    final: list of tensors, the state y_T.
    previous: list of tensors, y_{T-1} (None unless requested).
    slots: optimizer slots after the last step.
    states: [y_0, ..., y_T] when unrolled in Python, else None.
"""


def _zeros_for_none(grads, like):
    return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, like)]


class BOMLInnerGrad:
    """Base class of the lower-level strategies.

    Subclasses define ``direction`` (and ``potential`` for DARTS). The
    constructor arguments are normally supplied by ``BOMLOptimizer.ll_problem``.

    Args:
        inner_objective: scalar tensor ``f``, built on the task variables.
        var_list: the task variables ``y`` adapted by the dynamics.
        optimizer: a ``boml.optimizer.BOMLOpt`` (pure ``step`` rule).
        T: number of inner steps (int >= 1).
        learning_rates: one learning-rate tensor per variable of ``var_list``
            (scalar or shaped like the variable); defaults to the optimizer's.
        outer_objective: scalar tensor ``F``; required by strategies whose
            dynamics use it (BDA).
        experiment: the ``BOMLExperiment`` the objectives were built on.
        first_order: treat the direction as a constant (FOMAML).
    """

    #: True when the dynamics are unrolled in Python (graph grows with T).
    unroll_in_python = False
    #: True when ``outer_objective`` is required.
    needs_outer_objective = False

    def __init__(self, inner_objective, var_list, optimizer, T, learning_rates=None, outer_objective=None,
                 experiment=None, first_order=False, **config):
        if not isinstance(T, int) or isinstance(T, bool) or T < 1:
            raise InvalidArgumentError(
                f"T (the number of inner steps) must be a positive integer; received {T!r}. Pass for example T=5."
            )
        if not var_list:
            raise InvalidArgumentError(
                "var_list is empty: the lower level has no task variables to adapt. Pass var_list=ex.model.var_list "
                "after setting ex.model = boml_ho.base_learner(...)."
            )
        if self.needs_outer_objective and outer_objective is None:
            raise InvalidArgumentError(
                f"inner_method {type(self).__name__} needs the outer objective inside the lower-level dynamics; "
                f"received outer_objective=None. Pass ll_problem(..., outer_objective=<query loss tensor>)."
            )
        self.inner_objective = inner_objective
        self.outer_objective = outer_objective
        self.var_list = list(var_list)
        self.optimizer = optimizer
        self.T = T
        self.learning_rates = list(learning_rates) if learning_rates is not None else None
        self.experiment = experiment
        self.first_order = bool(first_order)
        self.mask_logits = config.pop("mask_logits", None)
        self.mask_temperature = float(config.pop("mask_temperature", 1.0))
        self.config = dict(config)

    # ----------------------------------------------------------------- API compatibility
    @classmethod
    def compute_gradients(cls, boml_opt, loss_inner, loss_outer=None, param_dict=None, var_list=None, **inner_kargs):
        """Builds the strategy object (the original's static constructor)."""
        param_dict = dict(param_dict or {})
        return cls(loss_inner, var_list, boml_opt, param_dict.get("T", 1), outer_objective=loss_outer,
                   experiment=param_dict.get("experiment"), first_order=param_dict.get("first_order", False),
                   **inner_kargs)

    @property
    def state(self):
        """The task variables adapted by the dynamics."""
        return list(self.var_list)

    # ----------------------------------------------------------------- dynamics
    def direction(self, task, objectives, state, step):
        """The direction ``d_t`` consumed by the optimizer at 1-based ``step``."""
        raise NotImplementedError

    def potential(self, task, objectives, state, step):
        """A scalar whose gradient w.r.t. the state is ``direction`` (used by DARTS)."""
        raise NotImplementedError

    def local_objectives(self, task):
        """The inner (and outer) objectives as functions of this task's state."""
        return {"inner": task.local(self.inner_objective),
                "outer": task.local(self.outer_objective) if self.outer_objective is not None else None}

    def local_learning_rates(self, task):
        rates = self.learning_rates or [self.optimizer.learning_rate] * len(self.var_list)
        return [tf.cast(task.local(r if not isinstance(r, (int, float)) else tf.constant(r)), v.dtype.base_dtype)
                for r, v in zip(rates, self.var_list)]

    def update_masks(self, task, differentiable=True):
        """MT-net masks ``M`` (one per task variable), or None without ``use_mask``.

        Training samples a relaxed Bernoulli mask per task, ``sigmoid((logit + logistic
        noise) / temperature)``, thresholded at 1/2 in the forward pass with the
        relaxed gradient (straight-through) so the logits learn. Evaluation uses the
        deterministic mask ``logit > 0``. Units whose mask is 0 do not adapt.

        References:
            Lee and Choi, "Gradient-Based Meta-Learning with Learned Layerwise Metric
            and Subspace", ICML 2018.
        """
        if not self.mask_logits:
            return None
        masks = []
        for logit, var in zip(self.mask_logits, self.var_list):
            logit = tf.cast(task.local(logit), var.dtype.base_dtype)
            if not differentiable:
                masks.append(tf.cast(logit > 0, logit.dtype))
                continue
            uniform = tf.random.uniform(tf.shape(logit), 1e-6, 1 - 1e-6, dtype=logit.dtype)
            soft = tf.sigmoid((logit + tf.math.log(uniform) - tf.math.log(1 - uniform)) / self.mask_temperature)
            hard = tf.cast(soft > 0.5, soft.dtype)
            masks.append(hard + soft - tf.stop_gradient(soft))
        return masks

    def unroll(self, task, differentiable=True, truncate_iter=-1, keep_previous=False, T=None):
        """Builds the dynamics of one task.

        Args:
            task: the ``TaskProgram``.
            differentiable: if False, the trajectory is a constant for gradients.
            truncate_iter: K >= 0 keeps gradients through the last K steps only
                (the state y_{T-K} is a constant); -1 or K >= T keeps all.
            keep_previous: also return y_{T-1}.
            T: number of steps (default: ``self.T``).

        Returns:
            A ``Trajectory``.
        """
        T = self.T if T is None else T
        objectives = self.local_objectives(task)
        rates = self.local_learning_rates(task)
        y0 = task.initial_state()
        if not differentiable:
            y0 = [tf.stop_gradient(v) for v in y0]
        slots0 = self.optimizer.init_slots(y0)
        cut = truncate_iter is not None and 0 <= truncate_iter < T
        masks = self.update_masks(task, differentiable)

        def transition(step, state, slots):
            direction = self.direction(task, objectives, state, step)
            if self.first_order or not differentiable:
                direction = [tf.stop_gradient(d) for d in direction]
            if masks is not None:
                direction = [d * m for d, m in zip(direction, masks)]
            return self.optimizer.step(state, direction, slots, step, rates)

        if self.unroll_in_python:
            state, slots, states, previous = y0, slots0, [y0], None
            for step in range(1, T + 1):
                if cut and step <= T - truncate_iter + 1:
                    state = [tf.stop_gradient(v) for v in state]
                    slots = [tf.stop_gradient(s) for s in slots]
                previous = state
                state, slots = transition(step, state, slots)
                states.append(state)
            if cut and truncate_iter == 0:
                state = [tf.stop_gradient(v) for v in state]
        elif cut:
            # The first T-K steps are a constant for the hypergradient: they run in a loop of
            # their own whose outputs are cut, so the reverse pass keeps nothing of them.
            states, head = None, T - truncate_iter
            state, slots, previous = _while_loop(transition, y0, slots0, 1, head, keep_previous)
            state, slots = [tf.stop_gradient(v) for v in state], [tf.stop_gradient(s) for s in slots]
            previous = [tf.stop_gradient(v) for v in previous] if keep_previous else None
            if truncate_iter > 0:
                state, slots, previous = _while_loop(transition, state, slots, head + 1, T, keep_previous)
        else:
            states = None
            state, slots, previous = _while_loop(transition, y0, slots0, 1, T, keep_previous)
        return Trajectory(initial=y0, final=list(state), previous=previous if keep_previous else None,
                          slots=list(slots), states=states)


def _while_loop(transition, state, slots, first, last, keep_previous):
    """Steps ``first..last`` (1-based, inclusive) of the dynamics as one ``tf.while_loop``.

    Returns:
        ``(state, slots, previous)``; ``previous`` is the state before the last
        step when ``keep_previous``, else None.
    """
    n, m = len(state), len(slots)

    def body(step, *flat):
        current, current_slots = list(flat[:n]), list(flat[n:n + m])
        new_state, new_slots = transition(step, current, current_slots)
        return [step + 1] + list(new_state) + list(new_slots) + (current if keep_previous else [])

    loop_vars = [tf.constant(first)] + list(state) + list(slots) + (list(state) if keep_previous else [])
    result = tf.while_loop(lambda step, *_: step <= last, body, loop_vars, maximum_iterations=last - first + 1,
                           name="lower_dynamics")
    previous = list(result[1 + n + m:]) if keep_previous else None
    return list(result[1:1 + n]), list(result[1 + n:1 + n + m]), previous


def inner_gradient(task, objective, state):
    """Gradient of a local objective w.r.t. the state (zeros where it does not depend on it)."""
    value = task.at_state(objective, state)
    return _zeros_for_none(tf.gradients(value, state), state), value


@extension.register_lower_iter("Trad")
class BOMLInnerGradTrad(BOMLInnerGrad):
    """Gradient-descent dynamics on the inner objective (RHG, TRHG, HOAG, DARTS).

    Update (SGD): ``y_t = y_{t-1} - eta * grad_y f(x, y_{t-1})``; Momentum and
    Adam apply their own recursions to the same gradient.

    References:
        Franceschi et al., "Forward and Reverse Gradient-Based Hyperparameter
        Optimization", ICML 2017.
    """

    def direction(self, task, objectives, state, step):
        grads, _ = inner_gradient(task, objectives["inner"], state)
        return grads

    def potential(self, task, objectives, state, step):
        return task.at_state(objectives["inner"], state)
