"""MAML++'s multi-step loss and derivative-order annealing (``outer_method="MAML++"``)."""
import dataclasses

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.upper_iter.outer_grad import BOMLOuterGrad, UpperOptions

__all__ = ["BOMLOuterGradMAMLPlusPlus", "MAMLPlusPlusOptions", "multi_step_loss_weights"]


def _is_int(value, minimum):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


def multi_step_loss_weights(k, T, anneal_iterations, final_only=False):
    """The per-step weights ``w_1..w_T`` of the multi-step loss at meta-iteration ``k``.

    The non-final weights start at ``1/T`` and fall linearly by ``1 / (T N)`` per
    meta-iteration (``N = anneal_iterations``) to ``0.03 / T``; the final weight is
    ``1 - sum`` of the others, so the weights always sum to 1 and end at the final loss
    (Antoniou et al.'s schedule, counted in meta-iterations instead of epochs).

    Args:
        k: meta-iteration (>= 0).
        T: number of inner steps.
        anneal_iterations: ``N``.
        final_only: return ``[0, ..., 0, 1]`` (the plain MAML objective).

    Returns:
        A float64 array of length T.
    """
    weights = np.zeros(T)
    if final_only or T == 1:
        weights[-1] = 1.0
        return weights
    weights[:-1] = np.maximum(1.0 / T - k / (T * anneal_iterations), 0.03 / T)
    weights[-1] = 1.0 - weights[:-1].sum()
    return weights


@dataclasses.dataclass(frozen=True)
class MAMLPlusPlusOptions(UpperOptions):
    """Options of ``MAML++``.

    Attributes:
        multi_step_loss: optimize ``sum_t w_t(k) F(theta_t)`` over the inner steps instead of
            ``F(theta_T)`` (default False: every switch is off, which is MAML); see ``multi_step_loss_weights``.
        msl_anneal_iterations: ``N``, the meta-iterations over which the non-final weights decay
            (default 1000).
        first_order_iterations: derivative-order annealing: the meta-gradient is first order
            (inner gradients treated as constants) for the first ``n`` meta-iterations, then
            second order (default 0: always second order).
    """

    multi_step_loss: bool = False
    msl_anneal_iterations: int = 1000
    first_order_iterations: int = 0

    def validate(self, owner):
        super().validate(owner)
        if not isinstance(self.multi_step_loss, bool):
            raise InvalidArgumentError(
                f"{owner}: multi_step_loss must be True or False; received {self.multi_step_loss!r}.")
        if not _is_int(self.msl_anneal_iterations, 1):
            raise InvalidArgumentError(
                f"{owner}: msl_anneal_iterations must be a positive integer; received "
                f"{self.msl_anneal_iterations!r}. Try 1000.")
        if not _is_int(self.first_order_iterations, 0):
            raise InvalidArgumentError(
                f"{owner}: first_order_iterations must be an integer >= 0; received "
                f"{self.first_order_iterations!r}.")


@extension.register_upper_iter("MAML++")
class BOMLOuterGradMAMLPlusPlus(BOMLOuterGrad):
    """MAML's meta-gradient with MAML++'s multi-step loss and derivative-order annealing.

    With ``theta_t = Phi_t(theta_{t-1})`` the real inner steps of the ``Simple`` lower
    strategy (any optimizer, learned step sizes, mask) and ``s(k)`` 0 for the first
    ``first_order_iterations`` meta-iterations, 1 after::

        d_t = s(k) g_t + (1 - s(k)) stop_gradient(g_t)          (same value, first or second order)
        dF/dx = d/dx sum_{t=1..T} w_t(k) F(theta_t)             (multi_step_loss)
        dF/dx = d/dx F(theta_T)                                   (otherwise)

    The weights and the switch are fed at every ``run`` (``feed_dict``), so one graph
    serves the whole schedule. With ``first_order=True`` in ``ll_problem`` the meta-gradient
    is first order throughout.

    References:
        Antoniou, Edwards and Storkey, "How to train your MAML", ICLR 2019.
    """

    Options = MAMLPlusPlusOptions
    inner_methods = ("Simple",)

    def __init__(self, inner_method=None, truncate_iter=-1, **options):
        super().__init__(inner_method=inner_method, truncate_iter=truncate_iter, **options)
        self.second_order = tf.placeholder_with_default(tf.constant(1.0, tf.float64), [], name="second_order")
        self.loss_weights = tf.placeholder(tf.float64, [None], name="multi_step_loss_weights")
        self._T = None

    def weights(self, global_step):
        """The multi-step loss weights at meta-iteration ``global_step`` (``[0, ..., 1]`` without it)."""
        return multi_step_loss_weights(global_step, self._T, self.config.msl_anneal_iterations,
                                       final_only=not self.config.multi_step_loss)

    def feed_dict(self, global_step):
        """Feeds the weights and the derivative order of meta-iteration ``global_step``."""
        order = 0.0 if global_step < self.config.first_order_iterations else 1.0
        return {self.loss_weights: self.weights(global_step), self.second_order: order}

    def task_hypergradients(self, dynamics):
        self._T = dynamics.T
        state = dynamics.initial_state()
        slots = dynamics.initial_slots(state)
        switch = None if self.config.first_order_iterations == 0 else tf.cast(self.second_order, state[0].dtype)
        losses = []
        for t in range(1, dynamics.T + 1):
            direction = dynamics.direction(t, state)
            if switch is not None:
                direction = [tf.stop_gradient(g) + switch * (g - tf.stop_gradient(g)) for g in direction]
            state, slots = dynamics.apply_direction(t, state, slots, direction)
            if self.config.multi_step_loss or t == dynamics.T:
                losses.append(dynamics.outer_value(state))
        if self.config.multi_step_loss:
            weights = tf.cast(self.loss_weights, losses[0].dtype)
            objective = tf.add_n([weights[t] * loss for t, loss in enumerate(losses)])
        else:
            objective = losses[-1]
        return tf.gradients(objective, dynamics.meta_locals), state
